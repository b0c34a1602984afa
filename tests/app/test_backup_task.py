"""``POST /v1/backups/tasks`` end to end: a real server backs up a real PostgreSQL database, files and
a SQLite file to a real SFTP server; the file opens with openssl and tar, and the faults leave
nothing that looks like a finished backup."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sddc_backup.services import archives
from tests.support.http import Api, assert_vcf_error
from tests.support.postgres import PostgresCluster
from tests.support.recovery import openssl_listing
from tests.support.server import ServerProcess
from tests.support.sshd import SshServer

PASSPHRASE = "VMw@re1!VMw@re1!"
BACKUP = {"elements": [{"resourceType": "SDDC_MANAGER"}]}


@pytest.fixture
def appliance(tmp_path: Path, postgres: PostgresCluster) -> Iterator[ServerProcess]:
    url = postgres.create_database(f"app_{uuid.uuid4().hex[:8]}")
    subprocess.run(
        [
            str(postgres.bindir / "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            "CREATE TABLE host (id serial, fqdn text); INSERT INTO host (fqdn) "
            "SELECT 'esx-' || g FROM generate_series(1, 2000) g;",
        ],
        check=True,
        capture_output=True,
    )
    tree = tmp_path / "etc" / "vcf"
    tree.mkdir(parents=True)
    (tree / "app.properties").write_text("a=1\n")
    db = tmp_path / "inventory.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
    conn.close()
    proc = ServerProcess(tmp_path / "data")
    proc.base_env = {
        "SDDC_BACKUP_PATHS": json.dumps([str(tree)]),
        "SDDC_BACKUP_POSTGRES_DSN": url,
        "SDDC_BACKUP_SQLITE_PATHS": json.dumps([str(db)]),
    }
    yield proc
    proc.stop()


def configure(api: Api, token: str, sftp: SshServer) -> None:
    spec = {"backupLocations": [sftp.location_spec()], "encryption": {"passphrase": PASSPHRASE}}
    r = api.request("PUT", "/v1/system/backup-configuration", token, json=spec)
    assert api.wait_task(r.json()["id"], token)["status"] == "SUCCESSFUL"


def backups_on(sftp: SshServer) -> list[str]:
    return sorted(p.name for p in sftp.directory.iterdir())


def test_a_backup_streams_to_sftp_and_opens_with_openssl_and_tar(
    appliance: ServerProcess, sftp_server: SshServer, tmp_path: Path
) -> None:
    appliance.start()
    api = Api(appliance)
    token = api.token()
    configure(api, token, sftp_server)
    stale = sftp_server.directory / ".vcf-backup-old.tar.gz.0a1b2c.part"
    stale.write_bytes(b"left by an upload killed two days ago")
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    before = set(backups_on(sftp_server)) - {stale.name}
    r = api.request("POST", "/v1/backups/tasks", token, json=BACKUP)
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["status"] == "IN_PROGRESS" and started["resources"][0]["type"] == "SDDC_MANAGER"
    task = api.wait_task(started["id"], token, timeout=120)
    assert task["status"] == "SUCCESSFUL", task
    assert [s["name"] for s in task["subTasks"]] == [
        "Prepare backup",
        "Back up SDDC Manager",
        "Verify backup",
        "Apply the retention policy",
    ]
    upload = task["subTasks"][1]["stages"][0]
    assert upload["progress"]["completed"] > 0
    assert not stale.exists()  # removed before the upload
    new = sorted(set(backups_on(sftp_server)) - before)
    assert len(new) == 2 and new[1] == new[0] + ".sha256"
    archive = sftp_server.directory / new[0]
    sums = subprocess.run(["sha256sum", "-c", new[1]], cwd=sftp_server.directory, check=False)
    assert sums.returncode == 0
    (tmp_path / "pass").write_text(PASSPHRASE + "\n")
    listing = openssl_listing(archive, tmp_path / "pass")
    base = new[0].removesuffix(".tar.gz")
    for member in (
        "metadata.json",
        "database/sddc-postgres.bkp",
        "database/sqlite/0-inventory.db",
        "appliancemanager_users.json",
        "manifest.json",
    ):
        assert f"{base}/{member}" in listing
    assert not archives.verify(archive, PASSPHRASE.encode()).legacy
    listed = api.request("GET", "/v1/backups", token).json()["elements"]
    assert listed[0]["fileName"] == new[0] and listed[0]["sha256"]


def test_backup_needs_a_configuration_and_the_sddc_manager_resource(fresh_server: ServerProcess) -> None:
    fresh_server.start()
    api = Api(fresh_server)
    token = api.token()
    assert_vcf_error(
        api.request("POST", "/v1/backups/tasks", token, json=BACKUP), 400, "BACKUP_NOT_CONFIGURED"
    )
    for body in ({"elements": []}, {"elements": [{"resourceType": "VCENTER"}]}):
        assert_vcf_error(
            api.request("POST", "/v1/backups/tasks", token, json=body), 400, "INVALID_BACKUP_RESOURCE"
        )


def start_stuck_backup(appliance: ServerProcess, sftp: SshServer) -> tuple[Api, str, str, list[str]]:
    """Start the server with the upload stage set to hang, configure ``sftp``, start a backup, and
    return once it waits at the upload: (client, token, task id, files on the server before)."""
    appliance.start(SDDC_BACKUP_FAULTS=json.dumps({"SDDC_MANAGER_BACKUP:Upload the archive": "hang"}))
    api = Api(appliance)
    token = api.token()
    configure(api, token, sftp)
    before = backups_on(sftp)
    task_id = api.request("POST", "/v1/backups/tasks", token, json=BACKUP).json()["id"]
    deadline = time.monotonic() + 30
    while api.request("GET", f"/v1/tasks/{task_id}", token).json()["subTasks"][1]["status"] != "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return api, token, task_id, before


def test_one_backup_at_a_time_and_cancel_leaves_nothing(
    appliance: ServerProcess, sftp_server: SshServer
) -> None:
    api, token, task_id, before = start_stuck_backup(appliance, sftp_server)
    second = api.request("POST", "/v1/backups/tasks", token, json=BACKUP)
    assert_vcf_error(second, 400, "BACKUP_IN_PROGRESS")
    assert api.request("DELETE", f"/v1/tasks/{task_id}", token).status_code == 200
    cancelled = api.wait_task(task_id, token)
    assert cancelled["status"] == "CANCELLED" and cancelled["errors"][0]["errorCode"] == "TASK_CANCELLED"
    assert backups_on(sftp_server) == before


def test_a_backup_killed_midway_is_failed_after_restart_and_leaves_nothing_finished(
    appliance: ServerProcess, sftp_server: SshServer
) -> None:
    _, _, task_id, before = start_stuck_backup(appliance, sftp_server)
    appliance.kill()
    appliance.start()
    api = Api(appliance)
    token = api.token()
    task = api.request("GET", f"/v1/tasks/{task_id}", token).json()
    assert task["status"] == "FAILED" and task["errors"][0]["errorCode"] == "TASK_INTERRUPTED"
    assert [n for n in backups_on(sftp_server) if not n.startswith(".")] == [
        n for n in before if not n.startswith(".")
    ]
