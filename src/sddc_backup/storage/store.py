"""``ObjectStore``: the storage contract built once on top of a backend's few raw operations.

A backend (``local``, ``sftp``, ``memory``) implements ``RawBackend``; everything the contract promises
beyond that is here, for all of them: name checks, atomic puts (temporary name, size and digest check,
rename), listings without temporary names, and the removal of stale temporaries.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sddc_backup.domain.storage import ByteSource, ObjectInfo, PutResult, is_temporary, opened
from sddc_backup.storage.errors import IntegrityError, ObjectNotFoundError, StorageError
from sddc_backup.storage.names import check_name, temporary_name


class Writer(Protocol):
    async def write(self, data: bytes) -> None: ...


class RawBackend(Protocol):
    """What a backend must do. Names given to it are already checked; it maps its own failures to
    ``storage.errors`` classes."""

    def open_write(self, name: str) -> AbstractAsyncContextManager[Writer]:
        """A new object (failing if it exists); on a clean exit the data is durable."""
        ...

    def read(self, name: str, offset: int, length: int | None) -> AsyncIterator[bytes]: ...
    async def stat(self, name: str) -> ObjectInfo: ...
    async def names(self) -> list[ObjectInfo]: ...
    async def rename(self, old: str, new: str) -> None: ...
    async def delete(self, name: str) -> None: ...
    async def free_space(self) -> int | None: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class BytesSource:
    """A ``ByteSource`` of a few bytes held in memory (a probe file, a checksum sidecar)."""

    data: bytes

    async def open(self) -> AsyncIterator[bytes]:
        yield self.data


class ObjectStore:
    """A ``Storage`` over a ``RawBackend``."""

    def __init__(self, raw: RawBackend, description: str) -> None:
        self.raw = raw
        self.description = description

    async def put(self, name: str, source: ByteSource, expected_sha256: str | None = None) -> PutResult:
        check_name(name)
        temp = temporary_name(name)
        digest, size = hashlib.sha256(), 0
        try:
            async with self.raw.open_write(temp) as writer, opened(source) as stream:
                async for chunk in stream:
                    digest.update(chunk)
                    size += len(chunk)
                    await writer.write(chunk)
            if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
                raise IntegrityError(f"The data sent for {name} does not have the expected SHA-256.")
            stored = await self.raw.stat(temp)
            if stored.size != size:
                raise IntegrityError(f"{name}: {size} bytes were sent and {stored.size} stored.")
            await self.raw.rename(temp, name)
        except BaseException:
            with suppress(StorageError, OSError):
                await self.raw.delete(temp)
            raise
        return PutResult(ObjectInfo(name, size, stored.modified), digest.hexdigest())

    def get(self, name: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self.raw.read(check_name(name), offset, length)

    async def stat(self, name: str) -> ObjectInfo:
        return await self.raw.stat(check_name(name))

    async def list_objects(self) -> list[ObjectInfo]:
        found = [o for o in await self.raw.names() if not is_temporary(o.name)]
        return sorted(found, key=lambda o: o.name)

    async def delete(self, name: str) -> None:
        await self.raw.delete(check_name(name))

    async def rename(self, old: str, new: str) -> None:
        await self.raw.rename(check_name(old), check_name(new))

    async def free_space(self) -> int | None:
        return await self.raw.free_space()

    async def remove_stale_temporaries(self, older_than: datetime) -> list[str]:
        removed = []
        for info in await self.raw.names():
            if is_temporary(info.name) and info.modified < older_than:
                with suppress(ObjectNotFoundError):
                    await self.raw.delete(info.name)
                removed.append(info.name)
        return removed

    async def close(self) -> None:
        await self.raw.close()
