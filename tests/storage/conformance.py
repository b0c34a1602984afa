"""The one suite every storage backend passes. A backend's test module provides a ``storage`` fixture
(an ``ObjectStore`` on a fresh, empty location) and imports these tests with ``from ... import *``."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from sddc_backup.domain.storage import is_temporary
from sddc_backup.storage.errors import (
    IntegrityError,
    InvalidObjectNameError,
    ObjectNotFoundError,
    StorageError,
)
from sddc_backup.storage.store import ObjectStore

pytestmark = pytest.mark.anyio
NAME = "vcf-backup-sfo-vcf01-2026-11-27-08-00-00.tar.gz"


class Bytes:
    """A replayable source, in chunks of ``chunk`` bytes; counts how often it was opened."""

    def __init__(self, data: bytes, chunk: int = 64 << 10) -> None:
        self.data, self.chunk, self.opened = data, chunk, 0

    async def open(self) -> AsyncIterator[bytes]:
        self.opened += 1
        for start in range(0, len(self.data), self.chunk):
            yield self.data[start : start + self.chunk]


class FailingAfter(Bytes):
    """A source that fails after ``limit`` bytes, like a component dying mid-backup."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__(data)
        self.limit = limit

    async def open(self) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in super().open():
            if sent + len(chunk) > self.limit:
                raise RuntimeError("the source broke")
            sent += len(chunk)
            yield chunk


async def read_all(storage: ObjectStore, name: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([c async for c in storage.get(name, offset, length)])


async def test_put_then_get_returns_the_same_bytes(storage: ObjectStore) -> None:
    data = os.urandom(3 << 20) + b"tail"
    result = await storage.put(NAME, Bytes(data))
    assert result.info.name == NAME and result.info.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert await read_all(storage, NAME) == data
    assert (await storage.stat(NAME)).size == len(data)


async def test_an_empty_object_round_trips(storage: ObjectStore) -> None:
    await storage.put(NAME, Bytes(b""))
    assert await read_all(storage, NAME) == b""
    assert (await storage.stat(NAME)).size == 0


async def test_ranged_get(storage: ObjectStore) -> None:
    data = bytes(range(256)) * 4096
    await storage.put(NAME, Bytes(data))
    assert await read_all(storage, NAME, 1000, 5000) == data[1000:6000]
    assert await read_all(storage, NAME, len(data) - 10) == data[-10:]
    assert await read_all(storage, NAME, len(data) - 10, 100) == data[-10:]


async def test_list_is_sorted_and_never_shows_temporaries(storage: ObjectStore) -> None:
    for name in ("b.tar.gz", "a.tar.gz", "a.tar.gz.sha256"):
        await storage.put(name, Bytes(name.encode()))
    listed = await storage.list_objects()
    assert [o.name for o in listed] == ["a.tar.gz", "a.tar.gz.sha256", "b.tar.gz"]
    assert all(o.size == len(o.name) for o in listed)
    assert not any(is_temporary(o.name) for o in listed)


async def test_a_put_that_fails_midway_leaves_nothing(storage: ObjectStore) -> None:
    with pytest.raises(RuntimeError, match="the source broke"):
        await storage.put(NAME, FailingAfter(os.urandom(1 << 20), 300_000))
    assert await storage.list_objects() == []
    assert [o.name for o in await storage.raw.names()] == []  # no temporary left either


async def test_a_wrong_expected_digest_stores_nothing(storage: ObjectStore) -> None:
    with pytest.raises(IntegrityError):
        await storage.put(NAME, Bytes(b"data"), expected_sha256="0" * 64)
    assert await storage.list_objects() == []
    with pytest.raises(ObjectNotFoundError):
        await storage.stat(NAME)


async def test_put_replaces_an_existing_object_atomically(storage: ObjectStore) -> None:
    await storage.put(NAME, Bytes(b"old"))
    await storage.put(NAME, Bytes(b"new contents"))
    assert await read_all(storage, NAME) == b"new contents"
    assert [o.name for o in await storage.list_objects()] == [NAME]


async def test_rename_and_delete(storage: ObjectStore) -> None:
    await storage.put("a", Bytes(b"1"))
    await storage.put("b", Bytes(b"2"))
    await storage.rename("a", "b")
    assert [o.name for o in await storage.list_objects()] == ["b"]
    assert await read_all(storage, "b") == b"1"
    await storage.delete("b")
    assert await storage.list_objects() == []
    with pytest.raises(ObjectNotFoundError):
        await storage.delete("b")


async def test_missing_objects_are_not_found(storage: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError):
        await storage.stat("nope")
    with pytest.raises(ObjectNotFoundError):
        await read_all(storage, "nope")


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "../x", "nul\x00byte", ".x.abc.part", "x" * 256])
async def test_path_tricks_in_names_are_refused(storage: ObjectStore, bad: str) -> None:
    for attempt in (
        storage.put(bad, Bytes(b"x")),
        storage.stat(bad),
        storage.delete(bad),
        storage.rename("ok", bad),
    ):
        with pytest.raises(InvalidObjectNameError):
            await attempt
    with pytest.raises(InvalidObjectNameError):
        await read_all(storage, bad)


async def test_stale_temporaries_are_removed_and_fresh_ones_kept(storage: ObjectStore) -> None:
    async with storage.raw.open_write(".old.tar.gz.abcdef.part") as writer:
        await writer.write(b"partial")
    await storage.put(NAME, Bytes(b"kept"))
    assert await storage.remove_stale_temporaries(datetime.now(UTC) - timedelta(hours=1)) == []
    removed = await storage.remove_stale_temporaries(datetime.now(UTC) + timedelta(minutes=1))
    assert removed == [".old.tar.gz.abcdef.part"]
    assert [o.name for o in await storage.raw.names()] == [NAME]


async def test_concurrent_puts_of_different_names(storage: ObjectStore) -> None:
    payloads = {f"f{i}": os.urandom(200_000) for i in range(4)}
    await asyncio.gather(*(storage.put(n, Bytes(d)) for n, d in payloads.items()))
    for name, data in payloads.items():
        assert await read_all(storage, name) == data


async def test_free_space_is_a_number_or_unknown(storage: ObjectStore) -> None:
    free = await storage.free_space()
    assert free is None or free > 0


def storage_error_is_the_base() -> None:  # not a test: keeps the import honest for backends
    assert issubclass(ObjectNotFoundError, StorageError)


__all__ = [name for name in list(globals()) if name.startswith("test_")]
