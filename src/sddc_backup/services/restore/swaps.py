"""Undoing or finishing every swap of a restore journal: what the restore task does when it fails or
ends, and what the next start of the service does after a crash. Both are idempotent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sddc_backup.domain.restore import RestoreJournal
from sddc_backup.services.quiesce import Quiesce
from sddc_backup.services.restore import files
from sddc_backup.services.restore.commands import ServiceCommands
from sddc_backup.services.restore.database import DatabaseSwapper
from sddc_backup.services.restore.journal import JournalFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Swaps:
    journal_file: JournalFile
    database: DatabaseSwapper | None
    commands: ServiceCommands
    quiesce: Quiesce

    async def undo(self, journal: RestoreJournal) -> None:
        """Put back everything the restore replaced and restart the services. The caller forgets the
        journal once the task's end is stored, so that a crash in between still finds it.

        Raises when the state cannot be put back; the journal then stays, and the next start tries again.
        """
        if journal.services_stopped:
            await _best_effort("stop the services", self.commands.run_stop())
        await asyncio.to_thread(self._undo_swaps, journal)
        files.remove(Path(journal.staging))
        if journal.services_stopped:
            await _best_effort("start the services", self.commands.run_start())

    def _undo_swaps(self, journal: RestoreJournal) -> None:
        if journal.database is not None:
            self._database().roll_back(journal.database)
        for swap in reversed(journal.paths):
            files.roll_back(swap)

    async def finish(self, journal: RestoreJournal) -> None:
        """After the commit: drop what was replaced and the staging directory. The journal stays (see
        ``forget``): until the restore has ended, a crash must still find it and finish the restore."""
        await asyncio.to_thread(self._finish_swaps, journal)

    def forget(self, journal: RestoreJournal) -> None:
        """The restore has ended (finished or undone): remove the journal, resume automatic backups."""
        self.journal_file.remove()
        self.quiesce.resume(journal.restore_id)

    def _finish_swaps(self, journal: RestoreJournal) -> None:
        # PostgreSQL drops the old database while this thread removes the old trees: the two
        # share nothing, and each takes about as long as the other.
        with ThreadPoolExecutor(1, thread_name_prefix="restore-drop-database") as pool:
            database = journal.database
            dropped = pool.submit(self._database().finish, database) if database is not None else None
            for swap in journal.paths:
                files.finish(swap)
            files.remove(Path(journal.staging))
            if dropped is not None:
                dropped.result()

    def _database(self) -> DatabaseSwapper:
        if self.database is None:
            raise RuntimeError("the journal names a database, and no PostgreSQL DSN is configured")
        return self.database


async def _best_effort(what: str, step: Awaitable[None]) -> None:
    """Run a services command while undoing: its failure must not stop the state from going back."""
    try:
        await step
    except Exception as exc:  # noqa: BLE001 - logged; the undo goes on
        log.error("while rolling back a restore, could not %s: %s", what, exc)
