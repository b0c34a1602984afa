"""Which failure a broken backup reports: the component's (its input) or the output's."""

from __future__ import annotations

import errno
import io
import os

import pytest

from sddc_backup.archive.entries import Entry, EntryType
from sddc_backup.archive.errors import ComponentFailedError
from sddc_backup.archive.writer import write_archive
from tests.archive.builders import BASE, METADATA, PASS, MemorySource

SIZE = 4 << 20  # random, so that the output is as large: it is written while the file is read


class _FailingAfter(io.BytesIO):
    """A file that can be read up to ``good`` bytes, then fails like a lost disk."""

    def __init__(self, data: bytes, good: int) -> None:
        super().__init__(data)
        self._good = good

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= self._good:
            raise OSError(errno.EIO, "Input/output error")
        return super().read(size)


def test_a_full_output_while_a_file_is_archived_is_the_outputs_failure_not_the_files() -> None:
    data = os.urandom(SIZE)
    written = 0

    def out(chunk: bytes) -> None:
        nonlocal written
        if written + len(chunk) > SIZE // 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        written += len(chunk)

    entry = Entry("files/big.bin", EntryType.FILE, size=SIZE, open=lambda: io.BytesIO(data))
    with pytest.raises(OSError) as raised:
        write_archive(BASE, METADATA, [MemorySource("files", [entry])], PASS, out, mtime=0)
    assert raised.type is OSError and raised.value.errno == errno.ENOSPC


def test_a_file_that_fails_to_read_is_the_components_failure_and_names_the_file() -> None:
    data = os.urandom(SIZE)
    entry = Entry("files/big.bin", EntryType.FILE, size=SIZE, open=lambda: _FailingAfter(data, SIZE // 2))
    with pytest.raises(ComponentFailedError, match=r"files: files/big.bin: reading failed: .*Input/output"):
        write_archive(BASE, METADATA, [MemorySource("files", [entry])], PASS, lambda chunk: None, mtime=0)


def test_a_file_that_grew_while_it_was_read_is_refused() -> None:
    data = b"x" * 1000
    entry = Entry("files/log", EntryType.FILE, size=900, open=lambda: io.BytesIO(data))
    with pytest.raises(
        ComponentFailedError, match=r"changed size while it was read \(900 bytes expected, 901\+"
    ):
        write_archive(BASE, METADATA, [MemorySource("files", [entry])], PASS, lambda chunk: None, mtime=0)
