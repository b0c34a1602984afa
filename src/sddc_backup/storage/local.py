"""The ``LOCAL`` backend: a directory on this server. Blocking file calls run in worker threads."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

from sddc_backup.domain.storage import ObjectInfo
from sddc_backup.storage.errors import (
    LocationFullError,
    LocationNotFoundError,
    LocationNotWritableError,
    ObjectNotFoundError,
    StorageError,
)
from sddc_backup.storage.store import ObjectStore, Writer

T = TypeVar("T")
CHUNK = 1 << 20


@contextmanager
def os_errors(directory: Path, name: str = "") -> Iterator[None]:
    """Map operating-system failures to storage errors that say what to do."""
    try:
        yield
    except FileNotFoundError as exc:
        if name and directory.is_dir():
            raise ObjectNotFoundError(f"{name} does not exist in {directory}.") from exc
        raise LocationNotFoundError(f"The backup directory {directory} does not exist.") from exc
    except NotADirectoryError as exc:
        raise LocationNotFoundError(f"The backup directory {directory} is not a directory.") from exc
    except (PermissionError, IsADirectoryError) as exc:
        raise LocationNotWritableError(f"{directory}: {exc.strerror}.") from exc
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise LocationFullError(f"No space left in {directory}.") from exc
        if exc.errno == errno.EROFS:
            raise LocationNotWritableError(f"{directory} is on a read-only filesystem.") from exc
        raise StorageError(f"{directory}: {exc.strerror or exc}.") from exc


class _FileWriter:
    def __init__(self, fd: int, directory: Path) -> None:
        self._fd = fd
        self._directory = directory

    async def write(self, data: bytes) -> None:
        await _call(self._directory, "", _write_all, self._fd, data)


def _open_binary(path: Path) -> BinaryIO:
    return path.open("rb")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def _call(directory: Path, name: str, fn: Callable[..., T], *args: object) -> T:
    def run() -> T:
        with os_errors(directory, name):
            return fn(*args)

    return await asyncio.to_thread(run)


class LocalBackend:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        return self.directory / name

    @asynccontextmanager
    async def open_write(self, name: str) -> AsyncIterator[Writer]:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = await _call(self.directory, "", os.open, self._path(name), flags, 0o600)
        try:
            yield _FileWriter(fd, self.directory)
            await _call(self.directory, name, os.fsync, fd)
        finally:
            os.close(fd)

    async def read(self, name: str, offset: int, length: int | None) -> AsyncIterator[bytes]:
        handle = await _call(self.directory, name, _open_binary, self._path(name))
        try:
            await asyncio.to_thread(handle.seek, offset)
            left = length
            while left is None or left > 0:
                chunk = await asyncio.to_thread(handle.read, CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def stat(self, name: str) -> ObjectInfo:
        st = await _call(self.directory, name, os.stat, self._path(name))
        return ObjectInfo(name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    async def names(self) -> list[ObjectInfo]:
        def scan() -> list[ObjectInfo]:
            with os.scandir(self.directory) as entries:
                return [
                    ObjectInfo(e.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))
                    for e in entries
                    if e.is_file(follow_symlinks=False) and (st := e.stat(follow_symlinks=False))
                ]

        return await _call(self.directory, "", scan)

    async def rename(self, old: str, new: str) -> None:
        await _call(self.directory, old, os.replace, self._path(old), self._path(new))

    async def delete(self, name: str) -> None:
        await _call(self.directory, name, os.unlink, self._path(name))

    async def free_space(self) -> int | None:
        st = await _call(self.directory, "", os.statvfs, self.directory)
        return st.f_bavail * st.f_frsize

    async def close(self) -> None:
        pass


def local_storage(directory: Path) -> ObjectStore:
    return ObjectStore(LocalBackend(directory), f"directory {directory}")
