"""The TCP connection under our SSH client, built for bulk uploads (ADR 0018).

asyncssh hands each SSH packet to its transport on its own, and with an encrypting cipher puts an
empty ``MSG_IGNORE`` packet before every one. An upload travels in 32 KiB channel packets (OpenSSH's
limit), so each 32 KiB cost two ``send`` system calls and two packets for the server to decrypt and
discard. ``DirectConnector`` changes two things and nothing else on the wire:

- the ignore packets are not sent. They are a countermeasure for CBC ciphers, which we never
  negotiate (only AEAD and CTR ciphers are offered), and OpenSSH's own client does not send them;
- the bulk data that one event-loop pass writes goes out in one ``send`` of up to ``FLUSH_AT`` bytes
  (``CoalescingTransport``); a small packet (a request the server must answer) is sent at once.

It is passed to ``asyncssh.connect`` as ``tunnel``: asyncssh accepts any object with
``create_connection(session_factory, host, port)`` there and builds its connection on what it returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

from asyncssh.constants import MSG_IGNORE

FLUSH_AT = 256 << 10  # bytes gathered before a send within one pass; larger joins cost more than they save
PROMPT = 4 << 10  # a write smaller than this is sent at once
_log = logging.getLogger("asyncssh")


class CoalescingTransport(asyncio.Transport):
    """A real transport whose writes are gathered and sent at the end of the loop pass, as soon as
    ``FLUSH_AT`` bytes wait, or with the next write under ``PROMPT`` bytes. Order is kept; ``close``
    sends what waits, ``abort`` drops it."""

    def __init__(self, real: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._real, self._loop = real, loop
        self._waiting: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._waiting:
            self._loop.call_soon(self.flush)
        self._waiting.append(bytes(data))
        self._size += len(data)
        # A small packet (a read request, a window adjust) is what the other side waits for: it goes
        # at once, with whatever waits before it. Bulk data waits for the end of the pass.
        if self._size >= FLUSH_AT or len(data) < PROMPT:
            self.flush()

    def flush(self) -> None:
        """Hand what waits to the real transport now (a no-op when nothing waits)."""
        if not self._waiting:
            return
        data = self._waiting[0] if len(self._waiting) == 1 else b"".join(self._waiting)
        self._waiting.clear()
        self._size = 0
        if not self._real.is_closing():
            self._real.write(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def get_write_buffer_size(self) -> int:
        return self._size + self._real.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._real.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._real.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return self._real.can_write_eof()

    def write_eof(self) -> None:
        self.flush()
        self._real.write_eof()

    def close(self) -> None:
        self.flush()
        self._real.close()

    def abort(self) -> None:
        self._waiting.clear()
        self._size = 0
        self._real.abort()

    def is_closing(self) -> bool:
        return self._real.is_closing()

    def is_reading(self) -> bool:
        return self._real.is_reading()

    def pause_reading(self) -> None:
        self._real.pause_reading()

    def resume_reading(self) -> None:
        self._real.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._real.get_extra_info(name, default)


class _Relay(asyncio.Protocol):
    """The real transport's protocol: gives the SSH connection a ``CoalescingTransport`` and passes
    every event on to it."""

    def __init__(self, inner: asyncio.Protocol) -> None:
        self.inner = inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's do not derive from asyncio.Transport, so this is not checked.
        stream = cast(asyncio.Transport, transport)
        self.inner.connection_made(CoalescingTransport(stream, asyncio.get_running_loop()))

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


def without_ignore_packets(conn: Any) -> None:
    """Make ``conn`` (an asyncssh connection) drop the ``MSG_IGNORE`` packets it sends; every other
    packet goes through its own ``send_packet`` unchanged."""
    send = conn.send_packet

    def send_packet(pkttype: int, *args: bytes, handler: Any = None) -> None:
        if pkttype != MSG_IGNORE:
            send(pkttype, *args, handler=handler)

    conn.send_packet = send_packet


class _ConnectLog:
    """asyncssh logs a connection made through a ``tunnel`` as "via SSH tunnel"; this one is direct."""

    def info(self, message: str, *args: Any) -> None:
        _log.info(message.removesuffix(" via SSH tunnel"), *args)


class DirectConnector:
    """``asyncssh.connect(host, port, tunnel=DirectConnector(), ...)``: a direct TCP connection to
    ``host:port`` with coalesced writes and no ignore packets."""

    logger = _ConnectLog()

    async def create_connection(
        self, session_factory: Callable[[], asyncio.Protocol], host: str, port: int
    ) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
        def relay() -> _Relay:
            conn = session_factory()
            without_ignore_packets(conn)
            return _Relay(conn)

        transport, made = await asyncio.get_running_loop().create_connection(relay, host, port)
        return transport, made.inner
