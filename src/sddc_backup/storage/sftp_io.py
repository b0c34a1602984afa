"""A pipelined SFTP upload: SFTP is latency-bound, so several writes are kept in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import asyncssh

WRITES_IN_FLIGHT = 16

# Runs one step under the backend's timeout and error mapping (``SftpBackend.mapped``).
Guard = Callable[..., AbstractAsyncContextManager[None]]


class PipelinedWriter:
    """Writes in the server's block size with up to ``WRITES_IN_FLIGHT`` requests outstanding."""

    def __init__(self, file: asyncssh.SFTPClientFile, block: int, guard: Guard) -> None:
        self._file, self._block, self._guard = file, block, guard
        self._buffer, self._offset = bytearray(), 0
        self._slots = asyncio.Semaphore(WRITES_IN_FLIGHT)
        self._pending: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None

    async def write(self, data: bytes) -> None:
        # Blocks are cut from ``data`` itself; only a block that spans two writes goes through the buffer.
        view = memoryview(data)
        async with self._guard(writing=True):
            if self._buffer:
                taken = self._block - len(self._buffer)
                self._buffer += view[:taken]
                view = view[taken:]
                if len(self._buffer) < self._block:
                    return
                await self._send(bytes(self._buffer))
                self._buffer.clear()
            while len(view) >= self._block:
                await self._send(view[: self._block].tobytes())
                view = view[self._block :]
            self._buffer += view

    async def _send(self, block: bytes) -> None:
        await self._slots.acquire()
        if self._error is not None:
            self._slots.release()
            raise self._error
        task = asyncio.create_task(self._write_at(block, self._offset))
        self._offset += len(block)
        self._pending.add(task)
        task.add_done_callback(self._done)

    async def _write_at(self, block: bytes, offset: int) -> None:
        try:
            await self._file.write(block, offset)
        finally:
            self._slots.release()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None and self._error is None:
            self._error = task.exception()

    async def finish(self) -> None:
        """Send what is buffered and wait for every write; raises the first write's failure."""
        if self._buffer:
            await self._send(bytes(self._buffer))
            self._buffer.clear()
        await asyncio.gather(*self._pending, return_exceptions=True)
        if self._error is not None:
            raise self._error

    async def abort(self) -> None:
        """Cancel the writes still in flight (the upload failed or was cancelled)."""
        for task in self._pending:
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
