"""The restore journal on disk: one JSON file in the data directory, replaced atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sddc_backup.domain.errors import InternalError
from sddc_backup.domain.restore import RestoreJournal


class JournalFile:
    """``<data dir>/restore-journal.json``. ``save`` returns only once the new content is on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> RestoreJournal | None:
        try:
            return RestoreJournal.from_dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise InternalError(
                f"The restore journal {self.path} cannot be read: {exc}",
                error_code="RESTORE_JOURNAL_UNREADABLE",
                remediation="Put the appliance back by hand from the kept copies (names containing "
                ".sddc-restore-old- beside each protected path, and the database named <name>_old_*), "
                "then remove the journal file and start the service again.",
            ) from exc

    def save(self, journal: RestoreJournal) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        data = json.dumps(journal.to_dict(), indent=2).encode()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(self.path)
        self._sync_dir()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self._sync_dir()

    def _sync_dir(self) -> None:
        fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
