"""Retries, stall timeouts and scripted faults, over the memory backend."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import pytest

from sddc_backup.storage.errors import ConnectionLostError, LocationFullError, StorageTimeoutError
from sddc_backup.storage.memory import memory_storage
from sddc_backup.storage.store import ObjectStore
from sddc_backup.storage.wrappers import Fault, FaultKind, FaultyStorage, RetryingStorage, RetryPolicy
from tests.storage.conformance import Bytes

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(attempts=3, first_delay=0.0, stall_timeout=0.2)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def chain(*faults: Fault, policy: RetryPolicy = FAST) -> tuple[RetryingStorage, FaultyStorage]:
    faulty = FaultyStorage(memory_storage(), list(faults))
    return RetryingStorage(faulty, policy), faulty


async def read_all(storage: RetryingStorage, name: str) -> bytes:
    return b"".join([c async for c in storage.get(name)])


async def test_an_upload_cut_midway_is_replayed_and_completes() -> None:
    storage, faulty = chain(Fault("put", FaultKind.ERROR_AFTER_BYTES, after_bytes=300_000))
    data = os.urandom(1 << 20)
    source = Bytes(data)
    await storage.put("a", source)
    assert source.opened == 2 and faulty.calls["put"] == 2
    assert await read_all(storage, "a") == data
    assert [o.name for o in await storage.list_objects()] == ["a"]
    assert [o.name for o in await faulty.inner.raw.names()] == ["a"]  # type: ignore[attr-defined]


async def test_a_full_disk_is_not_retried_and_stores_nothing() -> None:
    storage, faulty = chain(Fault("put", FaultKind.FULL_DISK))
    with pytest.raises(LocationFullError):
        await storage.put("a", Bytes(b"x"))
    assert faulty.calls["put"] == 1
    assert await storage.list_objects() == []


async def test_retries_give_up_after_the_policy_attempts() -> None:
    storage, faulty = chain(*(Fault("stat", FaultKind.DISCONNECT, nth=n) for n in (1, 2, 3)))
    await storage.put("a", Bytes(b"x"))
    with pytest.raises(ConnectionLostError):
        await storage.stat("a")
    assert faulty.calls["stat"] == 3


async def test_a_stalled_upload_times_out_and_is_retried() -> None:
    storage, faulty = chain(Fault("put", FaultKind.STALL))
    await storage.put("a", Bytes(b"data"))
    assert faulty.calls["put"] == 2
    assert await read_all(storage, "a") == b"data"


async def test_a_stall_on_every_attempt_ends_in_a_timeout_error() -> None:
    storage, _ = chain(*(Fault("list", FaultKind.STALL, nth=n) for n in (1, 2, 3)))
    with pytest.raises(StorageTimeoutError):
        await storage.list_objects()


async def test_a_download_cut_midway_resumes_where_it_stopped() -> None:
    data = os.urandom(3 << 20)
    storage, faulty = chain(Fault("get", FaultKind.DISCONNECT, after_bytes=1 << 20))
    await storage.put("a", Bytes(data))
    assert await read_all(storage, "a") == data
    assert faulty.calls["get"] == 2


class SlowSource(Bytes):
    """A source that thinks for longer than the stall timeout before its first bytes."""

    async def open(self) -> AsyncIterator[bytes]:
        await asyncio.sleep(0.6)
        async for chunk in super().open():
            yield chunk


async def test_a_slow_source_is_not_a_stall() -> None:
    storage, faulty = chain()
    source = SlowSource(b"late but fine")
    await storage.put("a", source)
    assert source.opened == 1 and faulty.calls["put"] == 1
    assert await read_all(storage, "a") == b"late but fine"


class Tracked:
    """A source whose every ``open()`` notes whether it is still running; one chunk at a time."""

    def __init__(self, data: bytes, chunk: int = 64 << 10) -> None:
        self.data, self.chunk = data, chunk
        self.running: list[bool] = []

    async def open(self) -> AsyncIterator[bytes]:
        index = len(self.running)
        self.running.append(True)
        try:
            for start in range(0, len(self.data), self.chunk):
                yield self.data[start : start + self.chunk]
        finally:
            self.running[index] = False


async def test_a_failed_put_has_closed_every_open_of_its_source_when_it_raises() -> None:
    storage, _ = chain(
        *(Fault("put", FaultKind.ERROR_AFTER_BYTES, nth=n, after_bytes=100_000) for n in (1, 2, 3))
    )
    source = Tracked(os.urandom(1 << 20))
    with pytest.raises(ConnectionLostError):
        await storage.put("a", source)
    # Checked while the exception (and its traceback, which holds the frames) is still alive.
    assert source.running == [False, False, False]


class FailingOnSecondWrite:
    """Just enough of a ``RawBackend`` for a put whose second write finds the disk full."""

    def __init__(self) -> None:
        self.writes = 0

    @contextlib.asynccontextmanager
    async def open_write(self, name: str) -> AsyncIterator[FailingOnSecondWrite]:
        yield self

    async def write(self, data: bytes) -> None:
        self.writes += 1
        if self.writes == 2:
            raise LocationFullError("no space left")

    async def delete(self, name: str) -> None:
        pass


async def test_a_put_whose_writer_fails_has_closed_its_source_when_it_raises() -> None:
    store = ObjectStore(FailingOnSecondWrite(), "stub")  # type: ignore[arg-type]
    source = Tracked(os.urandom(1 << 20))
    with pytest.raises(LocationFullError):
        await store.put("a", source)
    assert source.running == [False]
