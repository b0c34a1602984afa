"""The TCP connection under the SFTP backend: writes gathered per loop pass, no ignore packets, and the
bytes on the wire unchanged (the conformance suite in test_sftp.py runs over this connection)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import asyncssh
import pytest
from asyncssh.constants import MSG_CHANNEL_DATA, MSG_IGNORE

from sddc_backup.storage.sftp import sftp_storage
from sddc_backup.storage.sftp_transport import FLUSH_AT, PROMPT, CoalescingTransport, without_ignore_packets
from tests.storage.conformance import Bytes, read_all
from tests.storage.conftest import StartSshd, settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordingTransport(asyncio.Transport):
    """Stands in for a socket transport: records what reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("192.0.2.1", 22)}.get(name, default)


def coalescing() -> tuple[CoalescingTransport, RecordingTransport]:
    real = RecordingTransport()
    return CoalescingTransport(real, asyncio.get_running_loop()), real


async def next_pass() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_the_bulk_writes_of_one_pass_go_out_together_and_in_order() -> None:
    transport, real = coalescing()
    a, b, c = (bytes([n]) * PROMPT for n in (1, 2, 3))
    transport.write(a)
    transport.write(bytearray(b))
    transport.write(b"")
    transport.write(memoryview(c))
    assert real.writes == []
    assert transport.get_write_buffer_size() == 3 * PROMPT
    await next_pass()
    assert real.writes == [a + b + c]
    assert transport.get_write_buffer_size() == 0
    transport.write(a)
    await next_pass()
    assert real.writes == [a + b + c, a]


async def test_a_small_write_goes_at_once_with_what_waits_before_it() -> None:
    transport, real = coalescing()
    bulk = b"d" * PROMPT
    transport.write(bulk)
    transport.write(b"read request")  # the server answers it: it must not wait for the pass to end
    assert real.writes == [bulk + b"read request"]
    await next_pass()
    assert real.writes == [bulk + b"read request"]


async def test_a_large_pass_is_sent_in_pieces_of_about_flush_at() -> None:
    transport, real = coalescing()
    packet = bytes(range(256)) * 128  # 32 KiB, an upload's channel packet
    count = 3 * FLUSH_AT // len(packet) + 1
    for _ in range(count):
        transport.write(packet)
    assert [len(w) for w in real.writes] == [FLUSH_AT] * 3  # sent at once: nothing waits for the pass end
    await next_pass()
    assert b"".join(real.writes) == packet * count


async def test_close_sends_what_waits_and_abort_drops_it() -> None:
    transport, real = coalescing()
    transport.write(b"last words" * PROMPT)
    transport.close()
    assert (real.writes, real.closed) == ([b"last words" * PROMPT], True)

    transport, real = coalescing()
    transport.write(b"never sent" * PROMPT)
    transport.abort()
    await next_pass()
    assert (real.writes, real.aborted) == ([], True)


async def test_nothing_is_written_to_a_closing_transport() -> None:
    transport, real = coalescing()
    transport.write(b"late" * PROMPT)
    real.closed = True  # the connection went away before the pass ended
    await next_pass()
    assert real.writes == []
    assert transport.get_extra_info("peername") == ("192.0.2.1", 22)


def test_ignore_packets_are_dropped_and_every_other_packet_passes() -> None:
    sent: list[tuple[int, tuple[bytes, ...], Any]] = []

    class Connection:
        def send_packet(self, pkttype: int, *args: bytes, handler: Any = None) -> None:
            sent.append((pkttype, args, handler))

    conn = Connection()
    without_ignore_packets(conn)
    conn.send_packet(MSG_IGNORE, b"\0\0\0\0")
    conn.send_packet(MSG_CHANNEL_DATA, b"id", b"data", handler="h")
    assert sent == [(MSG_CHANNEL_DATA, (b"id", b"data"), "h")]


@pytest.fixture
def packet_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """asyncssh's packet log (its debug level 3), captured."""
    asyncssh.set_debug_level(3)
    caplog.set_level(logging.DEBUG, logger="asyncssh")
    try:
        yield caplog
    finally:
        asyncssh.set_debug_level(1)


async def test_a_real_upload_sends_no_ignore_packets(
    sshd: StartSshd, packet_log: pytest.LogCaptureFixture
) -> None:
    data = bytes(range(256)) * 4096 * 3  # 3 MiB: about a hundred channel packets
    store = await sftp_storage(settings(sshd()))
    try:
        await store.put("transport.bin", Bytes(data, 64 << 10))
        assert await read_all(store, "transport.bin") == data
    finally:
        await store.close()
    messages = [record.getMessage() for record in packet_log.records]
    sent = [m for m in messages if "Sent MSG_" in m]
    assert sum("Sent MSG_CHANNEL_DATA" in m for m in sent) >= 3 * 1024 // 32
    assert not [m for m in sent if "MSG_IGNORE" in m]
    opening = [m for m in messages if m.startswith("Opening SSH connection to")]
    assert opening and "tunnel" not in opening[0]
