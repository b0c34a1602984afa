"""Scheduled backups, backups after a change, and retention, with the real server, the real clock
and a real SFTP server: a missed run is taken once at start-up and prunes exactly the predicted
files; a run that falls during a restore is skipped and recorded; a burst of changes makes one backup."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.http import Api
from tests.support.server import FQDN, ServerProcess
from tests.support.sshd import SshServer

PASSPHRASE = "VMw@re1!VMw@re1!"
HOST = FQDN.replace(".", "-")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data")
    proc.base_env = {"SDDC_BACKUP_STATE_CHANGE_DELAY_SECONDS": "1"}
    yield proc
    proc.stop()


@pytest.fixture
def location(sftp_server: SshServer, tmp_path: Path) -> Iterator[tuple[SshServer, Path]]:
    """A directory of this test's own on the SFTP server (the retention test counts its files)."""
    directory = sftp_server.directory / tmp_path.name
    directory.mkdir()
    shutil.chown(directory, sftp_server.user)
    yield sftp_server, directory
    shutil.rmtree(directory, ignore_errors=True)


def configure(api: Api, token: str, sftp: SshServer, directory: Path, schedule: dict[str, Any]) -> None:
    spec = {
        "backupLocations": [sftp.location_spec(directoryPath=str(directory))],
        "backupSchedules": [{"resourceType": "SDDC_MANAGER", **schedule}],
        "encryption": {"passphrase": PASSPHRASE},
    }
    r = api.request("PUT", "/v1/system/backup-configuration", token, json=spec)
    assert r.status_code in (200, 202), r.text
    assert api.wait_task(r.json()["id"], token)["status"] == "SUCCESSFUL"


def backup_tasks(api: Api, token: str) -> list[dict[str, Any]]:
    r = api.request("GET", "/v1/tasks", token, params={"taskType": "SDDC_MANAGER_BACKUP"})
    return list(r.json()["elements"])


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.2)
    return found


def fake_backup(directory: Path, created: datetime, host: str = HOST) -> str:
    name = f"vcf-backup-{host}-{created.strftime('%Y-%m-%d-%H-%M-%S')}.tar.gz"
    (directory / name).write_bytes(b"an older backup")
    (directory / f"{name}.sha256").write_text(f"{'0' * 64}  {name}\n")
    return name


def test_a_missed_run_is_taken_once_at_start_up_and_retention_removes_exactly_the_predicted_files(
    server: ServerProcess, location: tuple[SshServer, Path]
) -> None:
    sftp, directory = location
    server.start()
    api = Api(server)
    token = api.token()
    schedule = {
        "frequency": "HOURLY",
        "minuteOfHour": 0,
        "takeScheduledBackups": True,
        "takeBackupOnStateChange": False,
        "retentionPolicy": {
            "numberOfMostRecentBackups": 2,
            "numberOfDaysOfHourlyBackups": 0,
            "numberOfDaysOfDailyBackups": 0,
        },
    }
    configure(api, token, sftp, directory, schedule)
    now = datetime.now(UTC)
    old = [fake_backup(directory, now - timedelta(days=d)) for d in (4, 3, 2)]
    stranger = fake_backup(directory, now - timedelta(days=5), host="another-appliance")
    (directory / "notes.txt").write_text("not a backup\n")
    wait_for(lambda: server.data_dir.joinpath("state.db").exists(), 10, "state store")
    server.stop()
    # The service was down for three hourly slots: the next start takes one backup, not three.
    with sqlite3.connect(server.data_dir / "state.db") as conn:
        (raw,) = conn.execute("SELECT value FROM settings WHERE key = 'scheduler'").fetchone()
        state = json.loads(raw)
        state["lastRun"] = (now - timedelta(hours=3, minutes=1)).isoformat()
        conn.execute("UPDATE settings SET value = ? WHERE key = 'scheduler'", (json.dumps(state),))
    conn.close()
    server.start()
    token = api.token()
    tasks = wait_for(lambda: backup_tasks(api, token), 30, "scheduled backup")
    task = api.wait_task(tasks[0]["id"], token, timeout=120)
    assert task["status"] == "SUCCESSFUL", task["errors"]
    assert task["name"] == "SDDC Manager backup (scheduled)"
    time.sleep(3)  # long enough for a second (wrong) run to show up
    assert len(backup_tasks(api, token)) == 1
    new = [
        p.name for p in directory.iterdir() if p.name.startswith(f"vcf-backup-{HOST}") and p.name not in old
    ]
    new = [n for n in new if not n.endswith(".sha256")]
    assert len(new) == 1
    # Kept: the new backup and the newest older one (two most recent); the two oldest go, with their
    # checksums; the stranger's backup and the other file are never touched.
    expected = {
        new[0],
        f"{new[0]}.sha256",
        old[2],
        f"{old[2]}.sha256",
        stranger,
        f"{stranger}.sha256",
        "notes.txt",
    }
    assert {p.name for p in directory.iterdir()} == expected
    stages = [s["name"] for s in task["subTasks"][3]["stages"]]
    assert stages == ["Work out what the retention policy keeps", f"Delete {old[0]}", f"Delete {old[1]}"]
    listed = {b["fileName"]: b for b in api.request("GET", "/v1/backups", token).json()["elements"]}
    assert listed[new[0]]["retention"] == {"keep": True, "reasons": ["MOST_RECENT", "NEWEST_SUCCESSFUL"]}
    assert listed[old[2]]["retention"] == {"keep": True, "reasons": ["MOST_RECENT"]}
    assert "retention" not in listed[stranger]


def test_a_burst_of_changes_makes_one_backup(server: ServerProcess, location: tuple[SshServer, Path]) -> None:
    sftp, directory = location
    server.start()
    api = Api(server)
    token = api.token()
    schedule = {
        "frequency": "WEEKLY",
        "daysOfWeek": ["SUNDAY"],
        "hourOfDay": (datetime.now(UTC).hour + 12) % 24,  # far from now
        "minuteOfHour": 0,
        "takeScheduledBackups": True,
        "takeBackupOnStateChange": True,
    }
    configure(api, token, sftp, directory, schedule)
    for minute in (10, 20, 30):
        body = {"backupSchedules": [{"resourceType": "SDDC_MANAGER", **schedule, "minuteOfHour": minute}]}
        r = api.request("PATCH", "/v1/system/backup-configuration", token, json=body)
        assert api.wait_task(r.json()["id"], token)["status"] == "SUCCESSFUL"
    tasks = wait_for(lambda: backup_tasks(api, token), 30, "backup after the changes")
    assert api.wait_task(tasks[0]["id"], token, timeout=120)["status"] == "SUCCESSFUL"
    time.sleep(3)  # more than the coalescing delay: a second backup would have started by now
    tasks = backup_tasks(api, token)
    assert [t["name"] for t in tasks] == ["SDDC Manager backup (after a change)"]
