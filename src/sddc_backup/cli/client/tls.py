"""Trusting the server's TLS certificate: a pinned SHA-256 fingerprint, a CA file, or the system store.

The check happens in the TLS handshake itself, so it is done before any request (and any credential)
is written to the connection. With a pin, the certificate chain and the host name are not checked:
the fingerprint names the one certificate to accept, whoever signed it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import socket
import ssl
from pathlib import Path
from typing import Any

from sddc_backup.cli.client.errors import ClientError, ExitCode

_PREFIX = re.compile(r"^(sha-?256)\s*(fingerprint)?\s*[:=]?\s*", re.IGNORECASE)


def parse_fingerprint(text: str) -> bytes:
    """The 32 bytes that ``text`` names. Accepted: hex with or without colons (as the server prints it
    at start, and as ``openssl x509 -fingerprint -sha256`` does), optionally after ``SHA256:`` or
    ``sha256 Fingerprint=``; or ``SHA256:`` with base64, padded or not."""
    value = text.strip()
    prefixed = _PREFIX.match(value)
    rest = value[prefixed.end() :] if prefixed else value
    compact = rest.replace(":", "").replace(" ", "")
    if re.fullmatch(r"[0-9a-fA-F]{64}", compact):
        return bytes.fromhex(compact)
    if prefixed:
        try:
            raw = base64.b64decode(rest + "=" * (-len(rest) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 32:
            return raw
    raise ClientError(
        "INVALID_FINGERPRINT",
        f"{text!r} is not a SHA-256 certificate fingerprint.",
        "Use the fingerprint the server prints at start (64 hex digits, colons allowed), "
        "or SHA256: followed by its base64 form.",
        ExitCode.BAD_INPUT,
    )


def display_fingerprint(digest: bytes) -> str:
    """Colon-separated upper-case hex: the form the server prints at start."""
    return digest.hex(":").upper()


class _CheckedSocket(ssl.SSLSocket):
    """Checks the peer certificate against the context's pin right after the handshake."""

    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        context = self.context
        if isinstance(context, PeerCheckingContext):
            context.check_peer(self.getpeercert(binary_form=True))


class PinMismatchError(ssl.SSLCertVerificationError):
    """The certificate is not the pinned one (an ``OSError``, so HTTP clients report a connect error)."""


class PeerCheckingContext(ssl.SSLContext):
    """A client context that remembers the last peer's fingerprint and, when pinned, refuses others."""

    pin: bytes | None = None
    peer: bytes | None = None  # SHA-256 of the last certificate seen
    sslsocket_class = _CheckedSocket

    def check_peer(self, der: bytes | None) -> None:
        self.peer = hashlib.sha256(der).digest() if der else None
        if self.pin is not None and self.peer != self.pin:
            raise PinMismatchError("the server's certificate is not the pinned one")


def build_context(ca_cert: Path | None, pin: bytes | None) -> PeerCheckingContext:
    """TLS 1.2 or later; trust ``pin`` alone, or ``ca_cert``, or the system's trust store."""
    context = PeerCheckingContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if pin is not None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # replaced by the exact fingerprint check
        context.pin = pin
    elif ca_cert is not None:
        try:
            context.load_verify_locations(cafile=str(ca_cert))
        except (OSError, ssl.SSLError) as exc:
            raise ClientError(
                "CA_CERT_UNREADABLE",
                f"The CA certificate file {ca_cert} cannot be used: {exc}.",
                "Give a PEM file with the server's certificate or its CA.",
                ExitCode.BAD_INPUT,
            ) from exc
    else:
        context.load_default_certs()
    return context


def presented_fingerprint(host: str, port: int, timeout: float = 10.0) -> bytes | None:
    """The SHA-256 of the certificate that ``host:port`` presents, read without trusting it and without
    sending anything; ``None`` when it cannot be read."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only to show the operator what is presented
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    return hashlib.sha256(der).digest() if der else None


def find_cause(exc: BaseException, kind: type[BaseException]) -> Any:
    """The first exception of ``kind`` in the cause/context chain of ``exc``, or ``None``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
