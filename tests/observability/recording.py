"""One full run of the real server, recorded for the observability tests: every scrape of /metrics
along the way, every GET response, the tasks, and the server's log.

The run: failed logins, a login, a token refresh and revoke, an SFTP location with a password and a
passphrase, a local ``users add``, a backup that retention follows, a verification, a restore, a
restore with a wrong passphrase; a restart with a fault plan and a backup that fails; a restart with a
backup that hangs while a scheduled run falls due (skipped), then is cancelled; a last restart.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from sddc_backup.persistence.database import Database
from sddc_backup.persistence.settings_store import SettingsStore
from tests.support.http import Api
from tests.support.server import ADMIN, ADMIN_PASSWORD, FQDN, ServerProcess
from tests.support.sshd import SshServer

PASSPHRASE = "Obs3rv@ble-Passphrase#42"
WRONG_PASSPHRASE = "Wr0ng!Passphrase-for-restore"
WRONG_PASSWORD = "N0t-the-admin!password"
VIEWER, VIEWER_PASSWORD = "watcher@local", "Watch3r!viewer-pass"
ELEMENTS = [{"resourceType": "SDDC_MANAGER"}]
UPLOAD_FAILS = '{"SDDC_MANAGER_BACKUP:Upload the archive": "fail"}'
BACKUP_HANGS = '{"SDDC_MANAGER_BACKUP:Collect the service\'s settings": "hang"}'


@dataclass
class RecordedRun:
    server: ServerProcess
    sftp: SshServer
    directory: Path
    scrapes: dict[str, str] = field(default_factory=dict)
    responses: list[str] = field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # by step
    cli_stderr: str = ""
    deleted_by_retention: str = ""

    @property
    def secrets(self) -> dict[str, str]:
        return {
            "passphrase": PASSPHRASE,
            "wrong passphrase": WRONG_PASSPHRASE,
            "SFTP password": self.sftp.password,
            "admin password": ADMIN_PASSWORD,
            "wrong admin password": WRONG_PASSWORD,
            "viewer password": VIEWER_PASSWORD,
        }


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.1)
    return found


class Recorder:
    def __init__(self, run: RecordedRun) -> None:
        self.run = run
        self.api = Api(run.server)
        self.token = ""

    def get(self, path: str, **params: Any) -> requests.Response:
        r = self.api.request("GET", path, self.token, params=params or None)
        self.run.responses.append(r.text)
        return r

    def scrape(self, step: str) -> None:
        r = self.api.request("GET", "/metrics", headers={"Authorization": f"Bearer {self.token}"})
        assert r.status_code == 200, r.text
        self.run.scrapes[step] = r.text

    def task(
        self, step: str, task_id: str, prefix: str = "/v1/tasks", timeout: float = 180
    ) -> dict[str, Any]:
        self.api.wait_task(task_id, self.token, timeout=timeout, prefix=prefix)
        task: dict[str, Any] = self.get(f"{prefix}/{task_id}").json()
        self.run.tasks[step] = task
        return task

    def start(self, **env: str) -> None:
        self.run.server.start(**env)
        self.token = self.api.token()

    # -- the steps ---------------------------------------------------------------------------------

    def first_start(self) -> None:
        self.start()
        for _ in range(2):
            r = self.api.request("POST", "/v1/tokens", json={"username": ADMIN, "password": WRONG_PASSWORD})
            assert r.status_code == 401, r.text
        pair = self.api.request("POST", "/v1/tokens", json={"username": ADMIN, "password": ADMIN_PASSWORD})
        refresh_id = pair.json()["refreshToken"]["id"]
        assert (
            self.api.request("PATCH", "/v1/tokens/access-token/refresh", json=refresh_id).status_code == 200
        )
        assert self.api.request("DELETE", "/v1/tokens/refresh-token", json=refresh_id).status_code == 204
        added = self.run.server.cli("users", "add", VIEWER, "--role", "VIEWER", stdin=VIEWER_PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
        self.run.cli_stderr = added.stderr
        self.scrape("start")

    def configure(self) -> None:
        """An SFTP location with a password, a far-off weekly schedule keeping one backup, and an
        older backup of ours in the directory for retention to delete."""
        now = datetime.now(UTC)
        schedule = {
            "resourceType": "SDDC_MANAGER",
            "frequency": "WEEKLY",
            "daysOfWeek": [(now + timedelta(days=3)).strftime("%A").upper()],
            "hourOfDay": (now.hour + 12) % 24,
            "minuteOfHour": 0,
            "takeScheduledBackups": True,
            "takeBackupOnStateChange": False,
            "retentionPolicy": {
                "numberOfMostRecentBackups": 1,
                "numberOfDaysOfHourlyBackups": 0,
                "numberOfDaysOfDailyBackups": 0,
            },
        }
        spec = {
            "backupLocations": [self.run.sftp.location_spec(directoryPath=str(self.run.directory))],
            "backupSchedules": [schedule],
            "encryption": {"passphrase": PASSPHRASE},
        }
        r = self.api.request("PUT", "/v1/system/backup-configuration", self.token, json=spec)
        assert self.task("configure", r.json()["id"])["status"] == "SUCCESSFUL"
        old = f"vcf-backup-{FQDN.replace('.', '-')}-{(now - timedelta(days=9)).strftime('%Y-%m-%d-%H-%M-%S')}"
        (self.run.directory / f"{old}.tar.gz").write_bytes(b"an older backup")
        (self.run.directory / f"{old}.tar.gz.sha256").write_text(f"{'0' * 64}  {old}.tar.gz\n")
        self.run.deleted_by_retention = f"{old}.tar.gz"
        self.get("/v1/system/backup-configuration")

    def back_up_verify_and_restore(self, tmp: Path) -> None:
        r = self.api.request("POST", "/v1/backups/tasks", self.token, json={"elements": ELEMENTS})
        assert self.task("backup", r.json()["id"])["status"] == "SUCCESSFUL"
        self.scrape("after backup")
        name = str(self.get("/v1/backups").json()["elements"][0]["fileName"])
        r = self.api.request("POST", "/v1/backups/verifications", self.token, json={"fileName": name})
        assert self.task("verification", r.json()["id"])["status"] == "SUCCESSFUL"
        copy = Path("/tmp") / f"{tmp.name}-{name}"
        shutil.copyfile(self.run.directory / name, copy)
        try:
            for step, passphrase in (("restore", PASSPHRASE), ("failed restore", WRONG_PASSPHRASE)):
                body = {
                    "elements": ELEMENTS,
                    "backupFile": str(copy),
                    "encryption": {"passphrase": passphrase},
                }
                r = self.api.request("POST", "/v1/restores/tasks", self.token, json=body)
                assert r.status_code == 202, r.text
                self.task(step, r.json()["id"], prefix="/v1/restores/tasks")
                self.scrape(f"after {step}")
        finally:
            copy.unlink()
        assert self.run.tasks["restore"]["status"] == "Successful", self.run.tasks["restore"]
        assert self.run.tasks["failed restore"]["status"] == "Failed"

    def restart_and_fail_a_backup(self) -> None:
        self.run.server.stop()
        self.start(SDDC_BACKUP_FAULTS=UPLOAD_FAILS)
        self.scrape("after restart")
        r = self.api.request("POST", "/v1/backups/tasks", self.token, json={"elements": ELEMENTS})
        assert self.task("failed backup", r.json()["id"])["status"] == "FAILED"
        self.scrape("after failed backup")

    def skip_a_scheduled_run(self, database_url: str) -> None:
        """A backup hangs; the schedule's last run is moved back a week so a run is due; a
        configuration change ends, which wakes the scheduler: the due run is skipped."""
        self.run.server.stop()
        self.start(SDDC_BACKUP_FAULTS=BACKUP_HANGS)
        r = self.api.request("POST", "/v1/backups/tasks", self.token, json={"elements": ELEMENTS})
        hung = r.json()["id"]
        wait_for(lambda: self._stage(hung) == "Collect the service's settings", 30, "hanging backup")
        asyncio.run(_move_last_run_back(database_url, timedelta(days=8)))
        body = {"encryption": {"passphrase": PASSPHRASE}}
        r = self.api.request("PATCH", "/v1/system/backup-configuration", self.token, json=body)
        assert self.task("wake-up change", r.json()["id"])["status"] == "SUCCESSFUL"
        skipped = wait_for(
            lambda: self.get("/v1/tasks", taskStatus="SKIPPED").json()["elements"], 30, "skipped run"
        )
        self.run.tasks["skipped"] = skipped[0]
        assert self.api.request("DELETE", f"/v1/tasks/{hung}", self.token).status_code in (200, 202, 204)
        assert self.task("cancelled backup", hung)["status"] == "CANCELLED"
        self.scrape("after skipped run")

    def last_restart(self) -> None:
        self.run.server.stop()
        self.start()
        self.scrape("after second restart")
        viewer = self.api.request("GET", "/metrics", auth=(VIEWER, VIEWER_PASSWORD))
        assert viewer.status_code == 200, viewer.text
        for path in ("/v1/system/backup-configuration", "/v1/backups", "/v1/vcf-services"):
            self.get(path)
        self.all_task_pages()
        self.run.server.stop()

    def all_task_pages(self) -> None:
        page = 0
        while True:
            body = self.get("/v1/tasks", pageNumber=page, pageSize=5).json()
            for task in body["elements"]:
                self.get(f"/v1/tasks/{task['id']}")
            page += 1
            if page >= body["pageMetadata"]["totalPages"]:
                return

    def _stage(self, task_id: str) -> str | None:
        task = self.api.request("GET", f"/v1/tasks/{task_id}", self.token).json()
        running = [
            s for sub in task["subTasks"] for s in sub.get("stages", []) if s["status"] == "IN_PROGRESS"
        ]
        return str(running[-1]["name"]) if running else None


async def _move_last_run_back(database_url: str, by: timedelta) -> None:
    """Through the service's own store (SQLite or PostgreSQL), while the server runs."""
    database = Database.open(database_url)
    try:
        store = SettingsStore(database.sessions)
        state = await store.get("scheduler")
        assert state and state.get("lastRun"), state
        state["lastRun"] = (datetime.fromisoformat(state["lastRun"]) - by).isoformat()
        await store.put("scheduler", state, datetime.now(UTC))
    finally:
        await database.close()


def record(server: ServerProcess, sftp: SshServer, directory: Path, tmp: Path) -> RecordedRun:
    """Run every step on ``server`` (not started yet), backing up to ``directory`` on ``sftp``."""
    run = RecordedRun(server, sftp, directory)
    recorder = Recorder(run)
    recorder.first_start()
    recorder.configure()
    recorder.back_up_verify_and_restore(tmp)
    recorder.restart_and_fail_a_backup()
    recorder.skip_a_scheduled_run(server.env.get("SDDC_BACKUP_DATABASE_URL") or _sqlite_url(server))
    recorder.last_restart()
    return run


def _sqlite_url(server: ServerProcess) -> str:
    return f"sqlite:///{(server.data_dir / 'state.db').resolve()}"
