"""Retries, stall timeouts and scripted faults, over the memory backend."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from sddc_backup.storage.errors import ConnectionLostError, LocationFullError, StorageTimeoutError
from sddc_backup.storage.memory import memory_storage
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
