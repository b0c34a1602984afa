"""Restores that fail or are cut short, against the real server process, sshd and PostgreSQL: the
server SIGKILLed at every step, in the middle of the database load and between two directory swaps;
services commands that fail; requests that collide with a running restore. Each ends with the
appliance either fully as it was before the restore or fully as it was backed up, never in between."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.appliance import Appliance
from tests.support.http import Api, assert_vcf_error
from tests.support.postgres import PostgresCluster
from tests.support.restore import ELEMENTS, PASSPHRASE, back_up, restore
from tests.support.server import ServerProcess
from tests.support.sshd import SshServer

RESTORE = "SDDC_MANAGER_RESTORE"
TASKS = "/v1/restores/tasks"
TERMINAL = ("Successful", "Failed")
WAIT = 180.0  # seconds; generous, for a loaded CI machine

# The stages of a restore in the order they run, with how a crash there must end. Up to and including
# the stage that commits ("Restore the backup configuration and the users"), the commit has not
# happened: the next start rolls back. From the stage after it on, the next start finishes the restore.
# "{tree0}", "{tree1}" and "{sqlite}" stand for the appliance's paths, known only once it exists.
STAGES = [
    ("Quiesce the system", "rolled back"),
    ("Stop the services", "rolled back"),
    ("Decrypt and verify the backup", "rolled back"),
    ("Check the backup against this appliance", "rolled back"),
    ("Stage the files beside the live ones", "rolled back"),
    ("Swap {tree0}", "rolled back"),
    ("Swap {tree1}", "rolled back"),
    ("Swap {sqlite}", "rolled back"),
    ("Load the dump into a new database", "rolled back"),
    ("Swap the databases", "rolled back"),
    ("Start and check the services", "rolled back"),
    ("Restore the backup configuration and the users", "rolled back"),
    ("Remove the replaced copies and the staging files", "finished"),
    ("Resume scheduled and automatic backups", "finished"),
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data")
    yield proc
    proc.stop()


def server_for(server: ServerProcess, appliance: Appliance) -> ServerProcess:
    server.base_env = appliance.env()
    return server


def hang_at(stage: str) -> str:
    return json.dumps({f"{RESTORE}:{stage}": "hang"})


def start_restore(api: Api, token: str, backup_file: str) -> str:
    body = {"elements": ELEMENTS, "backupFile": backup_file, "encryption": {"passphrase": PASSPHRASE}}
    r = api.request("POST", TASKS, token, json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def get_task(api: Api, token: str, task_id: str) -> dict[str, Any]:
    r = api.request("GET", f"{TASKS}/{task_id}", token)
    assert r.status_code == 200, r.text
    task: dict[str, Any] = r.json()
    return task


def running_stages(task: dict[str, Any]) -> list[str]:
    return [s["name"] for sub in task["subTasks"] for s in sub["stages"] if s["status"] == "IN_PROGRESS"]


def wait_for_stage(api: Api, token: str, task_id: str, stage: str) -> dict[str, Any]:
    """Poll the restore until ``stage`` is the one running (a hang fault holds it there)."""
    deadline = time.monotonic() + WAIT
    while True:
        task = get_task(api, token, task_id)
        assert task["status"] not in TERMINAL, json.dumps(task, indent=1)
        if running_stages(task) == [stage]:
            assert task["status"] == "In Progress", task
            return task
        assert time.monotonic() < deadline, f"stage {stage!r} never started: {task}"
        time.sleep(0.05)


def leftovers(appliance: Appliance) -> list[str]:
    """The restore's siblings (``.<name>.sddc-restore-<role>-<id>``) next to any protected path."""
    parents = {t.parent for t in appliance.trees} | {appliance.sqlite.parent}
    return sorted(str(p) for d in parents for p in d.iterdir() if "sddc-restore" in p.name)


def assert_recovered(
    server: ServerProcess,
    api: Api,
    token: str,
    task_id: str,
    appliance: Appliance,
    outcome: str,
    expected: dict[str, Any],
    databases: set[str],
) -> dict[str, Any]:
    """After a restart: the interrupted restore was ``outcome`` ("rolled back" or "finished"), its task
    says so, the appliance is exactly ``expected``, and nothing of the restore is left behind."""
    task = get_task(api, token, task_id)
    if outcome == "rolled back":
        assert task["status"] == "Failed", task
        assert [e["errorCode"] for e in task["errors"]] == ["RESTORE_ROLLED_BACK"], task
        assert running_stages(task) == [], task
    else:
        assert task["status"] == "Successful", task
        assert task["errors"] == [], task
        assert {s["status"] for s in task["subTasks"]} == {"Successful"}, task
    assert f"restore {task_id} was interrupted by the last stop: {outcome}" in server.output()
    assert appliance.snapshot() == expected
    assert appliance.databases() == databases
    assert leftovers(appliance) == []
    assert not (server.data_dir / "restore-journal.json").exists()
    assert list((server.data_dir / "restore-staging").glob("*")) == []
    return task


@pytest.mark.parametrize(("stage", "outcome"), STAGES, ids=[s for s, _ in STAGES])
def test_killed_at_each_step_ends_fully_old_or_fully_new(
    stage: str,
    outcome: str,
    server: ServerProcess,
    tmp_path: Path,
    postgres: PostgresCluster,
    sftp_server: SshServer,
) -> None:
    appliance = Appliance.create(tmp_path / "appliance", postgres)
    stage = stage.format(tree0=appliance.trees[0], tree1=appliance.trees[1], sqlite=appliance.sqlite)
    server_for(server, appliance).start(SDDC_BACKUP_FAULTS=hang_at(stage))
    api = Api(server)
    token = api.token()
    backed_up = appliance.snapshot()
    name = back_up(api, token, sftp_server)
    appliance.change_everything()
    changed = appliance.snapshot()
    assert changed != backed_up
    databases = appliance.databases()

    task_id = start_restore(api, token, name)
    wait_for_stage(api, token, task_id, stage)
    server.kill()
    server.start()
    api = Api(server)
    token = api.token()
    expected = changed if outcome == "rolled back" else backed_up
    assert_recovered(server, api, token, task_id, appliance, outcome, expected, databases)


def test_killed_in_the_middle_of_the_database_load_ends_fully_old(
    server: ServerProcess, tmp_path: Path, postgres: PostgresCluster, sftp_server: SshServer
) -> None:
    appliance = Appliance.create(tmp_path / "appliance", postgres, rows=400_000)
    server_for(server, appliance).start()
    api = Api(server)
    token = api.token()
    name = back_up(api, token, sftp_server)
    appliance.change_everything()
    changed = appliance.snapshot()
    databases = appliance.databases()

    task_id = start_restore(api, token, name)
    restoring = f"{appliance.database}\\_restore\\_%"  # the name DatabaseSwapper.plan gives the new one
    query = f"SELECT datname FROM pg_stat_activity WHERE datname LIKE '{restoring}'"  # noqa: S608 - our name
    deadline = time.monotonic() + WAIT
    while not (loading := appliance.psql(query, "postgres").split()):
        task = get_task(api, token, task_id)
        assert task["status"] not in TERMINAL, f"the load was never seen running: {task}"
        assert time.monotonic() < deadline, task
    server.kill()
    assert loading[0] in appliance.databases()  # killed with the half-loaded database in place

    server.start()
    api = Api(server)
    token = api.token()
    task = assert_recovered(server, api, token, task_id, appliance, "rolled back", changed, databases)
    # The load starts as the dump comes out of the archive and ends in RestoreSDDCManagerDatabase, so
    # it runs through the file swaps in between: the kill found it in one of those phases, and that
    # one is where the task says the restore stopped (at the stage that ran, if one did).
    failed = [s for s in task["subTasks"] if s["status"] == "Failed"]
    assert [s["name"] for s in failed] in (
        ["ExtractSDDCManagerBackup"],
        ["RestoreSDDCManagerConfiguration"],
        ["RestoreSDDCManagerDatabase"],
    ), task
    assert len([s for s in failed[0]["stages"] if s["status"] == "FAILED"]) <= 1, task


def test_killed_between_the_two_directory_swaps_ends_fully_old(
    server: ServerProcess, tmp_path: Path, postgres: PostgresCluster, sftp_server: SshServer
) -> None:
    appliance = Appliance.create(tmp_path / "appliance", postgres)
    first, second = appliance.trees
    server_for(server, appliance).start(SDDC_BACKUP_FAULTS=hang_at(f"Swap {second}"))
    api = Api(server)
    token = api.token()
    name = back_up(api, token, sftp_server)
    appliance.change_everything()
    changed = appliance.snapshot()
    databases = appliance.databases()

    task_id = start_restore(api, token, name)
    wait_for_stage(api, token, task_id, f"Swap {second}")

    # The first tree is swapped (its old content kept beside it), the second not yet.
    def beside(tree: Path, role: str) -> bool:
        prefix = str(tree.with_name(f".{tree.name}.sddc-restore-{role}-"))
        return any(s.startswith(prefix) for s in leftovers(appliance))

    assert beside(first, "old") and not beside(first, "new")
    assert beside(second, "new") and not beside(second, "old")
    server.kill()

    server.start()
    api = Api(server)
    token = api.token()
    assert_recovered(server, api, token, task_id, appliance, "rolled back", changed, databases)


def stop_command(log: Path) -> str:
    return f"echo stop >> {log}"


def start_command(log: Path) -> str:
    return f"echo start >> {log}"


def test_a_restore_stops_then_starts_the_services(
    server: ServerProcess, tmp_path: Path, postgres: PostgresCluster, sftp_server: SshServer
) -> None:
    appliance = Appliance.create(tmp_path / "appliance", postgres)
    log = tmp_path / "services.log"
    server_for(server, appliance).start(
        SDDC_BACKUP_SERVICES_STOP=stop_command(log), SDDC_BACKUP_SERVICES_START=start_command(log)
    )
    api = Api(server)
    token = api.token()
    backed_up = appliance.snapshot()
    name = back_up(api, token, sftp_server)
    appliance.change_everything()
    assert not log.exists()  # a backup does not stop the services

    task = restore(api, token, name)
    assert task["status"] == "Successful", task
    assert log.read_text().split() == ["stop", "start"]
    assert appliance.snapshot() == backed_up


def test_services_that_do_not_come_back_fail_the_restore_and_roll_it_back(
    server: ServerProcess, tmp_path: Path, postgres: PostgresCluster, sftp_server: SshServer
) -> None:
    appliance = Appliance.create(tmp_path / "appliance", postgres)
    log = tmp_path / "services.log"
    server_for(server, appliance).start(
        SDDC_BACKUP_SERVICES_STOP=stop_command(log),
        SDDC_BACKUP_SERVICES_START=start_command(log),
        SDDC_BACKUP_SERVICES_CHECK="false",
        SDDC_BACKUP_SERVICES_TIMEOUT_SECONDS="3",
    )
    api = Api(server)
    token = api.token()
    name = back_up(api, token, sftp_server)
    appliance.change_everything()
    changed = appliance.snapshot()
    databases = appliance.databases()

    task = restore(api, token, name)
    assert task["status"] == "Failed", task
    assert [s["name"] for s in task["subTasks"] if s["status"] == "Failed"] == ["StartSDDCManagerServices"]
    error = task["errors"][0]
    assert error["errorCode"] == "SERVICE_COMMAND_FAILED", error
    assert error["context"]["phase"] == "StartSDDCManagerServices", error
    assert "rolled back" in error["message"], error
    assert appliance.snapshot() == changed
    assert appliance.databases() == databases
    assert leftovers(appliance) == []
    assert not (server.data_dir / "restore-journal.json").exists()
    # Stopped and started for the restore; stopped and started again around putting the state back.
    assert log.read_text().split() == ["stop", "start", "stop", "start"]


def test_one_backup_or_restore_at_a_time(
    server: ServerProcess, tmp_path: Path, postgres: PostgresCluster, sftp_server: SshServer
) -> None:
    appliance = Appliance.create(tmp_path / "appliance", postgres)
    server_for(server, appliance).start()
    api = Api(server)
    token = api.token()
    name = back_up(api, token, sftp_server)
    appliance.change_everything()
    changed = appliance.snapshot()
    databases = appliance.databases()
    server.stop()

    faults = {
        "SDDC_MANAGER_BACKUP:Upload the archive": "hang",
        f"{RESTORE}:Decrypt and verify the backup": "hang",
    }
    server.start(SDDC_BACKUP_FAULTS=json.dumps(faults))
    api = Api(server)
    token = api.token()
    body = {"elements": ELEMENTS, "backupFile": name, "encryption": {"passphrase": PASSPHRASE}}

    backup_id = api.request("POST", "/v1/backups/tasks", token, json={"elements": ELEMENTS}).json()["id"]
    deadline = time.monotonic() + WAIT
    while True:  # until it hangs in its upload
        backup = api.request("GET", f"/v1/tasks/{backup_id}", token).json()
        if backup["subTasks"][1]["status"] == "IN_PROGRESS":
            break
        assert backup["status"] == "IN_PROGRESS" and time.monotonic() < deadline, backup
        time.sleep(0.05)
    assert_vcf_error(api.request("POST", TASKS, token, json=body), 400, "BACKUP_IN_PROGRESS")
    assert api.request("DELETE", f"/v1/tasks/{backup_id}", token).status_code == 200
    assert api.wait_task(backup_id, token, timeout=WAIT)["status"] == "CANCELLED"

    task_id = start_restore(api, token, name)
    wait_for_stage(api, token, task_id, "Decrypt and verify the backup")
    assert_vcf_error(api.request("POST", TASKS, token, json=body), 400, "RESTORE_IN_PROGRESS")
    refused = api.request("POST", "/v1/backups/tasks", token, json={"elements": ELEMENTS})
    assert_vcf_error(refused, 400, "RESTORE_IN_PROGRESS")
    # The restore sets the backup configuration from the backup: no change may land meanwhile.
    elsewhere = {"backupLocations": [sftp_server.location_spec(directoryPath=str(tmp_path))]}
    for method in ("PATCH", "PUT"):
        change = api.request(method, "/v1/system/backup-configuration", token, json=elsewhere)
        assert_vcf_error(change, 400, "RESTORE_IN_PROGRESS")
    config = api.request("GET", "/v1/system/backup-configuration", token).json()
    assert [loc["directoryPath"] for loc in config["backupLocations"]] == [str(sftp_server.directory)]
    running = get_task(api, token, task_id)
    assert running["status"] == "In Progress" and running_stages(running) == ["Decrypt and verify the backup"]

    server.kill()  # a restore cannot be cancelled: end this one the hard way
    server.start()
    api = Api(server)
    token = api.token()
    assert_recovered(server, api, token, task_id, appliance, "rolled back", changed, databases)


def test_a_restore_brings_back_the_backup_configuration(
    server: ServerProcess, tmp_path: Path, postgres: PostgresCluster, sftp_server: SshServer
) -> None:
    appliance = Appliance.create(tmp_path / "appliance", postgres)
    server_for(server, appliance).start()
    api = Api(server)
    token = api.token()
    name = back_up(api, token, sftp_server)  # configures location A: sftp_server.directory
    location_a = str(sftp_server.directory)
    config = api.request("GET", "/v1/system/backup-configuration", token).json()
    assert config["backupLocations"][0]["directoryPath"] == location_a

    location_b = sftp_server.account.new_directory()
    try:
        spec = {"backupLocations": [sftp_server.location_spec(directoryPath=str(location_b))]}
        r = api.request("PATCH", "/v1/system/backup-configuration", token, json=spec)
        assert r.status_code == 202, r.text
        assert api.wait_task(r.json()["id"], token, timeout=WAIT)["status"] == "SUCCESSFUL"
        config = api.request("GET", "/v1/system/backup-configuration", token).json()
        assert config["backupLocations"][0]["directoryPath"] == str(location_b)

        copy = Path("/tmp") / f"{tmp_path.name}-{name}"  # where VCF operators copy backups
        shutil.copyfile(sftp_server.directory / name, copy)
        try:
            task = restore(api, token, str(copy))
        finally:
            copy.unlink()
    finally:
        shutil.rmtree(location_b, ignore_errors=True)
    assert task["status"] == "Successful", task
    config = api.request("GET", "/v1/system/backup-configuration", token).json()
    assert [loc["directoryPath"] for loc in config["backupLocations"]] == [location_a]
    assert config["isConfigured"] is True
    # The restored configuration works: the next backup lands in A, encrypted with its passphrase.
    before = set(sftp_server.directory.iterdir())
    r = api.request("POST", "/v1/backups/tasks", token, json={"elements": ELEMENTS})
    assert r.status_code == 202, r.text
    assert api.wait_task(r.json()["id"], token, timeout=WAIT)["status"] == "SUCCESSFUL"
    added = sorted(p.name for p in set(sftp_server.directory.iterdir()) - before)
    assert len(added) == 2 and added[1] == added[0] + ".sha256", added
