"""The SQLite databases of ``SDDC_BACKUP_SQLITE_PATHS``, as ``database/sqlite/<index>-<file name>``.

Each database is copied with SQLite's online backup API into a scratch file, so the member is a
consistent snapshot even while the application writes (in WAL or rollback-journal mode). The copy is
made when the iterator reaches the database, and removed when the file returned by ``open()`` is closed,
and in any case when the iterator moves on or is closed.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import BinaryIO

from sddc_backup.archive.entries import Entry, EntryType
from sddc_backup.services.components._common import absolute_paths, component_failed, group_name, user_name

MEMBER_PREFIX = "database/sqlite"
STAGING_SUFFIX = ".restore-staging"
_CHUNK = 1 << 20


def member_name(index: int, path: Path) -> str:
    """``database/sqlite/<index>-<file name>``; ``index`` is the 0-based position in the setting."""
    return f"{MEMBER_PREFIX}/{index}-{path.name}"


class SqliteComponent:
    """Consistent copies of SQLite databases, made with ``sqlite3.Connection.backup``."""

    def __init__(self, paths: Sequence[Path], scratch: Path, name: str = "sqlite") -> None:
        self._name = name
        self._paths = absolute_paths(name, paths)
        self._scratch = scratch

    @property
    def name(self) -> str:
        return self._name

    @property
    def paths(self) -> tuple[Path, ...]:
        return self._paths

    def staged_paths(self, staging_root: Path) -> dict[Path, Path]:
        """Where an extraction into ``staging_root`` puts the copy of each database (for a restore)."""
        return {path: staging_root / member_name(i, path) for i, path in enumerate(self._paths)}

    def entries(self) -> Iterator[Entry]:
        for index, path in enumerate(self._paths):
            copy, source = self._copy(index, path)
            try:
                size, digest = _size_and_digest(copy)
                yield Entry(
                    name=member_name(index, path),
                    type=EntryType.FILE,
                    mode=stat.S_IMODE(source.st_mode),
                    mtime=source.st_mtime_ns / 1e9,
                    mtime_ns=source.st_mtime_ns,
                    uid=source.st_uid,
                    gid=source.st_gid,
                    uname=user_name(source.st_uid),
                    gname=group_name(source.st_gid),
                    size=size,
                    open=partial(self._open, path, copy),
                    expected_sha256=digest,
                )
            finally:
                copy.unlink(missing_ok=True)

    def _copy(self, index: int, path: Path) -> tuple[Path, os.stat_result]:
        try:
            source = path.stat()
        except FileNotFoundError:
            raise component_failed(self._name, str(path), "the database does not exist") from None
        except OSError as exc:
            raise component_failed(self._name, str(path), f"cannot read it: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(source.st_mode):
            raise component_failed(self._name, str(path), "it is not a regular file")
        self._scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._scratch, prefix=f"{index}-", suffix=".sqlite-copy")
        os.close(fd)
        copy = Path(name)
        try:
            # mode=rw never creates a missing file; it falls back to read-only if the file is not writable.
            # As the last connection to a WAL database it checkpoints and removes -wal/-shm, as any would.
            with (
                closing(sqlite3.connect(path.as_uri() + "?mode=rw", uri=True, timeout=60)) as src,
                closing(sqlite3.connect(copy)) as dst,
            ):
                src.backup(dst)
        except sqlite3.Error as exc:
            copy.unlink(missing_ok=True)
            raise component_failed(self._name, str(path), f"cannot copy the database: {exc}") from exc
        except BaseException:
            copy.unlink(missing_ok=True)
            raise
        return copy, source

    def _open(self, path: Path, copy: Path) -> BinaryIO:
        try:
            return _RemovedOnClose(copy)
        except FileNotFoundError:
            raise component_failed(
                self._name, str(path), "its copy is gone: open() was called after entries() had moved on"
            ) from None


class _RemovedOnClose(io.BufferedReader):
    """A file that is removed when it is closed."""

    def __init__(self, path: Path) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self._path = path

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._path.unlink(missing_ok=True)


def _size_and_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def restore_copy(staged: Path, target: Path, destination: Path | None = None) -> Path:
    """Check a staged database and copy it next to ``target`` as ``destination`` (by default
    ``<target>.restore-staging``).

    The staged file is opened ``immutable`` (nothing is written next to it) and must pass
    ``PRAGMA integrity_check``. The copy takes the mode and owner of ``target`` when it exists. The caller
    renames it over ``target`` with the application stopped, and removes ``<target>-wal``,
    ``<target>-shm`` and ``<target>-journal`` first: SQLite would apply them to the new file.
    """
    component = "sqlite"
    if not staged.is_file():
        raise component_failed(component, str(staged), "the staged database does not exist")
    try:
        with closing(sqlite3.connect(staged.absolute().as_uri() + "?immutable=1", uri=True)) as conn:
            problems = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
    except sqlite3.Error as exc:
        raise component_failed(component, str(staged), f"it is not a usable SQLite database: {exc}") from exc
    if problems != ["ok"]:
        raise component_failed(component, str(staged), f"integrity check failed: {'; '.join(problems[:5])}")
    destination = destination or target.with_name(target.name + STAGING_SUFFIX)
    try:
        shutil.copyfile(staged, destination)
        with destination.open("rb+") as handle:
            os.fsync(handle.fileno())
        if target.exists():
            current = target.stat()
            destination.chmod(stat.S_IMODE(current.st_mode))
            if (current.st_uid, current.st_gid) != (os.getuid(), os.getgid()):
                os.chown(destination, current.st_uid, current.st_gid)
    except OSError as exc:
        destination.unlink(missing_ok=True)
        raise component_failed(component, str(destination), f"cannot stage the restore: {exc}") from exc
    return destination
