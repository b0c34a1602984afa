"""A real server process killed with SIGKILL mid-task: after a restart the task is FAILED with a reason,
retryable, and nothing half-applied was saved."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.support.http import Api
from tests.support.server import ServerProcess

HANG_AT_CHECK = json.dumps({"CONFIGURE_BACKUP:Check backup location": "hang"})
FAIL_AT_SAVE = json.dumps({"CONFIGURE_BACKUP:Save backup configuration": "fail"})


def wait_for_stage(api: Api, token: str, task_id: str, stage: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = api.request("GET", f"/v1/tasks/{task_id}", token).json()
        running = [s for sub in task["subTasks"] for s in sub["stages"] if s["status"] == "IN_PROGRESS"]
        if running and running[0]["name"] == stage:
            return task
        time.sleep(0.05)
    raise AssertionError(f"stage {stage} never started: {task}")


def start_change_that_hangs(server: ServerProcess, directory: Path) -> str:
    """Start the server with a fault plan that stops a configuration change at its location check,
    start such a change, and return its task id once the check is running."""
    server.start(SDDC_BACKUP_FAULTS=HANG_AT_CHECK)
    api = Api(server)
    token = api.token()
    spec = {"backupLocations": [{"protocol": "LOCAL", "directoryPath": str(directory)}]}
    r = api.request("PATCH", "/v1/system/backup-configuration", token, json=spec)
    assert r.status_code == 202
    task_id = str(r.json()["id"])
    wait_for_stage(api, token, task_id, "Check backup location")
    return task_id


def test_task_running_at_sigkill_is_failed_and_retryable_after_restart(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    task_id = start_change_that_hangs(fresh_server, tmp_path)
    fresh_server.kill()
    fresh_server.start()  # same data directory and state store, no fault plan
    api = Api(fresh_server)
    token = api.token()
    task = api.request("GET", f"/v1/tasks/{task_id}", token).json()
    assert task["status"] == "FAILED"
    assert task["isRetryable"] is True
    assert task["errors"][0]["errorCode"] == "TASK_INTERRUPTED"
    assert task_id in task["errors"][0]["remediationMessage"]
    assert task["subTasks"][0]["status"] == "FAILED"
    assert task["subTasks"][0]["stages"][0]["status"] == "FAILED"
    assert f"task {task_id} (CONFIGURE_BACKUP) was interrupted" in fresh_server.output()
    config = api.request("GET", "/v1/system/backup-configuration", token).json()
    assert config["backupLocations"] == []  # nothing of the interrupted change was saved

    assert api.request("PATCH", f"/v1/tasks/{task_id}", token).status_code == 200
    assert api.wait_task(task_id, token)["status"] == "SUCCESSFUL"
    config = api.request("GET", "/v1/system/backup-configuration", token).json()
    assert config["backupLocations"][0]["directoryPath"] == str(tmp_path)


def test_no_task_is_left_in_progress_after_a_graceful_stop(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    task_id = start_change_that_hangs(fresh_server, tmp_path)
    fresh_server.stop()
    assert "Application shutdown complete" in fresh_server.output()
    fresh_server.start()
    api = Api(fresh_server)
    task = api.request("GET", f"/v1/tasks/{task_id}", api.token()).json()
    assert task["status"] == "FAILED" and task["errors"][0]["errorCode"] == "TASK_INTERRUPTED"
    assert task["isRetryable"] is True
    # Resolved by the stop itself, not left for the next start to find.
    assert "was interrupted by the last stop" not in fresh_server.output()


def test_failure_while_saving_leaves_the_previous_configuration(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    fresh_server.start()
    api = Api(fresh_server)
    token = api.token()
    first = {"backupLocations": [{"protocol": "LOCAL", "directoryPath": str(tmp_path)}]}
    r = api.request("PUT", "/v1/system/backup-configuration", token, json=first)
    assert api.wait_task(r.json()["id"], token)["status"] == "SUCCESSFUL"
    fresh_server.stop()

    fresh_server.start(SDDC_BACKUP_FAULTS=FAIL_AT_SAVE)
    api = Api(fresh_server)
    token = api.token()
    (tmp_path / "other").mkdir()
    second = {"backupLocations": [{"protocol": "LOCAL", "directoryPath": str(tmp_path / "other")}]}
    r = api.request("PATCH", "/v1/system/backup-configuration", token, json=second)
    task = api.wait_task(r.json()["id"], token)
    assert task["status"] == "FAILED"
    assert task["errors"][0]["errorCode"] == "INJECTED_FAULT"
    assert task["subTasks"][1]["status"] == "FAILED"
    config = api.request("GET", "/v1/system/backup-configuration", token).json()
    assert config["backupLocations"][0]["directoryPath"] == str(tmp_path)
