"""Pass 2 of the dump as a file object, and the pinning of sequence values between the two passes.

Sequences are not transactional: ``pg_dump`` reads their current value, not the snapshot's, so a
``nextval()`` between the passes changes the ``SELECT pg_catalog.setval(...)`` lines of pass 2. Pass 1
records those lines; pass 2 writes pass 1's line in place of its own (same sequence, same position), so
both passes give the same bytes. The values are then those read during pass 1, after the snapshot was
taken: at or beyond the snapshot's, which is all a sequence needs.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from sddc_backup.archive.errors import ComponentFailedError
from sddc_backup.services.components._pg import PgProcess

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_NEEDLE = b"\nSELECT pg_catalog.setval("
_MAX_LINE = 4096  # pg_dump's setval lines are a few hundred bytes at most
_SETVAL = re.compile(rb"(SELECT pg_catalog\.setval\(.*), -?\d+, (?:true|false)\);")
_READ = 1 << 16


class SequencePins:
    """A filter over the dump: records its setval lines, and writes ``pinned`` ones in their place.

    Whether a line counts depends only on its content (never on how the stream is cut into chunks),
    so both passes see the same lines at the same positions.
    """

    def __init__(self, pinned: list[bytes] | None = None) -> None:
        self.lines: list[bytes] = []
        self._pinned = pinned
        self._carry = b""

    def feed(self, data: bytes) -> bytes:
        buf = self._carry + data if self._carry else data
        out: list[bytes] = []
        pos = 0
        while True:
            start = buf.find(_NEEDLE, pos)
            if start < 0:
                keep = max(pos, len(buf) - len(_NEEDLE) + 1)
                out.append(buf[pos:keep])
                self._carry = buf[keep:]
                break
            end = buf.find(b"\n", start + 1)
            if end < 0 and len(buf) - start - 1 > _MAX_LINE:
                out.append(buf[pos : start + 1])  # too long to be one of pg_dump's: plain data
                pos = start + 1
                continue
            if end < 0:
                out.append(buf[pos:start])
                self._carry = buf[start:]  # wait for the end of the line
                break
            out.append(buf[pos : start + 1])
            out.append(self._pin(buf[start + 1 : end]))
            pos = end  # the newline may start the next match
        return b"".join(out)

    def finish(self) -> bytes:
        rest, self._carry = self._carry, b""
        return rest

    def _pin(self, line: bytes) -> bytes:
        match = _SETVAL.fullmatch(line) if len(line) <= _MAX_LINE else None
        if match is None:
            return line
        index = len(self.lines)
        self.lines.append(line)
        if self._pinned is not None and index < len(self._pinned):
            pinned = _SETVAL.fullmatch(self._pinned[index])
            if pinned is not None and pinned.group(1) == match.group(1):
                return self._pinned[index]
        return line


class DumpStream(io.BufferedIOBase):
    """Pass 2's output. ``read(n)`` returns ``n`` bytes unless at the end.

    ``close()`` after the end (or after reading the size of pass 1) waits for ``pg_dump`` and raises
    ``ComponentFailedError`` with its stderr when it failed, or when it wrote more than pass 1.
    ``close()`` before that point means the reader gave up: ``pg_dump`` is killed, nothing is raised.
    """

    def __init__(
        self,
        process: PgProcess,
        pins: SequencePins,
        expected_size: int,
        on_started: Callable[[], None],
        failed: Callable[[str], ComponentFailedError],
    ) -> None:
        super().__init__()
        self._process = process
        self._pins = pins
        self._expected = expected_size
        self._on_started = on_started
        self._failed = failed
        self._buffer = bytearray()
        self._count = 0
        self._eof = False  # pg_dump's stdout is at its end (the buffer may still hold data)

    @property
    def pid(self) -> int:
        """The process id of pass 2's ``pg_dump``."""
        return self._process.pid

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        wanted = -1 if size is None or size < 0 else size
        while not self._eof and (wanted < 0 or len(self._buffer) < wanted):
            self._fill()
        return self._take(len(self._buffer) if wanted < 0 else wanted)

    def read1(self, size: int = -1) -> bytes:
        self._check_open()
        if not self._buffer and not self._eof:
            self._fill()
        return self._take(len(self._buffer) if size < 0 else size)

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._finish()
        finally:
            self._process.close()
            super().close()

    def abandon(self) -> None:
        """Close without raising, killing ``pg_dump`` if it still runs."""
        if not self.closed:
            self._process.kill()
            self._process.close()
            super().close()

    def __del__(self) -> None:
        self.abandon()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("read from a closed pg_dump stream")

    def _fill(self) -> None:
        chunk = self._process.stdout.read1(_READ)
        if chunk:
            self._buffer += self._pins.feed(chunk)
        else:
            self._buffer += self._pins.finish()
            self._eof = True
        self._on_started()  # pg_dump has imported the snapshot: the exporting session may end

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        self._count += len(data)
        return data

    def _finish(self) -> None:
        at_end = self._eof and not self._buffer
        if not at_end and self._count >= self._expected:
            # The reader took pass 1's size without looking further: look now.
            while not self._eof and not self._buffer:
                self._fill()
            if self._buffer:
                self._process.kill()
                raise self._failed(
                    f"pg_dump (pass 2, streaming) wrote more than the {self._expected} bytes of pass 1"
                )
            at_end = True
        if not at_end:
            self._process.kill()
            return
        returncode = self._process.finish()
        if returncode != 0:
            raise self._failed(f"pg_dump (pass 2, streaming) {self._process.failure(returncode)}")
