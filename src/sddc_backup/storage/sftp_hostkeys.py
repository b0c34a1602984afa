"""SSH host-key pinning for the SFTP backend.

A server is trusted only through the SHA-256 fingerprint of one of its host keys (``SHA256:`` + unpadded
base64, as ``ssh-keygen -l -E sha256`` prints it). A fingerprint does not say which key type it belongs
to, so the server is probed, one host key algorithm at a time, with handshakes that end before
authentication; the connection is then restricted to the algorithm that carries the pinned key, so a
wrong key is refused before any credential is sent. Without a fingerprint nothing connects: the error
lists the keys the server offers, for the operator to confirm.
"""

from __future__ import annotations

import asyncio

import asyncssh

from sddc_backup.storage.errors import (
    FingerprintRequiredError,
    HostKeyMismatchError,
    HostKeyTypeNotOfferedError,
    HostUnreachableError,
)

# Tried in this order. VCF 9 requires ECDSA, so it comes first; ``ssh-rsa`` (SHA-1) is never offered.
PROBE_ORDER = (
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-ed25519",
    "rsa-sha2-512",
    "rsa-sha2-256",
)
# OpenSSH ends the handshake (a reset) when it has no key for the only algorithm we allow.
REFUSED = (ConnectionResetError, BrokenPipeError, asyncssh.DisconnectError)

_Pin = tuple[str, int, str]
_ALGORITHMS: dict[_Pin, str] = {}  # (host, port, fingerprint) -> the algorithm that carries the key
_KINDS: dict[_Pin, str] = {}  # (host, port, fingerprint) -> the key's type, kept after the key goes


def kind(algorithm: str) -> str:
    """The key type behind a host key algorithm: ``ECDSA``, ``Ed25519`` or ``RSA``."""
    return "ECDSA" if algorithm.startswith("ecdsa") else "Ed25519" if "ed25519" in algorithm else "RSA"


def unreachable(host: str, port: int, exc: OSError, wait: float) -> HostUnreachableError:
    why = f"no answer within {wait:g} s" if isinstance(exc, TimeoutError) else exc.strerror or exc
    return HostUnreachableError(f"The SSH server {host}:{port} cannot be reached: {why}.")


async def _probe(host: str, port: int, algorithm: str, wait: float) -> asyncssh.SSHKey | None:
    """The server's key for ``algorithm``, ``None`` if it has none."""
    try:
        async with asyncio.timeout(wait):
            return await asyncssh.get_server_host_key(
                host, port, server_host_key_algs=[algorithm], config=None
            )
    except REFUSED:
        return None
    except OSError as exc:  # refused, no route, unknown name, timed out
        raise unreachable(host, port, exc, wait) from exc


async def offered_keys(
    host: str, port: int, wait: float, stop_at: str | None = None
) -> list[tuple[str, str]]:
    """(algorithm, fingerprint) for each algorithm the server has a key for, in ``PROBE_ORDER``;
    stops at the key whose fingerprint is ``stop_at``."""
    found: list[tuple[str, str]] = []
    for algorithm in PROBE_ORDER:
        key = await _probe(host, port, algorithm, wait)
        if key is not None:
            found.append((algorithm, key.get_fingerprint("sha256")))
            if found[-1][1] == stop_at:
                break
    return found


def listing(offered: list[tuple[str, str]]) -> str:
    """Each offered key once (an RSA key answers to two algorithms), in the order offered."""
    seen: dict[str, str] = {}
    for alg, fp in offered:
        seen.setdefault(fp, "ssh-rsa" if alg.startswith("rsa-") else alg)
    return ", ".join(f"{kind(alg)} ({alg}) {fp}" for fp, alg in seen.items()) or "no usable host key"


async def fetch_host_keys(host: str, port: int, timeout: float = 15.0) -> list[tuple[str, str]]:  # noqa: ASYNC109
    """(key type, fingerprint) of each host key the server offers, ECDSA first. The key type is the
    key's SSH name: ``ecdsa-sha2-nistp256`` (or ``-nistp384``/``-nistp521``), ``ssh-ed25519``,
    ``ssh-rsa``. ``timeout`` applies to each probe; no credentials are sent."""
    keys: list[tuple[str, str]] = []
    for algorithm, fingerprint in await offered_keys(host, port, timeout):
        if all(fp != fingerprint for _, fp in keys):
            keys.append(("ssh-rsa" if algorithm.startswith("rsa-") else algorithm, fingerprint))
    return keys


async def pinned_algorithm(
    host: str, port: int, fingerprint: str | None, wait: float, *, fresh: bool = False
) -> str:
    """The host key algorithm that carries the pinned key (remembered per host, port and fingerprint;
    probed again when ``fresh``), or the error that says why there is none."""
    server = f"{host}:{port}"
    if fingerprint is None:
        offered = await offered_keys(host, port, wait)
        raise FingerprintRequiredError(
            f"No SSH fingerprint is configured for {server}, and backups never go to an unverified "
            f"server. The server offers: {listing(offered)}. Confirm one with the server's "
            "administrator (VCF 9 requires the ECDSA one) and set it as sshFingerprint."
        )
    pin = (host, port, fingerprint)
    if fresh:
        _ALGORITHMS.pop(pin, None)
    if pin in _ALGORITHMS:
        return _ALGORITHMS[pin]
    offered = await offered_keys(host, port, wait, stop_at=fingerprint)
    for algorithm, found in offered:
        if found == fingerprint:
            _ALGORITHMS[pin], _KINDS[pin] = algorithm, kind(algorithm)
            return algorithm
    known = _KINDS.get(pin)
    if not offered or (known is not None and known not in {kind(alg) for alg, _ in offered}):
        was = f"the pinned {known} key" if known else "a host key of a supported type"
        raise HostKeyTypeNotOfferedError(
            f"{server} does not offer {was} (pinned {fingerprint}); it offers: {listing(offered)}."
        )
    hint = (
        ""
        if any(kind(alg) == "ECDSA" for alg, _ in offered)
        else " It offers no ECDSA key (VCF 9 needs one)."
    )
    raise HostKeyMismatchError(
        f"No host key of {server} has the pinned fingerprint: expected {fingerprint}, the server offers "
        f"{listing(offered)}. Nothing was sent to the server.{hint}"
    )


def remembered(host: str, port: int, fingerprint: str | None) -> bool:
    """Whether the algorithm of this pinned key is known from an earlier probe."""
    return (host, port, fingerprint or "") in _ALGORITHMS


class PinnedHost(asyncssh.SSHClient):
    """Accepts the server's host key only when its fingerprint is the pinned one."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.offered: str | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.offered = key.get_fingerprint("sha256")
        return self.offered == self.fingerprint
