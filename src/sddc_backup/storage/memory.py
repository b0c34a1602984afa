"""A backend in memory, for unit tests of the code that uses storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sddc_backup.domain.storage import ObjectInfo
from sddc_backup.storage.errors import ObjectNotFoundError
from sddc_backup.storage.store import ObjectStore, Writer


class _Buffer:
    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: bytes) -> None:
        self.data += data


class MemoryBackend:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, datetime]] = {}

    @asynccontextmanager
    async def open_write(self, name: str) -> AsyncIterator[Writer]:
        if name in self.objects:
            raise FileExistsError(name)
        buffer = _Buffer()
        # Visible (under its temporary name) from the start, as on a real filesystem.
        self.objects[name] = (b"", datetime.now(UTC))
        yield buffer
        self.objects[name] = (bytes(buffer.data), datetime.now(UTC))

    async def read(self, name: str, offset: int, length: int | None) -> AsyncIterator[bytes]:
        data = self._get(name)[0]
        end = len(data) if length is None else min(len(data), offset + length)
        for start in range(offset, end, 1 << 20):
            yield data[start : min(end, start + (1 << 20))]

    async def stat(self, name: str) -> ObjectInfo:
        data, modified = self._get(name)
        return ObjectInfo(name, len(data), modified)

    async def names(self) -> list[ObjectInfo]:
        return [ObjectInfo(n, len(d), m) for n, (d, m) in self.objects.items()]

    async def rename(self, old: str, new: str) -> None:
        self.objects[new] = self._get(old)
        del self.objects[old]

    async def delete(self, name: str) -> None:
        self._get(name)
        del self.objects[name]

    async def free_space(self) -> int | None:
        return None

    async def close(self) -> None:
        pass

    def _get(self, name: str) -> tuple[bytes, datetime]:
        try:
            return self.objects[name]
        except KeyError:
            raise ObjectNotFoundError(f"{name} does not exist.") from None


def memory_storage() -> ObjectStore:
    return ObjectStore(MemoryBackend(), "memory")
