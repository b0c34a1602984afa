"""Fixtures for the storage tests that need real servers: ``sshd`` starts OpenSSH servers, and
``open_store`` opens SFTP stores on them (closed at the end of the test)."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sddc_backup.storage.sftp import SftpSettings, sftp_storage
from sddc_backup.storage.store import ObjectStore
from tests.support.mounts import tmpfs
from tests.support.sshd import KEY_TYPES, Account, SshServer

StartSshd = Callable[..., SshServer]


def settings(server: SshServer, pinned: str | None = "ecdsa", **changes: Any) -> SftpSettings:
    """Settings for ``server``'s backup directory, password login, pinned to the ``pinned`` key type."""
    base = SftpSettings(
        host=server.host,
        port=server.port,
        username=server.user,
        directory=str(server.directory),
        password=server.password,
        fingerprint=server.fingerprints[pinned] if pinned else None,
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def sshd(ssh_account: Account, ssh_host_keys: dict[str, Path], tmp_path: Path) -> Iterator[StartSshd]:
    """Start servers with ``sshd(key_types=("ecdsa", "ed25519", "rsa"))``; each has a fresh backup
    directory owned by the test user. All are stopped (and their directories removed) at the end."""
    servers: list[SshServer] = []

    def start(key_types: tuple[str, ...] = KEY_TYPES) -> SshServer:
        server = SshServer(ssh_account, ssh_host_keys, tuple(key_types), tmp_path / f"sshd-{len(servers)}")
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


OpenStore = Callable[[SftpSettings], Awaitable[ObjectStore]]


@pytest.fixture
async def open_store() -> AsyncIterator[OpenStore]:
    """``await open_store(settings)``: an SFTP store that is closed at the end of the test."""
    stores: list[ObjectStore] = []

    async def open_(s: SftpSettings) -> ObjectStore:
        stores.append(await sftp_storage(s))
        return stores[-1]

    yield open_
    for store in stores:
        await store.close()


@pytest.fixture
def root_owned_dir(sshd: StartSshd) -> Iterator[tuple[SshServer, Path]]:
    """A server, and a directory in the test user's home that only root may write (0755)."""
    server = sshd()
    path = server.account.new_directory(owner_is_user=False)
    yield server, path
    shutil.rmtree(path)


@pytest.fixture
def full_dir(sshd: StartSshd) -> Iterator[tuple[SshServer, Path]]:
    """A server, and a 256 KiB tmpfs in its backup directory, owned by the test user."""
    server = sshd()
    with tmpfs(server.directory / "small", "256k") as path:
        shutil.chown(path, server.user, server.user)
        yield server, path
