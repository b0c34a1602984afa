"""Reading a whole backup file as it streams in: decrypt, check every member, hash the file.

Used by the restore (which extracts as it reads) and by the verification of a stored backup (which
keeps nothing). The archive reader is synchronous: it runs in a worker thread, pulling the bytes from
a local file or from the backup location through the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sddc_backup.archive.reader import ArchiveReport, MemberSink, read_archive


@dataclass(frozen=True)
class CheckedArchive:
    report: ArchiveReport
    size: int
    sha256: str  # of the encrypted file as read: what its .sha256 sidecar names


async def check_archive(
    chunks: Iterator[bytes],
    passphrase: bytes,
    sink: Callable[[], AbstractContextManager[MemberSink]],
    progress: Callable[[int], None],
) -> CheckedArchive:
    """Read all of ``chunks`` through the archive reader into the sink that ``sink()`` opens.

    ``progress`` is called on the event loop with the number of bytes read so far. Raises the
    reader's errors (wrong passphrase, corruption, manifest mismatch) and the sink's.
    """
    loop = asyncio.get_running_loop()
    digest = hashlib.sha256()
    size = 0

    def counted() -> Iterator[bytes]:
        nonlocal size
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            loop.call_soon_threadsafe(progress, size)
            yield chunk

    def read() -> ArchiveReport:
        with sink() as opened:
            return read_archive(counted(), passphrase, opened)

    report = await asyncio.to_thread(read)
    return CheckedArchive(report, size, digest.hexdigest())


def from_async(chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> Iterator[bytes]:
    """An async byte stream, read from a worker thread."""
    while (chunk := asyncio.run_coroutine_threadsafe(_next(chunks), loop).result()) is not None:
        yield chunk


async def _next(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None
