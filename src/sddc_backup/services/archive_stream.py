"""An archive as a ``ByteSource``: written in a worker thread, read as an async stream.

Each ``open()`` builds the components anew and writes a fresh archive (a retried upload replays the
whole backup, from a new database snapshot). Memory is bounded by a small queue between the writer
thread and the consumer; when the consumer stops early (a failed upload, a cancel), the writer is
told to stop, its components are closed, and the thread is joined before ``open()`` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from sddc_backup.archive.entries import ArchiveSource
from sddc_backup.archive.writer import ArchiveSummary, write_archive

QUEUE_CHUNKS = 4  # of about 256 KiB each (the writer's CHUNK)


class _Abandoned(Exception):
    """Raised in the writer thread when the consumer has gone."""


class ArchiveStream:
    def __init__(
        self,
        base: str,
        metadata: Mapping[str, Any],
        components: Callable[[], Sequence[ArchiveSource]],
        passphrase: bytes,
        *,
        mtime: float,
        level: int,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self._base, self._metadata, self._components = base, metadata, components
        self._passphrase, self._mtime, self._level = passphrase, mtime, level
        self._progress = progress
        self.summary: ArchiveSummary | None = None  # set when an open() has run to its end

    async def open(self) -> AsyncIterator[bytes]:
        chunks: queue.Queue[bytes | ArchiveSummary | BaseException] = queue.Queue(QUEUE_CHUNKS)
        stop = threading.Event()

        def put(item: bytes | ArchiveSummary | BaseException) -> None:
            while not stop.is_set():
                try:
                    chunks.put(item, timeout=0.25)
                    return
                except queue.Full:
                    continue
            raise _Abandoned

        def write() -> None:
            try:
                put(
                    write_archive(
                        self._base,
                        self._metadata,
                        self._components(),
                        self._passphrase,
                        put,
                        mtime=self._mtime,
                        level=self._level,
                        hash_output=False,  # the upload hashes what it sends
                    )
                )
            except _Abandoned:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
                with contextlib.suppress(_Abandoned):
                    put(exc)

        writer = threading.Thread(target=write, name="archive-writer", daemon=True)
        writer.start()
        sent = 0
        try:
            while True:
                item = await asyncio.to_thread(chunks.get)
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, ArchiveSummary):
                    self.summary = item
                    return
                sent += len(item)
                if self._progress is not None:
                    self._progress(sent)
                yield item
        finally:
            stop.set()
            await asyncio.to_thread(writer.join)
