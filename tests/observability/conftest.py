"""One recorded run of the real server per state store (SQLite and PostgreSQL), shared by the
metrics, log and secrets tests: a real SFTP server, a real appliance with a PostgreSQL database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import database_url_for
from tests.observability.recording import RecordedRun, record
from tests.support.appliance import Appliance
from tests.support.postgres import PostgresCluster
from tests.support.server import ServerProcess
from tests.support.sshd import SshServer


@pytest.fixture(scope="session")
def recorded_run(
    state_store: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresCluster,
    sftp_server: SshServer,
) -> Iterator[RecordedRun]:
    root = tmp_path_factory.mktemp(f"observed-{state_store}")
    appliance = Appliance.create(root / "appliance", postgres)
    server = ServerProcess(root / "data", database_url=database_url_for(state_store, request))
    server.base_env = appliance.env()
    directory = sftp_server.directory / root.name
    directory.mkdir()
    shutil.chown(directory, sftp_server.user)
    try:
        yield record(server, sftp_server, directory, root)
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
