"""Where a restore reads its backup file from: a path on this server, or a name on the backup location.

``backupFile`` is either an absolute path inside one of the allowed directories (VCF's way: the file is
copied to ``/tmp`` first), or the bare name of a file on the configured backup location. Anything else
is refused before a task starts: a relative path, ``..``, a symbolic link that leads out of the allowed
directories, something that is not a regular file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sddc_backup.domain.backup_config import BackupLocation
from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.domain.storage import Storage
from sddc_backup.storage.errors import ObjectNotFoundError

READ_SIZE = 1 << 20
Opener = Callable[[BackupLocation], Awaitable[Storage]]


class BackupFileError(InvalidInputError):
    error_code = "RESTORE_FILE_NOT_ALLOWED"


def _refused(backup_file: str, why: str, allowed: Sequence[Path]) -> BackupFileError:
    return BackupFileError(
        f"backupFile {backup_file!r} cannot be restored: {why}.",
        remediation="Copy the backup file into one of "
        + ", ".join(str(a) for a in allowed)
        + " and give its absolute path, or give the bare name of a file on the backup location.",
        context={"field": "backupFile"},
    )


def _not_found(backup_file: str, where: str) -> InvalidInputError:
    return InvalidInputError(
        f"The backup file {backup_file} does not exist {where}.",
        error_code="RESTORE_FILE_NOT_FOUND",
        remediation="Check the name (GET /v1/backups lists the backups on the location) or the path.",
        context={"field": "backupFile"},
    )


@dataclass(frozen=True)
class BackupFileRef:
    """A checked ``backupFile``: ``path`` for a local file, else ``name`` on the location."""

    text: str
    path: Path | None = None
    name: str | None = None


def resolve_local(backup_file: str, allowed: Sequence[Path]) -> BackupFileRef:
    """Check an absolute path against the allowed directories (after resolving every link)."""
    if "\0" in backup_file or ".." in PurePosixPath(backup_file).parts:
        raise _refused(backup_file, "the path contains '..' or a NUL byte", allowed)
    resolved = Path(os.path.realpath(backup_file))
    roots = [Path(os.path.realpath(a)) for a in allowed]
    if not any(resolved == r or r in resolved.parents for r in roots):
        raise _refused(backup_file, "it is not inside an allowed directory", allowed)
    try:
        st = resolved.stat()
    except FileNotFoundError:
        raise _not_found(backup_file, "on this server") from None
    except OSError as exc:
        raise _refused(backup_file, f"it cannot be read ({exc.strerror})", allowed) from None
    if not stat.S_ISREG(st.st_mode):
        raise _refused(backup_file, "it is not a regular file", allowed)
    return BackupFileRef(backup_file, path=resolved)


async def resolve(
    backup_file: str, allowed: Sequence[Path], location: BackupLocation | None, opener: Opener
) -> BackupFileRef:
    if backup_file.startswith("/"):
        return resolve_local(backup_file, allowed)
    if (
        not backup_file
        or "/" in backup_file
        or "\\" in backup_file
        or backup_file in (".", "..")
        or "\0" in backup_file
    ):
        raise _refused(backup_file, "it is neither an absolute path nor a bare file name", allowed)
    if location is None:
        raise _refused(backup_file, "no backup location is configured to find the name on", allowed)
    storage = await opener(location)
    try:
        await storage.stat(backup_file)
    except ObjectNotFoundError:
        raise _not_found(backup_file, "on the backup location") from None
    finally:
        await storage.close()
    return BackupFileRef(backup_file, name=backup_file)


def local_chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes; opened without following a link swapped in since the check."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(READ_SIZE):
            yield chunk
