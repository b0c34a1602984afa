"""The ``SFTP`` backend: a directory on an SSH server, over one asyncssh connection per backend.

The connection opens lazily on the first operation and again after a loss; ``close`` ends it. The
server is trusted only through the pinned SHA-256 fingerprint of a host key: ``sftp_hostkeys`` finds
the key's algorithm and the connection is restricted to it, so a wrong key is refused before any
credential is sent; without a fingerprint nothing connects. Uploads keep several writes in flight
(``sftp_io``); reads ask for large blocks, which asyncssh splits into parallel server-sized requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncssh
from asyncssh.constants import FILEXFER_TYPE_REGULAR, FXF_CREAT, FXF_EXCL, FXF_READ, FXF_WRITE
from asyncssh.known_hosts import KnownHostsArg

from sddc_backup.domain.storage import ObjectInfo
from sddc_backup.storage.errors import (
    ConnectionLostError,
    HostKeyMismatchError,
    LocationFullError,
    LocationNotFoundError,
    LocationNotWritableError,
    LoginFailedError,
    ObjectNotFoundError,
    StorageError,
    StorageTimeoutError,
)
from sddc_backup.storage.sftp_hostkeys import (
    REFUSED,
    PinnedHost,
    fetch_host_keys,
    kind,
    pinned_algorithm,
    remembered,
    unreachable,
)
from sddc_backup.storage.sftp_io import PipelinedWriter
from sddc_backup.storage.sftp_transport import DirectConnector
from sddc_backup.storage.store import ObjectStore, Writer

CIPHERS = "^aes256-gcm@openssh.com,aes128-gcm@openssh.com"  # AES-GCM first, then asyncssh's defaults
READ_CHUNK = 2 << 20  # bytes per ``read`` call; asyncssh splits it into parallel server-sized requests
NEARLY_FULL = 1 << 20  # a generic write failure with less free space than this means "full"
# Trust no known_hosts file (a falsy value would fall back to ~/.ssh/known_hosts): every key goes
# through ``PinnedHost.validate_host_public_key``.
_NO_KNOWN_HOSTS: KnownHostsArg = ((), (), (), (), (), (), ())
_LOST = (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection, asyncssh.DisconnectError, ConnectionError)
__all__ = ["SftpBackend", "SftpSettings", "fetch_host_keys", "sftp_storage"]


@dataclass(frozen=True)
class SftpSettings:
    host: str
    port: int
    username: str
    directory: str
    password: str | None = field(default=None, repr=False)
    client_keys: tuple[str, ...] = ()
    fingerprint: str | None = None
    connect_timeout: float = 15.0
    op_timeout: float = 60.0
    keepalive_interval: float = 15.0


def _check_directory(directory: str) -> str:
    if not directory.startswith("/") or "\x00" in directory or ".." in directory.split("/"):
        raise LocationNotFoundError(
            f"The backup directory {directory!r} must be an absolute path without '..' segments or NUL bytes."
        )
    return directory.rstrip("/") or "/"


def _info(name: str, attrs: asyncssh.SFTPAttrs) -> ObjectInfo:
    return ObjectInfo(name, attrs.size or 0, datetime.fromtimestamp(attrs.mtime or 0, UTC))


class SftpBackend:
    def __init__(self, settings: SftpSettings) -> None:
        self.settings = settings
        self.directory = _check_directory(settings.directory)
        self.where = f"{settings.username}@{settings.host}:{settings.port}:{self.directory}"
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._lock = asyncio.Lock()

    def _path(self, name: str) -> str:
        return f"{self.directory.rstrip('/')}/{name}"

    # -- connecting ---------------------------------------------------------------------------------

    async def _login(self, algorithm: str) -> tuple[asyncssh.SSHClientConnection, asyncssh.SFTPClient]:
        s, server = self.settings, f"{self.settings.host}:{self.settings.port}"
        pinned = PinnedHost(s.fingerprint or "")
        try:
            keys = [asyncssh.read_private_key(path) for path in s.client_keys]
        except (OSError, asyncssh.KeyImportError) as exc:
            raise LoginFailedError(f"The SSH client key for {server} cannot be used: {exc}.") from exc
        try:
            conn = await asyncssh.connect(
                s.host,
                s.port,
                client_factory=lambda: pinned,
                known_hosts=_NO_KNOWN_HOSTS,
                server_host_key_algs=[algorithm],
                encryption_algs=CIPHERS,
                username=s.username,
                password=s.password,
                client_keys=keys or None,
                agent_path=None,
                config=None,
                gss_host=None,
                connect_timeout=s.connect_timeout,
                keepalive_interval=s.keepalive_interval,
                tunnel=DirectConnector(),
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise HostKeyMismatchError(
                f"The host key of {server} does not match: expected {s.fingerprint}, the server offered "
                f"{kind(algorithm)} ({algorithm}) {pinned.offered}. Nothing was sent to the server."
            ) from exc
        except asyncssh.PermissionDenied as exc:
            how = "password" if s.password is not None else "key"
            raise LoginFailedError(f"{server} refused the {how} login of user {s.username!r}.") from exc
        except REFUSED as exc:
            raise ConnectionLostError(
                f"{server} closed the connection during the SSH handshake: {exc}."
            ) from exc
        except OSError as exc:
            raise unreachable(s.host, s.port, exc, s.connect_timeout) from exc
        try:
            async with asyncio.timeout(s.op_timeout):
                return conn, await conn.start_sftp_client()
        except BaseException as exc:
            conn.abort()
            if isinstance(exc, (asyncssh.Error, OSError)):
                raise StorageError(f"{server} offers no SFTP service to {s.username!r}: {exc}.") from exc
            raise

    async def _client(self) -> asyncssh.SFTPClient:
        """The SFTP session, connecting first when there is none (or it was lost)."""
        async with self._lock:
            if self._sftp is None or self._conn is None or self._conn.is_closed():
                await self._drop()
                s = self.settings
                pin = (s.host, s.port, s.fingerprint, s.connect_timeout)
                cached = remembered(s.host, s.port, s.fingerprint)
                try:
                    self._conn, self._sftp = await self._login(await pinned_algorithm(*pin))
                except (HostKeyMismatchError, ConnectionLostError):
                    if not cached:
                        raise
                    # The server changed since the key was found: look for it again.
                    self._conn, self._sftp = await self._login(await pinned_algorithm(*pin, fresh=True))
            return self._sftp

    async def _drop(self, failed: asyncssh.SSHClientConnection | None = None) -> None:
        """Close the connection (only if it is still ``failed``, when given: not a newer one)."""
        conn = self._conn
        if failed is not None and conn is not failed:
            return
        self._conn, self._sftp = None, None
        if conn is not None:
            conn.abort()
            with suppress(asyncssh.Error, OSError):
                async with asyncio.timeout(5):
                    await conn.wait_closed()

    # -- failures -----------------------------------------------------------------------------------

    @asynccontextmanager
    async def mapped(self, name: str = "", *, writing: bool = False) -> AsyncIterator[None]:
        """Run one operation under the operation timeout, mapping SFTP failures to storage errors."""
        conn = self._conn
        try:
            async with asyncio.timeout(self.settings.op_timeout):
                yield
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath) as exc:
            if name and await self._directory_exists():
                raise ObjectNotFoundError(f"{name} does not exist in {self.where}.") from exc
            raise LocationNotFoundError(f"The backup directory {self.where} does not exist.") from exc
        except (asyncssh.SFTPPermissionDenied, asyncssh.SFTPWriteProtect) as exc:
            raise LocationNotWritableError(f"{self.where}: permission denied ({exc.reason}).") from exc
        except (asyncssh.SFTPNoSpaceOnFilesystem, asyncssh.SFTPQuotaExceeded) as exc:
            raise LocationFullError(f"No space left in {self.where}: {exc.reason}.") from exc
        except _LOST as exc:
            await self._drop(conn)
            raise ConnectionLostError(f"The connection to {self.where} was lost: {exc}.") from exc
        except TimeoutError as exc:
            await self._drop(conn)
            raise StorageTimeoutError(
                f"{self.where} did not answer within {self.settings.op_timeout:g} s."
            ) from exc
        except asyncssh.SFTPError as exc:
            if writing and isinstance(exc, asyncssh.SFTPFailure) and await self._nearly_full():
                raise LocationFullError(f"No space left in {self.where}.") from exc
            raise StorageError(f"{self.where}: {exc.reason}.") from exc

    async def _directory_exists(self) -> bool:
        sftp = self._sftp
        with suppress(asyncssh.Error, OSError):
            if sftp is not None:
                async with asyncio.timeout(self.settings.op_timeout):
                    return await sftp.isdir(self.directory)
        return True

    async def _nearly_full(self) -> bool:
        with suppress(asyncssh.Error, OSError, StorageError):
            free = await self.free_space()
            return free is not None and free < NEARLY_FULL
        return False

    # -- RawBackend ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def open_write(self, name: str) -> AsyncIterator[Writer]:
        sftp = await self._client()
        async with self.mapped(writing=True):
            attrs = asyncssh.SFTPAttrs(permissions=0o600)
            file = await sftp.open(self._path(name), FXF_WRITE | FXF_CREAT | FXF_EXCL, attrs, encoding=None)
        upload = PipelinedWriter(file, sftp.limits.max_write_len or 32 << 10, self.mapped)
        try:
            yield upload
            async with self.mapped(writing=True):
                await upload.finish()
                with suppress(asyncssh.SFTPOpUnsupported):
                    await file.fsync()
                await file.close()
        except BaseException:
            await upload.abort()
            with suppress(asyncssh.Error, OSError):
                async with asyncio.timeout(5):
                    await file.close()
            raise

    async def read(self, name: str, offset: int, length: int | None) -> AsyncIterator[bytes]:
        sftp = await self._client()
        async with self.mapped(name):
            file = await sftp.open(self._path(name), FXF_READ, encoding=None)
        try:
            position, left = offset, length
            while left is None or left > 0:
                async with self.mapped(name):
                    chunk: bytes = await file.read(
                        READ_CHUNK if left is None else min(READ_CHUNK, left), position
                    )
                if not chunk:
                    break
                position += len(chunk)
                left = None if left is None else left - len(chunk)
                yield chunk
        finally:
            with suppress(asyncssh.Error, OSError):
                async with asyncio.timeout(5):
                    await file.close()

    async def stat(self, name: str) -> ObjectInfo:
        sftp = await self._client()
        async with self.mapped(name):
            return _info(name, await sftp.stat(self._path(name)))

    async def names(self) -> list[ObjectInfo]:
        sftp = await self._client()
        async with self.mapped():
            entries = await sftp.readdir(self.directory)
        return [
            _info(e.filename if isinstance(e.filename, str) else e.filename.decode(), e.attrs)
            for e in entries
            if e.attrs.type == FILEXFER_TYPE_REGULAR
        ]

    async def rename(self, old: str, new: str) -> None:
        sftp = await self._client()
        async with self.mapped(old):
            try:
                await sftp.posix_rename(self._path(old), self._path(new))
            except asyncssh.SFTPOpUnsupported:
                with suppress(asyncssh.SFTPNoSuchFile):
                    await sftp.remove(self._path(new))
                await sftp.rename(self._path(old), self._path(new))

    async def delete(self, name: str) -> None:
        sftp = await self._client()
        async with self.mapped(name):
            await sftp.remove(self._path(name))

    async def free_space(self) -> int | None:
        sftp = await self._client()
        async with self.mapped():
            try:
                vfs = await sftp.statvfs(self.directory)
            except asyncssh.SFTPOpUnsupported:
                return None
        return int(vfs.bavail * vfs.frsize)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


async def sftp_storage(settings: SftpSettings) -> ObjectStore:
    """An ``ObjectStore`` on an SFTP directory. Connects lazily, on the first operation."""
    return ObjectStore(SftpBackend(settings), f"SFTP {settings.username}@{settings.host}:{settings.port}")
