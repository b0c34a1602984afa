"""The SFTP backend against real OpenSSH servers: the conformance suite once per pinned key type, then
host-key pinning, logins and the failures an operator meets."""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from sddc_backup.storage.errors import (
    ConnectionLostError,
    FingerprintRequiredError,
    HostKeyMismatchError,
    HostKeyTypeNotOfferedError,
    HostUnreachableError,
    LocationFullError,
    LocationNotFoundError,
    LocationNotWritableError,
    LoginFailedError,
    StorageTimeoutError,
)
from sddc_backup.storage.sftp import SftpBackend, SftpSettings, fetch_host_keys, sftp_storage
from sddc_backup.storage.store import ObjectStore
from sddc_backup.storage.wrappers import RetryingStorage, RetryPolicy
from tests.storage.conformance import *  # noqa: F403 - the shared suite runs here
from tests.storage.conformance import NAME, Bytes, read_all
from tests.storage.conftest import OpenStore, StartSshd, settings
from tests.support.ports import free_port
from tests.support.sshd import KEY_TYPES, SshServer, fingerprint, keygen

pytestmark = pytest.mark.anyio
AUTH_ATTEMPT = "userauth-request for user"  # what sshd logs at DEBUG when a client starts to log in


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def backend(store: ObjectStore) -> SftpBackend:
    assert isinstance(store.raw, SftpBackend)
    return store.raw


@pytest.fixture(params=KEY_TYPES)
async def storage(request: pytest.FixtureRequest, sshd: StartSshd) -> AsyncIterator[ObjectStore]:
    """The server offers all three key types; the backend pins the parameter's one."""
    store = await sftp_storage(settings(sshd(), pinned=request.param))
    yield store
    await store.close()


async def test_a_wrong_fingerprint_is_refused_before_any_login(
    open_store: OpenStore, sshd: StartSshd, tmp_path: Path
) -> None:
    server = sshd()
    other = fingerprint(keygen(tmp_path / "other", "ecdsa").with_suffix(".pub"))
    store = await open_store(settings(server, fingerprint=other))
    with pytest.raises(HostKeyMismatchError) as caught:
        await store.list_objects()
    assert caught.value.error_code == "SSH_FINGERPRINT_MISMATCH"
    assert other in caught.value.message and server.fingerprints["ecdsa"] in caught.value.message
    assert AUTH_ATTEMPT not in server.log()  # the password never left the client
    good = await open_store(settings(server))
    assert await good.list_objects() == []
    assert f"{AUTH_ATTEMPT} {server.user}" in server.log()  # the log would have shown a login


async def test_a_changed_host_key_is_refused_on_reconnect(
    open_store: OpenStore, sshd: StartSshd, tmp_path: Path
) -> None:
    server = sshd()
    store = await open_store(settings(server))
    await store.put(NAME, Bytes(b"before"))
    new_keys = dict(server.host_keys, ecdsa=keygen(tmp_path / "new_ecdsa", "ecdsa"))
    pinned = server.fingerprints["ecdsa"]
    mark = len(server.restart(KEY_TYPES, new_keys).log())
    again = await open_store(settings(server, fingerprint=pinned))  # the key's algorithm is remembered
    with pytest.raises(HostKeyMismatchError) as caught:
        await again.list_objects()
    assert caught.value.error_code == "SSH_FINGERPRINT_MISMATCH"
    assert pinned in caught.value.message and server.fingerprints["ecdsa"] in caught.value.message
    assert AUTH_ATTEMPT not in server.log()[mark:]


async def test_no_fingerprint_shows_the_servers_keys_and_never_logs_in(
    open_store: OpenStore, sshd: StartSshd
) -> None:
    server = sshd()
    store = await open_store(settings(server, pinned=None))
    with pytest.raises(FingerprintRequiredError) as caught:
        await store.put(NAME, Bytes(b"x"))
    assert caught.value.error_code == "SSH_FINGERPRINT_REQUIRED"
    message = caught.value.message
    positions = [message.index(server.fingerprints[kind]) for kind in KEY_TYPES]
    assert positions == sorted(positions)  # ECDSA first
    assert "ECDSA (ecdsa-sha2-nistp256)" in message
    assert AUTH_ATTEMPT not in server.log()


async def test_a_pinned_ecdsa_key_the_server_stopped_offering(open_store: OpenStore, sshd: StartSshd) -> None:
    server = sshd()
    store = await open_store(settings(server))
    await store.put(NAME, Bytes(b"x"))
    await store.close()  # the next call connects anew (the restart would break this connection anyway)
    server.restart(("rsa",))
    with pytest.raises(HostKeyTypeNotOfferedError) as caught:
        await store.list_objects()  # the ECDSA key it found before is gone
    assert caught.value.error_code == "SSH_HOST_KEY_TYPE_NOT_OFFERED"
    assert "ECDSA" in caught.value.message and server.fingerprints["rsa"] in caught.value.message


async def test_an_ecdsa_pin_on_an_rsa_only_server_never_seen_before(
    open_store: OpenStore, sshd: StartSshd
) -> None:
    ecdsa_pin = sshd().fingerprints["ecdsa"]
    server = sshd(("rsa",))
    with pytest.raises(HostKeyMismatchError) as caught:
        await (await open_store(settings(server, pinned="rsa", fingerprint=ecdsa_pin))).list_objects()
    assert "offers no ECDSA key" in caught.value.message
    assert AUTH_ATTEMPT not in server.log()


async def test_an_rsa_only_server_works_with_its_rsa_fingerprint(
    open_store: OpenStore, sshd: StartSshd
) -> None:
    server = sshd(("rsa",))
    store = await open_store(settings(server, pinned="rsa"))
    await store.put(NAME, Bytes(b"rsa"))
    assert await read_all(store, NAME) == b"rsa"
    assert "kex: host key algorithm: rsa-sha2-512" in server.log()


async def test_an_unreachable_port(open_store: OpenStore, sshd: StartSshd) -> None:
    server = sshd()
    store = await open_store(settings(server, port=free_port()))
    with pytest.raises(HostUnreachableError) as caught:
        await store.list_objects()
    assert caught.value.error_code == "SFTP_HOST_UNREACHABLE" and caught.value.transient


async def test_a_wrong_password(open_store: OpenStore, sshd: StartSshd) -> None:
    server = sshd()
    store = await open_store(settings(server, password="not-the-password-42"))
    with pytest.raises(LoginFailedError) as caught:
        await store.list_objects()
    assert caught.value.error_code == "SFTP_LOGIN_FAILED"
    assert server.user in caught.value.message
    assert "not-the-password-42" not in str(caught.value) and server.password not in str(caught.value)
    assert "not-the-password-42" not in repr(backend(store).settings)


async def test_key_authentication(open_store: OpenStore, sshd: StartSshd) -> None:
    server = sshd()
    store = await open_store(settings(server, password=None, client_keys=(str(server.client_key),)))
    await store.put(NAME, Bytes(b"by key"))
    assert [o.name for o in await store.list_objects()] == [NAME]
    assert f"Accepted publickey for {server.user}" in server.log()


async def test_an_unreadable_client_key_is_a_login_failure(
    open_store: OpenStore, sshd: StartSshd, tmp_path: Path
) -> None:
    server = sshd()
    store = await open_store(settings(server, password=None, client_keys=(str(tmp_path / "no-such-key"),)))
    with pytest.raises(LoginFailedError, match="client key"):
        await store.list_objects()


async def test_stored_objects_are_private_to_the_backup_user(open_store: OpenStore, sshd: StartSshd) -> None:
    server = sshd()
    store = await open_store(settings(server))
    await store.put(NAME, Bytes(b"secret"))
    st = (server.directory / NAME).stat()
    assert st.st_mode & 0o777 == 0o600
    assert pwd.getpwuid(st.st_uid).pw_name == server.user


async def test_a_missing_directory(open_store: OpenStore, sshd: StartSshd) -> None:
    server = sshd()
    store = await open_store(settings(server, directory=str(server.directory / "missing")))
    with pytest.raises(LocationNotFoundError) as caught:
        await store.put(NAME, Bytes(b"x"))
    assert caught.value.error_code == "BACKUP_DIRECTORY_NOT_FOUND"
    with pytest.raises(LocationNotFoundError):
        await store.list_objects()


@pytest.mark.parametrize("directory", ["backups", "/home/x/../../etc", "/srv/a\x00b"])
async def test_relative_or_escaping_directories_are_refused(directory: str) -> None:
    with pytest.raises(LocationNotFoundError, match="absolute path"):
        await sftp_storage(SftpSettings("127.0.0.1", 22, "u", directory, fingerprint="SHA256:x"))


async def test_a_read_only_directory(open_store: OpenStore, root_owned_dir: tuple[SshServer, Path]) -> None:
    server, path = root_owned_dir
    store = await open_store(settings(server, directory=str(path)))
    with pytest.raises(LocationNotWritableError) as caught:
        await store.put(NAME, Bytes(b"x"))
    assert caught.value.error_code == "BACKUP_DIRECTORY_NOT_WRITABLE"
    assert await store.list_objects() == []  # reading still works


async def test_a_full_disk_leaves_nothing(open_store: OpenStore, full_dir: tuple[SshServer, Path]) -> None:
    server, path = full_dir
    store = await open_store(settings(server, directory=str(path)))
    with pytest.raises(LocationFullError) as caught:
        await store.put(NAME, Bytes(os.urandom(1 << 20)))
    assert caught.value.error_code == "BACKUP_LOCATION_FULL"
    assert await store.raw.names() == []  # the temporary was removed


async def test_free_space_is_the_servers(storage: ObjectStore) -> None:
    free = await storage.free_space()
    st = os.statvfs(backend(storage).directory)
    assert free is not None and abs(free - st.f_bavail * st.f_frsize) < 64 << 20


class Paused(Bytes):
    """Sends ``before`` bytes, then waits for ``resume`` before sending the rest."""

    def __init__(self, data: bytes, before: int) -> None:
        super().__init__(data)
        self.before, self.reached, self.resume = before, asyncio.Event(), asyncio.Event()

    async def open(self) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in super().open():
            if sent >= self.before and not self.reached.is_set():
                self.reached.set()
                await self.resume.wait()
            sent += len(chunk)
            yield chunk


@pytest.fixture
async def orphaned_sftp_writes() -> AsyncIterator[list[BaseException]]:
    """Collects what asyncssh's own parallel-write tasks raise when their connection is killed under
    them (``SFTPNoConnection``, logged by asyncio as never retrieved): a fact of the library, not a
    failure of the upload, which the tests check on their own terms. Anything else still fails."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    seen: list[BaseException] = []

    def handler(the_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, asyncssh.sftp.SFTPNoConnection):
            seen.append(exc)
        elif previous is not None:
            previous(the_loop, context)
        else:
            the_loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    yield seen
    loop.set_exception_handler(previous)


@pytest.mark.usefixtures("orphaned_sftp_writes")
async def test_a_connection_killed_mid_upload_fails_cleanly_and_reconnects(
    open_store: OpenStore, sshd: StartSshd
) -> None:
    server = sshd()
    store = await open_store(settings(server))
    data = os.urandom(16 << 20)
    source = Paused(data, 4 << 20)
    upload = asyncio.create_task(store.put(NAME, source))
    await asyncio.wait_for(source.reached.wait(), 30)
    assert server.kill_children()  # the connection's sshd processes
    source.resume.set()
    with pytest.raises(ConnectionLostError) as caught:
        await upload
    assert caught.value.error_code == "STORAGE_CONNECTION_LOST" and caught.value.transient
    assert await store.list_objects() == []
    assert await store.raw.names() == []  # the put removed its temporary over a new connection
    await store.put(NAME, Bytes(data))
    assert await read_all(store, NAME) == data


@pytest.mark.usefixtures("orphaned_sftp_writes")
async def test_with_retries_a_killed_connection_still_delivers_the_whole_file(
    open_store: OpenStore, sshd: StartSshd
) -> None:
    server = sshd()
    store = RetryingStorage(await open_store(settings(server)), RetryPolicy(attempts=3, first_delay=0.1))
    data = os.urandom(16 << 20)
    source = Paused(data, 4 << 20)
    upload = asyncio.create_task(store.put(NAME, source))
    await asyncio.wait_for(source.reached.wait(), 30)
    assert server.kill_children()
    source.resume.set()
    result = await upload  # the retry replayed the source over a new connection
    assert result.info.size == len(data) and source.opened == 2
    assert await read_all(store.inner, NAME) == data  # type: ignore[arg-type]
    assert [o.name for o in await store.list_objects()] == [NAME]


async def test_a_frozen_server_times_out_and_the_next_call_reconnects(
    open_store: OpenStore, sshd: StartSshd
) -> None:
    server = sshd()
    store = await open_store(settings(server, op_timeout=1.0))
    await store.put(NAME, Bytes(b"x"))
    frozen = server.kill_children(signal.SIGSTOP)
    try:
        with pytest.raises(StorageTimeoutError) as caught:
            await store.list_objects()
        assert caught.value.error_code == "STORAGE_TIMEOUT"
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGKILL)
    assert [o.name for o in await store.list_objects()] == [NAME]


async def test_fetch_host_keys_lists_every_key_ecdsa_first(sshd: StartSshd) -> None:
    server = sshd()
    keys = await fetch_host_keys(server.host, server.port, timeout=10)
    assert keys == [
        ("ecdsa-sha2-nistp256", server.fingerprints["ecdsa"]),
        ("ssh-ed25519", server.fingerprints["ed25519"]),
        ("ssh-rsa", server.fingerprints["rsa"]),
    ]
    assert AUTH_ATTEMPT not in server.log()
