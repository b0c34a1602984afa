"""Fixtures that start real components: PostgreSQL clusters and the server as a process.

``server`` is parametrized over both state stores, so every API test runs against SQLite and against
PostgreSQL. Extra users (OPERATOR, VIEWER) are added with the real ``users add`` command.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.appliance import Appliance
from tests.support.http import Api
from tests.support.postgres import PostgresCluster
from tests.support.server import ServerProcess
from tests.support.sshd import KEY_TYPES, Account, SshServer, ensure_account, make_host_keys, retire_account

USERS = {"operator@local": ("OPERATOR", "Operator!pass-1"), "viewer@local": ("VIEWER", "Viewer!pass-1")}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def state_store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def database_url_for(state_store: str, request: pytest.FixtureRequest) -> str | None:
    if state_store == "sqlite":
        return None
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"sddc_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def server(
    state_store: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A running server shared by the session's API tests, with the extra users added."""
    data_dir = tmp_path_factory.mktemp(f"server-{state_store}") / "data"
    proc = ServerProcess(data_dir, database_url=database_url_for(state_store, request))
    proc.start()
    for name, (role, password) in USERS.items():
        result = proc.cli("users", "add", name, "--role", role, stdin=password + "\n")
        assert result.returncode == 0, result.stderr
    yield proc
    proc.stop()


@pytest.fixture
def fresh_server(state_store: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own (not started), for tests that kill or restart it."""
    proc = ServerProcess(tmp_path / "data", database_url=database_url_for(state_store, request))
    yield proc
    proc.stop()


@pytest.fixture
def api(server: ServerProcess) -> Api:
    return Api(server)


@pytest.fixture
def admin_token(api: Api) -> str:
    return api.token()


@pytest.fixture(scope="session")
def ssh_account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Account]:
    """A throwaway login of this session's own (random name and password, authorized client key)."""
    account = ensure_account(tmp_path_factory.mktemp("ssh-account"))
    yield account
    retire_account(account)


@pytest.fixture(scope="session")
def ssh_host_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One throwaway host key per type (ecdsa, ed25519, rsa), shared by the session's servers."""
    return make_host_keys(tmp_path_factory.mktemp("ssh-host-keys"))


@pytest.fixture(scope="session")
def sftp_server(
    ssh_account: Account, ssh_host_keys: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SshServer]:
    """A real OpenSSH server offering all three key types, shared by the API and SDK tests."""
    server = SshServer(ssh_account, ssh_host_keys, KEY_TYPES, tmp_path_factory.mktemp("sftp") / "sshd")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def appliance(tmp_path: Path, postgres: PostgresCluster) -> Appliance:
    """A small appliance of the test's own: a PostgreSQL database, two trees and a SQLite file."""
    return Appliance.create(tmp_path / "appliance", postgres)
