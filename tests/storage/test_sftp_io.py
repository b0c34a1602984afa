"""``PipelinedWriter``: however the data arrives, the server gets it in whole blocks at the right offsets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sddc_backup.storage.sftp_io import PipelinedWriter

BLOCK = 7


class RecordingFile:
    def __init__(self) -> None:
        self.writes: list[tuple[int, bytes]] = []

    async def write(self, data: bytes, offset: int) -> None:
        await asyncio.sleep(0)  # completes out of order with its neighbours now and then
        self.writes.append((offset, bytes(data)))


@asynccontextmanager
async def no_guard(*_: Any, **__: Any) -> AsyncIterator[None]:
    yield


async def upload(pieces: list[bytes]) -> RecordingFile:
    file = RecordingFile()
    writer = PipelinedWriter(file, BLOCK, no_guard)  # type: ignore[arg-type]
    for piece in pieces:
        await writer.write(piece)
    await writer.finish()
    return file


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=3 * BLOCK + 2), max_size=12))
def test_blocks_are_whole_contiguous_and_complete(pieces: list[bytes]) -> None:
    file = asyncio.run(upload(pieces))
    data = b"".join(pieces)
    writes = sorted(file.writes)
    assert b"".join(chunk for _, chunk in writes) == data
    assert [offset for offset, _ in writes] == list(range(0, len(data), BLOCK))
    assert all(len(chunk) == BLOCK for _, chunk in writes[:-1])
    assert all(isinstance(chunk, bytes) for _, chunk in file.writes)
