"""Cross-cutting behaviour around any backend: retries with backoff and stall timeouts, and scripted
faults for tests. ``open_storage`` (in ``storage.factory``) composes them.

Both wrappers implement the full ``Storage`` contract over another ``Storage``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from sddc_backup.domain.storage import ByteSource, ObjectInfo, PutResult, Storage, opened
from sddc_backup.storage.errors import (
    ConnectionLostError,
    LocationFullError,
    LocationNotWritableError,
    StorageError,
    StorageTimeoutError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_delay: float = 0.5
    max_delay: float = 8.0
    stall_timeout: float = 120.0  # no byte moved for this long: the transfer is stuck

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** (attempt - 1)))


class _StallGuard:
    """Re-yields a stream, failing with ``StorageTimeoutError`` when a chunk takes too long."""

    def __init__(self, stream: AsyncIterator[bytes], timeout: float, what: str) -> None:
        self._stream, self._timeout, self._what = stream, timeout, what

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await asyncio.wait_for(anext(self._stream), self._timeout)
        except TimeoutError:
            raise StorageTimeoutError(f"{self._what}: no data moved for {self._timeout:.0f} s.") from None


class RetryingStorage:
    """Retries transient failures (``StorageError.transient``) with exponential backoff. A put replays
    its source from the start; a get resumes from the last byte received."""

    def __init__(
        self,
        inner: Storage,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.inner = inner
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    async def _retry(
        self, what: str, call: Callable[[], Awaitable[T]], activity: Callable[[], float] | None = None
    ) -> T:
        """Run ``call`` until it succeeds or fails for good. It fails as stalled when ``activity`` (the
        loop time of its last progress; its start when ``None``) is older than the stall timeout."""
        attempt = 1
        while True:
            try:
                return await _watched(call(), self.policy.stall_timeout, what, activity)
            except StorageError as exc:
                if not exc.transient or attempt >= self.policy.attempts:
                    raise
                delay = self.policy.delay(attempt)
                log.warning("%s failed (%s); attempt %d in %.1f s", what, exc.error_code, attempt + 1, delay)
                await self._sleep(delay)
                attempt += 1

    async def put(self, name: str, source: ByteSource, expected_sha256: str | None = None) -> PutResult:
        guarded = _GuardedSource(source, self.policy.stall_timeout, f"upload of {name}")
        return await self._retry(
            f"upload of {name}", lambda: self.inner.put(name, guarded, expected_sha256), guarded.last_activity
        )

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        received, attempt = 0, 1
        while True:
            left = None if length is None else length - received
            stream = _StallGuard(
                self.inner.get(name, offset + received, left), self.policy.stall_timeout, name
            )
            try:
                async for chunk in stream:
                    received += len(chunk)
                    yield chunk
                return
            except StorageError as exc:
                if not exc.transient or attempt >= self.policy.attempts:
                    raise
                await self._sleep(self.policy.delay(attempt))
                attempt += 1

    async def stat(self, name: str) -> ObjectInfo:
        return await self._retry(f"stat of {name}", lambda: self.inner.stat(name))

    async def list_objects(self) -> list[ObjectInfo]:
        return await self._retry("listing", self.inner.list_objects)

    async def delete(self, name: str) -> None:
        await self._retry(f"delete of {name}", lambda: self.inner.delete(name))

    async def rename(self, old: str, new: str) -> None:
        await self._retry(f"rename of {old}", lambda: self.inner.rename(old, new))

    async def free_space(self) -> int | None:
        return await self._retry("free space", self.inner.free_space)

    async def remove_stale_temporaries(self, older_than: datetime) -> list[str]:
        return await self._retry("cleanup", lambda: self.inner.remove_stale_temporaries(older_than))

    async def close(self) -> None:
        await self.inner.close()


class _GuardedSource:
    """A source that records when the upload last moved, for the stall watchdog.

    Time spent waiting for the source itself is never a stall: a backup's source may think for a
    long while (a large database measuring its dump) before its next bytes. A stall is the backend
    not asking for the next chunk.
    """

    def __init__(self, source: ByteSource, timeout: float, what: str) -> None:
        self.source, self.timeout, self.what = source, timeout, what
        self.moved = asyncio.get_running_loop().time()
        self.waiting_on_source = False

    def last_activity(self) -> float:
        now = asyncio.get_running_loop().time()
        return now if self.waiting_on_source else self.moved

    async def open(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        self.moved = loop.time()
        async with opened(self.source) as stream:
            while True:
                self.waiting_on_source = True
                try:
                    chunk = await anext(stream)
                except StopAsyncIteration:
                    return
                finally:
                    self.waiting_on_source = False
                    self.moved = loop.time()
                yield chunk


async def _watched(
    call: Awaitable[T], stall_after: float, what: str, activity: Callable[[], float] | None
) -> T:
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=stall_after / 4)
            if done:
                return task.result()
            last = activity() if activity is not None else started
            if loop.time() - max(last, started) > stall_after:
                raise StorageTimeoutError(f"{what}: nothing moved for {stall_after:.0f} s.")
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, StorageError):
                await task


class FaultKind(StrEnum):
    ERROR_AFTER_BYTES = "error-after-bytes"  # the connection drops after N bytes of an upload
    DISCONNECT = "disconnect"
    STALL = "stall"
    FULL_DISK = "full-disk"
    PERMISSION_DENIED = "permission-denied"


@dataclass
class Fault:
    """Fail the ``nth`` call (1-based) of ``operation`` ("put", "get", "stat", "list", …) this way."""

    operation: str
    kind: FaultKind
    nth: int = 1
    after_bytes: int = 0
    fired: bool = field(default=False, init=False)


class FaultyStorage:
    """Shipped fault injection: a ``Storage`` that fails as scripted, then behaves like ``inner``."""

    def __init__(self, inner: Storage, faults: list[Fault]) -> None:
        self.inner = inner
        self.faults = faults
        self.calls: dict[str, int] = {}

    def _fault(self, operation: str) -> Fault | None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        for fault in self.faults:
            if fault.operation == operation and fault.nth == self.calls[operation] and not fault.fired:
                fault.fired = True
                return fault
        return None

    async def _trip(self, fault: Fault | None, what: str) -> None:
        if fault is None:
            return
        if fault.kind is FaultKind.STALL:
            await asyncio.Event().wait()
        raise _error(fault.kind, what)

    async def put(self, name: str, source: ByteSource, expected_sha256: str | None = None) -> PutResult:
        fault = self._fault("put")
        if fault is not None and fault.kind is FaultKind.ERROR_AFTER_BYTES:
            return await self.inner.put(
                name, _BreakingSource(source, fault.after_bytes, name), expected_sha256
            )
        await self._trip(fault, f"upload of {name}")
        return await self.inner.put(name, source, expected_sha256)

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        fault = self._fault("get")
        sent = 0
        async for chunk in self.inner.get(name, offset, length):
            if fault is not None and sent + len(chunk) > fault.after_bytes:
                await self._trip(fault, f"download of {name}")
            sent += len(chunk)
            yield chunk

    async def stat(self, name: str) -> ObjectInfo:
        await self._trip(self._fault("stat"), f"stat of {name}")
        return await self.inner.stat(name)

    async def list_objects(self) -> list[ObjectInfo]:
        await self._trip(self._fault("list"), "listing")
        return await self.inner.list_objects()

    async def delete(self, name: str) -> None:
        await self._trip(self._fault("delete"), f"delete of {name}")
        await self.inner.delete(name)

    async def rename(self, old: str, new: str) -> None:
        await self._trip(self._fault("rename"), f"rename of {old}")
        await self.inner.rename(old, new)

    async def free_space(self) -> int | None:
        return await self.inner.free_space()

    async def remove_stale_temporaries(self, older_than: datetime) -> list[str]:
        return await self.inner.remove_stale_temporaries(older_than)

    async def close(self) -> None:
        await self.inner.close()


@dataclass(frozen=True)
class _BreakingSource:
    source: ByteSource
    limit: int
    name: str

    async def open(self) -> AsyncIterator[bytes]:
        sent = 0
        async with opened(self.source) as stream:
            async for chunk in stream:
                if sent + len(chunk) > self.limit:
                    raise _error(FaultKind.DISCONNECT, f"upload of {self.name}")
                sent += len(chunk)
                yield chunk


def _error(kind: FaultKind, what: str) -> StorageError:
    if kind is FaultKind.FULL_DISK:
        return LocationFullError(f"{what}: no space left (injected).")
    if kind is FaultKind.PERMISSION_DENIED:
        return LocationNotWritableError(f"{what}: permission denied (injected).")
    return ConnectionLostError(f"{what}: the connection dropped (injected).")
