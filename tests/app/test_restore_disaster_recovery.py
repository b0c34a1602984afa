"""VCF's disaster recovery end to end: the appliance and its server are lost, a fresh server (new data
directory, nothing configured) restores from a backup file copied into /tmp, the way VCF's restore
documentation and recovery tooling drive it (curl, ``awk -F '"' '{print $4}'``, bearer tokens) and the
way PowerVCF does (HTTP Basic on every request).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import USERS
from tests.support.appliance import Appliance
from tests.support.http import Api, assert_vcf_error
from tests.support.postgres import PostgresCluster
from tests.support.restore import ELEMENTS, PASSPHRASE, PHASE_NAMES
from tests.support.server import ADMIN, ADMIN_PASSWORD, ServerProcess
from tests.support.sshd import SshServer

MASK = "**********"
FRESH_ADMIN_PASSWORD = "Fr3sh!appliance-admin-pw"  # the new appliance's own admin@local password
OPERATOR, OPERATOR_PASSWORD = "ops@local", "Ops!password-from-a"
RESTORE_STATUSES = {"Pending", "In Progress", "Successful", "Failed"}
JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
STAMP = re.compile(r"(\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)\.tar\.gz$")
SCHEDULE = {
    "resourceType": "SDDC_MANAGER",
    "takeScheduledBackups": False,  # no scheduled backup may start in the middle of a test
    "frequency": "WEEKLY",
    "daysOfWeek": ["SUNDAY"],
    "hourOfDay": 2,
    "minuteOfHour": 0,
    "takeBackupOnStateChange": False,
    "retentionPolicy": {"numberOfMostRecentBackups": 10},
}


# -- helpers ------------------------------------------------------------------------------------------


def basic(username: str, password: str) -> dict[str, str]:
    """PowerVCF's createBasicAuthHeader."""
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def backups_on(sftp: SshServer) -> set[str]:
    return {p.name for p in sftp.directory.glob("vcf-backup-*.tar.gz")}


def one_new_backup(sftp: SshServer, before: set[str]) -> str:
    (name,) = backups_on(sftp) - before
    return name


def after_the_second_of(name: str) -> None:
    """Wait until the UTC second in ``name`` is over: a later backup of the same FQDN then gets another
    file name (the names have a resolution of one second)."""
    found = STAMP.search(name)
    assert found, name
    while datetime.now(UTC).strftime("%Y-%m-%d-%H-%M-%S") <= found.group(1):
        time.sleep(0.05)


def wipe(appliance: Appliance) -> None:
    """What a newly deployed appliance has of the old one: nothing. The database is still there (the
    fresh appliance's own), but empty; the trees and the SQLite file are gone."""
    appliance.psql("DROP TABLE host; DROP TABLE domain;")
    for tree in appliance.trees:
        for path in [tree, *tree.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(tree)
    appliance.sqlite.unlink()


def add_user(server: ServerProcess, name: str, role: str, password: str) -> None:
    result = server.cli("users", "add", name, "--role", role, stdin=password + "\n")
    assert result.returncode == 0, result.stderr


def backup_members(path: Path, passphrase: str) -> list[str]:
    """The archive's member names, read with the commands VCF's documentation gives."""
    result = subprocess.run(
        [
            "bash",
            "-c",
            "set -o pipefail; "
            'openssl enc -d -aes-256-cbc -md sha256 -pass env:PASSPHRASE -in "$FILE" | tar -tz',
        ],
        env={**os.environ, "PASSPHRASE": passphrase, "FILE": str(path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


class Curl:
    """The server as VCF's restore documentation reaches it: curl, with the token cut out by awk."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server

    def _env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "CA": str(self.server.cert), "URL": self.server.base_url, **extra}

    def token(self, password: str) -> str:
        body = json.dumps({"username": ADMIN, "password": password})
        result = subprocess.run(
            [
                "bash",
                "-c",
                'set -o pipefail; curl -s --noproxy \'*\' --cacert "$CA" -X POST "$URL/v1/tokens" '
                "-H 'Content-Type: application/json' -H 'Accept: application/json' -d \"$BODY\" "
                "| awk -F '\"' '{print $4}'",
            ],
            env=self._env(BODY=body),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("\n") == 1, result.stdout  # the response is a single line
        token = result.stdout.strip()
        assert JWT.fullmatch(token), result.stdout
        return token

    def call(self, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        args = ["-s", "--noproxy", "*", "--cacert", str(self.server.cert), "-X", method]
        args += ["-H", "Accept: application/json", "-H", f"Authorization: Bearer {token}"]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
        args += ["-w", "\n%{http_code}", self.server.base_url + path]
        result = subprocess.run(["curl", *args], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        text, _, code = result.stdout.rpartition("\n")
        return int(code), json.loads(text) if text else None


def operations_manager_up(page: Any) -> bool:
    return any(e["name"] == "OPERATIONS_MANAGER" and e["status"] == "UP" for e in page["elements"])


def check_phase_order(task: dict[str, Any]) -> None:
    """The subtasks are the phases in order, and they run one after another: done, at most one
    running, then the ones not started."""
    assert [s["name"] for s in task["subTasks"]] == PHASE_NAMES, task["subTasks"]
    statuses = [s["status"] for s in task["subTasks"]]
    assert set(statuses) <= RESTORE_STATUSES, statuses
    if task["status"] == "Failed":
        return
    rank = {"Successful": 2, "In Progress": 1, "Pending": 0}
    ranks = [rank[s] for s in statuses]
    assert ranks == sorted(ranks, reverse=True), statuses
    assert statuses.count("In Progress") <= 1, statuses


@dataclass
class Disaster:
    """A backup of an appliance that was then lost, with the fresh server that is to restore it."""

    appliance: Appliance
    at_backup: dict[str, Any]  # the appliance's snapshot when it was backed up
    configuration: dict[str, Any]  # GET /v1/system/backup-configuration on the lost server
    location: dict[str, Any]  # the location spec the lost server was given
    lost_key: bytes  # the lost server's key for secrets at rest
    backup_name: str
    copy: Path  # the backup file, copied into /tmp
    fresh: ServerProcess


Lose = Callable[[Appliance], None]
MakeDisaster = Callable[[Lose], Disaster]


@pytest.fixture
def disaster(tmp_path: Path, postgres: PostgresCluster, sftp_server: SshServer) -> Iterator[MakeDisaster]:
    """Server A backs up its appliance to SFTP; then the appliance is lost (by ``lose``), and A with
    its data directory; a fresh server B starts beside it, on the same appliance and FQDN."""
    appliance = Appliance.create(tmp_path / "appliance", postgres)
    lost = ServerProcess(tmp_path / "lost-data")
    lost.base_env = appliance.env()
    fresh = ServerProcess(tmp_path / "fresh-data")
    fresh.base_env = {**appliance.env(), "SDDC_BACKUP_ADMIN_PASSWORD": FRESH_ADMIN_PASSWORD}
    copies: list[Path] = []

    def happen(lose: Lose) -> Disaster:
        lost.start()
        add_user(lost, OPERATOR, "OPERATOR", OPERATOR_PASSWORD)
        api = Api(lost)
        token = api.token()
        location = sftp_server.location_spec()
        spec = {
            "backupLocations": [location],
            "backupSchedules": [SCHEDULE],
            "encryption": {"passphrase": PASSPHRASE},
        }
        r = api.request("PATCH", "/v1/system/backup-configuration", token, json=spec)
        assert r.status_code == 202, r.text
        assert api.wait_task(r.json()["id"], token)["status"] == "SUCCESSFUL"
        configuration = api.request("GET", "/v1/system/backup-configuration", token).json()
        at_backup = appliance.snapshot()
        existing = backups_on(sftp_server)
        r = api.request("POST", "/v1/backups/tasks", token, json={"elements": ELEMENTS})
        assert r.status_code == 202, r.text
        task = api.wait_task(r.json()["id"], token, timeout=180)
        assert task["status"] == "SUCCESSFUL", task
        name = one_new_backup(sftp_server, existing)

        lost.stop()
        lost_key = (lost.data_dir / "secret.key").read_bytes()
        shutil.rmtree(lost.data_dir)
        lose(appliance)
        copy = Path("/tmp") / f"{tmp_path.name}-{uuid.uuid4().hex[:8]}-{name}"  # where VCF copies it
        copies.append(copy)
        shutil.copyfile(sftp_server.directory / name, copy)
        fresh.start()
        return Disaster(appliance, at_backup, configuration, location, lost_key, name, copy, fresh)

    try:
        yield happen
    finally:
        lost.stop()
        fresh.stop()
        for copy in copies:
            copy.unlink(missing_ok=True)


# -- tests --------------------------------------------------------------------------------------------


def test_the_vcf_restore_procedure_on_a_fresh_server_brings_everything_back(
    disaster: MakeDisaster, sftp_server: SshServer
) -> None:
    case = disaster(wipe)
    assert not any(t.exists() for t in case.appliance.trees) and not case.appliance.sqlite.exists()
    fresh, appliance = case.fresh, case.appliance
    api = Api(fresh)
    admin = api.token(ADMIN, FRESH_ADMIN_PASSWORD)
    unconfigured = api.request("GET", "/v1/system/backup-configuration", admin).json()
    assert unconfigured["isConfigured"] is False and not unconfigured.get("backupLocations")
    add_user(fresh, "fresh-only@local", "VIEWER", "Fresh-only!pass-1")
    databases = appliance.databases()
    curl = Curl(fresh)

    # Wait for OPERATIONS_MANAGER with a new token each time, as VCF's recovery tooling does.
    deadline = time.monotonic() + 120
    while True:
        token = curl.token(FRESH_ADMIN_PASSWORD)
        code, page = curl.call("GET", "/v1/vcf-services", token)
        assert code == 200, page
        if operations_manager_up(page):
            break
        assert time.monotonic() < deadline, page
        time.sleep(0.5)

    body = {"elements": ELEMENTS, "backupFile": str(case.copy), "encryption": {"passphrase": PASSPHRASE}}
    code, started = curl.call("POST", "/v1/restores/tasks", token, body)
    assert code == 202, started
    assert started["status"] in ("Pending", "In Progress"), started
    task_id = started["id"]
    deadline = time.monotonic() + 300
    while True:
        code, task = curl.call("GET", f"/v1/restores/tasks/{task_id}", token)
        assert code == 200, task
        if task["status"].upper() not in ("PENDING", "IN PROGRESS"):
            break
        assert time.monotonic() < deadline, task
        time.sleep(0.1)
    assert task["status"].lower() == "successful", task["errors"]
    assert task["status"] == "Successful"
    check_phase_order(task)
    assert {s["status"] for s in task["subTasks"]} == {"Successful"}

    # Every part of the appliance is as it was at backup time, with nothing left over.
    assert appliance.snapshot() == case.at_backup
    assert appliance.databases() == databases
    leftovers = [p for t in appliance.trees for p in t.parent.iterdir() if "sddc-restore" in p.name]
    assert leftovers == []
    assert list((fresh.data_dir / "restore-staging").iterdir()) == []

    # The backup configuration is back, its secrets masked, and stored under the fresh server's key.
    got = api.request("GET", "/v1/system/backup-configuration", admin).json()
    assert got["isConfigured"] is True
    (restored,) = got["backupLocations"]
    for field in ("server", "port", "directoryPath", "username", "sshFingerprint"):
        assert restored[field] == case.location[field], field
    assert restored["password"] == MASK and got["encryption"]["passphrase"] == MASK
    assert got == case.configuration
    assert (fresh.data_dir / "secret.key").read_bytes() != case.lost_key
    for path in fresh.data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert sftp_server.password.encode() not in content, path
            assert PASSPHRASE.encode() not in content, path

    # The fresh server backs up with what it restored: the SFTP password and the passphrase.
    after_the_second_of(case.backup_name)
    existing = backups_on(sftp_server)
    r = api.request("POST", "/v1/backups/tasks", admin, json={"elements": ELEMENTS})
    assert r.status_code == 202, r.text
    backup = api.wait_task(r.json()["id"], admin, timeout=180)
    assert backup["status"] == "SUCCESSFUL", backup
    name = one_new_backup(sftp_server, existing)
    folder = name.removesuffix(".tar.gz")
    members = backup_members(sftp_server.directory / name, PASSPHRASE)
    assert f"{folder}/metadata.json" in members, members
    assert f"{folder}/database/sddc-postgres.bkp" in members, members
    assert_vcf_error(api.request("GET", f"/v1/restores/tasks/{backup['id']}", admin), 404)

    # admin@local keeps the fresh server's password; the other users are the backup's.
    old_admin = api.request("POST", "/v1/tokens", json={"username": ADMIN, "password": ADMIN_PASSWORD})
    assert old_admin.status_code == 401, old_admin.text
    api.token(ADMIN, FRESH_ADMIN_PASSWORD)
    api.token(OPERATOR, OPERATOR_PASSWORD)
    gone = api.request(
        "POST", "/v1/tokens", json={"username": "fresh-only@local", "password": "Fresh-only!pass-1"}
    )
    assert gone.status_code == 401, gone.text

    generic = api.request("GET", f"/v1/tasks/{task_id}", admin).json()
    assert (generic["status"], generic["type"]) == ("Successful", "SDDC_MANAGER_RESTORE")


def test_the_powervcf_restore_with_basic_authentication(disaster: MakeDisaster) -> None:
    case = disaster(Appliance.change_everything)
    fresh, appliance = case.fresh, case.appliance
    api = Api(fresh)
    headers = basic(ADMIN, FRESH_ADMIN_PASSWORD)
    assert appliance.snapshot() != case.at_backup

    deadline = time.monotonic() + 120
    while True:
        r = api.request("GET", "/v1/vcf-services", headers=headers)
        assert r.status_code == 200, r.text
        if operations_manager_up(r.json()):
            break
        assert time.monotonic() < deadline, r.text
        time.sleep(0.5)

    body = {"elements": ELEMENTS, "backupFile": str(case.copy), "encryption": {"passphrase": PASSPHRASE}}
    r = api.request("POST", "/v1/restores/tasks", headers=headers, json=body)
    assert r.status_code == 202, r.text
    task = r.json()
    check_phase_order(task)
    seen = [task["status"]]
    deadline = time.monotonic() + 300
    while task["status"].lower() not in ("successful", "failed"):  # PowerShell's -eq ignores case
        assert time.monotonic() < deadline, task
        time.sleep(0.05)
        r = api.request("GET", f"/v1/restores/tasks/{task['id']}", headers=headers)
        assert r.status_code == 200, r.text
        task = r.json()
        seen.append(task["status"])
        check_phase_order(task)
    assert task["status"] == "Successful", task["errors"]
    assert set(seen) <= {"Pending", "In Progress", "Successful"}, seen
    assert "PostRestoreNfsRefresh" not in [s["name"] for s in task["subTasks"]]
    assert [s["status"] for s in task["subTasks"]] == ["Successful"] * len(PHASE_NAMES)
    assert all(s["completionTimestamp"] for s in task["subTasks"])
    assert appliance.snapshot() == case.at_backup

    got = api.request("GET", "/v1/system/backup-configuration", headers=headers).json()
    assert got == case.configuration and got["isConfigured"] is True
    generic = api.request("GET", f"/v1/tasks/{task['id']}", headers=headers)
    assert generic.json()["status"] == "Successful"


def test_a_restore_task_is_looked_up_among_restore_tasks_only(
    api: Api, admin_token: str, tmp_path: Path
) -> None:
    spec = {
        "backupLocations": [{"protocol": "LOCAL", "directoryPath": str(tmp_path)}],
        "encryption": {"passphrase": PASSPHRASE},
    }
    r = api.request("PUT", "/v1/system/backup-configuration", admin_token, json=spec)
    configure = api.wait_task(r.json()["id"], admin_token)
    assert configure["status"] == "SUCCESSFUL", configure
    r = api.request("POST", "/v1/backups/tasks", admin_token, json={"elements": ELEMENTS})
    assert r.status_code == 202, r.text
    backup = api.wait_task(r.json()["id"], admin_token, timeout=120)
    assert backup["status"] == "SUCCESSFUL", backup

    auth = basic(ADMIN, ADMIN_PASSWORD)
    for task_id in (backup["id"], configure["id"]):
        assert api.request("GET", f"/v1/tasks/{task_id}", admin_token).status_code == 200
        assert_vcf_error(
            api.request("GET", f"/v1/restores/tasks/{task_id}", admin_token), 404, "TASK_NOT_FOUND"
        )
        assert_vcf_error(
            api.request("GET", f"/v1/restores/tasks/{task_id}", headers=auth), 404, "TASK_NOT_FOUND"
        )
    unknown = str(uuid.uuid4())
    assert_vcf_error(api.request("GET", f"/v1/restores/tasks/{unknown}", admin_token), 404, "TASK_NOT_FOUND")
    assert_vcf_error(api.request("GET", f"/v1/restores/tasks/{unknown}", headers=auth), 404, "TASK_NOT_FOUND")
    assert_vcf_error(api.request("GET", f"/v1/restores/tasks/{unknown}"), 401)


def test_only_an_administrator_may_restore(
    tmp_path: Path, postgres: PostgresCluster, sftp_server: SshServer
) -> None:
    appliance = Appliance.create(tmp_path / "appliance", postgres)
    server = ServerProcess(tmp_path / "data")
    server.base_env = appliance.env()
    copy = Path("/tmp") / f"{tmp_path.name}-{uuid.uuid4().hex[:8]}-backup.tar.gz"
    try:
        server.start()
        for name, (role, password) in USERS.items():
            add_user(server, name, role, password)
        api = Api(server)
        admin = api.token()
        spec = {"backupLocations": [sftp_server.location_spec()], "encryption": {"passphrase": PASSPHRASE}}
        r = api.request("PUT", "/v1/system/backup-configuration", admin, json=spec)
        assert api.wait_task(r.json()["id"], admin)["status"] == "SUCCESSFUL"
        at_backup = appliance.snapshot()
        existing = backups_on(sftp_server)
        r = api.request("POST", "/v1/backups/tasks", admin, json={"elements": ELEMENTS})
        assert api.wait_task(r.json()["id"], admin, timeout=180)["status"] == "SUCCESSFUL"
        shutil.copyfile(sftp_server.directory / one_new_backup(sftp_server, existing), copy)
        appliance.change_everything()
        changed = appliance.snapshot()

        body = {"elements": ELEMENTS, "backupFile": str(copy), "encryption": {"passphrase": PASSPHRASE}}
        for name, (role, password) in USERS.items():
            token = api.token(name, password)
            r = api.request("POST", "/v1/restores/tasks", token, json=body)
            assert_vcf_error(r, 403, "INSUFFICIENT_PRIVILEGES")
            assert role in r.json()["message"]
            r = api.request("POST", "/v1/restores/tasks", headers=basic(name, password), json=body)
            assert_vcf_error(r, 403, "INSUFFICIENT_PRIVILEGES")
        tasks = api.request("GET", "/v1/tasks", admin, params={"taskType": "SDDC_MANAGER_RESTORE"}).json()
        assert tasks["elements"] == []
        assert appliance.snapshot() == changed

        # The same request from the administrator restores; the others may follow it.
        r = api.request("POST", "/v1/restores/tasks", admin, json=body)
        assert r.status_code == 202, r.text
        task = api.wait_task(r.json()["id"], admin, timeout=300, prefix="/v1/restores/tasks")
        assert task["status"] == "Successful", task["errors"]
        assert appliance.snapshot() == at_backup
        viewer, (_, viewer_password) = "viewer@local", USERS["viewer@local"]
        seen = api.request("GET", f"/v1/restores/tasks/{task['id']}", api.token(viewer, viewer_password))
        assert seen.status_code == 200 and seen.json()["status"] == "Successful", seen.text
    finally:
        server.stop()
        copy.unlink(missing_ok=True)
