"""Cancelling a backup from the command line: ``tasks cancel`` stops it, and a ``tasks watch`` that
follows it in another process exits 5. The upload stage is held by a fault plan until the cancel."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_client import PASSPHRASE, Client, assert_error, start_server, write_json
from tests.support.server import ServerProcess

HANG_AT_UPLOAD = json.dumps({"SDDC_MANAGER_BACKUP:Upload the archive": "hang"})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "file.txt").write_text("content\n")
    proc = start_server(
        tmp_path / "data", {"SDDC_BACKUP_PATHS": json.dumps([str(tree)])}, SDDC_BACKUP_FAULTS=HANG_AT_UPLOAD
    )
    yield proc
    proc.stop()


def wait_for_upload(client: Client, task_id: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        task = client.json("tasks", "show", task_id)
        stages = [
            s["name"] for sub in task["subTasks"] for s in sub["stages"] if s["status"] == "IN_PROGRESS"
        ]
        if stages == ["Upload the archive"]:
            return
        assert time.monotonic() < deadline, task
        time.sleep(0.1)


def test_a_cancelled_backup_makes_tasks_watch_exit_5(server: ServerProcess, tmp_path: Path) -> None:
    client = Client(server)
    (tmp_path / "backups").mkdir()
    location = {"protocol": "LOCAL", "directoryPath": str(tmp_path / "backups")}
    spec = write_json(
        tmp_path / "spec.json", {"backupLocations": [location], "encryption": {"passphrase": PASSPHRASE}}
    )
    assert client.run("config", "set", "--file", str(spec)).returncode == 0
    started = client.json("backup")
    watcher = client.popen("tasks", "watch", started["id"], "--interval", "0.2")
    try:
        wait_for_upload(client, started["id"])
        assert watcher.poll() is None  # still following the stuck upload
        cancelled = client.run("tasks", "cancel", started["id"])
        assert cancelled.returncode == 0, cancelled.stderr
        assert f"cancel requested: task {started['id']} is CANCELLED" in cancelled.stdout
        out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 5, (out, err)
    assert "[IN_PROGRESS] Back up SDDC Manager / Upload the archive" in out
    assert out.rstrip().endswith(f"SDDC Manager backup {started['id']}: CANCELLED")
    assert "error TASK_CANCELLED: " in err and "Traceback" not in err

    again = client.run("tasks", "watch", started["id"], "--json")
    assert again.returncode == 5 and json.loads(again.stdout)["status"] == "CANCELLED"
    # A cancelled task is neither cancellable nor retryable any more: the server answers 409.
    assert_error(client.run("tasks", "cancel", started["id"]), 1, "TASK_NOT_CANCELLABLE")
    assert_error(client.run("tasks", "retry", started["id"]), 1, "TASK_NOT_RETRYABLE")
    assert list((tmp_path / "backups").iterdir()) == []
