"""The client commands follow real tasks to their end: a configuration on a real SFTP server, backups,
their verification and retention, and restores by name, in text and in ``--json``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_client import ESCAPE, PASSPHRASE, Client, assert_error, start_server, write_json
from tests.support.server import ServerProcess
from tests.support.sshd import SshServer

BACKUP_PHASES = ["Prepare backup", "Back up SDDC Manager", "Verify backup", "Apply the retention policy"]
SCHEDULE = {
    "resourceType": "SDDC_MANAGER",
    "frequency": "WEEKLY",
    "daysOfWeek": ["SUNDAY"],
    "hourOfDay": 2,
    "minuteOfHour": 0,
    "takeScheduledBackups": False,
    "takeBackupOnStateChange": False,
    "retentionPolicy": {"numberOfMostRecentBackups": 10},
}


class Appliance:
    """A small directory tree that the server backs up and restores."""

    def __init__(self, root: Path) -> None:
        self.tree = root / "etc" / "app"
        (self.tree / "sub").mkdir(parents=True)
        (self.tree / "app.properties").write_text("a=1\n")
        (self.tree / "sub" / "data.bin").write_bytes(bytes(range(256)) * 64)

    def env(self) -> dict[str, str]:
        return {"SDDC_BACKUP_PATHS": json.dumps([str(self.tree)])}


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Appliance:
    return Appliance(tmp_path_factory.mktemp("appliance"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, appliance: Appliance) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("client-backup") / "data", appliance.env())
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def spec(sftp_server: SshServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The SFTP location (a directory of this module's own) and the passphrase."""
    directory = sftp_server.account.new_directory()
    location = sftp_server.location_spec(directoryPath=str(directory))
    return {"backupLocations": [location], "encryption": {"passphrase": PASSPHRASE}}


@pytest.fixture(scope="module")
def configured(
    server: ServerProcess, spec: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Client:
    client = Client(server)
    path = write_json(tmp_path_factory.mktemp("spec") / "spec.json", spec)
    result = client.run("config", "set", "--file", str(path), "--json")
    assert result.returncode == 0, (result.stdout, result.stderr)
    return client


def names_of(client: Client) -> list[str]:
    return [b["fileName"] for b in client.json("backups", "list")["elements"]]


def after_the_second_of(name: str) -> None:
    """Wait until the UTC second in ``name`` is over, so that the next backup gets another name."""
    found = re.search(r"(\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)\.tar\.gz$", name)
    assert found, name
    while datetime.now(UTC).strftime("%Y-%m-%d-%H-%M-%S") <= found.group(1):
        time.sleep(0.05)


@pytest.fixture(scope="module")
def first_backup(configured: Client) -> tuple[Any, str]:
    """``backup --wait`` in text mode (output to a pipe), and the name of the backup it took."""
    result = configured.run("backup", "--wait", "--interval", "0.2")
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result, names_of(configured)[0]


def test_config_commands_show_the_sftp_server_check_it_and_set_it(
    configured: Client, sftp_server: SshServer, spec: dict[str, Any], tmp_path: Path
) -> None:
    client = configured
    found = client.run("config", "fingerprint", "127.0.0.1", "--port", str(sftp_server.port))
    assert found.returncode == 0, found.stderr
    assert sftp_server.fingerprints["ecdsa"] in found.stdout and "ssh-ed25519" in found.stdout
    keys = client.json("config", "fingerprint", "127.0.0.1", "--port", str(sftp_server.port))
    assert keys["sshFingerprint"] == sftp_server.fingerprints["ecdsa"] and len(keys["hostKeys"]) == 3

    path = write_json(tmp_path / "spec.json", spec)
    checked = client.run("config", "validate", "--file", str(path))
    assert checked.returncode == 0, checked.stderr
    assert "The backup user can log in" in checked.stdout and "validation SUCCEEDED" in checked.stdout
    assert client.json("config", "validate")["resultStatus"] == "SUCCEEDED"  # the stored configuration
    location = {**spec["backupLocations"][0], "sshFingerprint": "SHA256:" + "A" * 43}
    wrong = write_json(tmp_path / "wrong.json", {"backupLocations": [location]})
    mismatch = client.run("config", "validate", "-f", str(wrong))
    assert mismatch.returncode == 1 and "SSH_FINGERPRINT_MISMATCH" in mismatch.stdout

    changed = client.run("config", "set", "--file", str(path), "--interval", "0.2")
    assert changed.returncode == 0, changed.stderr
    assert (
        changed.stdout.startswith("[IN_PROGRESS] Edit backup configuration\n")
        and ESCAPE not in changed.stdout
    )
    assert re.search(r"Edit backup configuration \S+: SUCCESSFUL\n$", changed.stdout), changed.stdout
    replaced = client.json("config", "set", "--file", str(path), "--replace")
    assert (replaced["name"], replaced["status"]) == ("Configure backup settings", "SUCCESSFUL")
    started = client.json("config", "set", "--file", str(path), "--no-wait")
    assert started["status"] == "IN_PROGRESS"
    assert client.run("tasks", "watch", started["id"]).returncode == 0

    shown = client.run("config", "show")
    assert shown.returncode == 0, shown.stderr
    assert f"sftp://{sftp_server.user}@127.0.0.1:{sftp_server.port}" in shown.stdout
    assert sftp_server.password not in shown.stdout and PASSPHRASE not in shown.stdout
    config = client.json("config", "show")
    assert config["isConfigured"] is True and config["backupLocations"][0]["password"] == "**********"


def test_backup_wait_prints_plain_progress_lines_to_a_pipe(first_backup: tuple[Any, str]) -> None:
    result, name = first_backup
    lines = result.stdout.splitlines()
    assert lines[0] == "[IN_PROGRESS] SDDC Manager backup"
    assert re.fullmatch(r"SDDC Manager backup \S+: SUCCESSFUL", lines[-1]), lines
    assert ESCAPE not in result.stdout and result.stderr == ""
    assert name.startswith("vcf-backup-")


def test_backup_json_and_tasks_watch_follow_a_second_backup(
    configured: Client, first_backup: tuple[Any, str]
) -> None:
    after_the_second_of(first_backup[1])
    started = configured.json("backup")
    assert started["status"] == "IN_PROGRESS" and started["resources"][0]["type"] == "SDDC_MANAGER"
    watched = configured.run("tasks", "watch", started["id"], "--json", "--interval", "0.2")
    assert watched.returncode == 0, watched.stderr
    task = json.loads(watched.stdout)  # one document: no progress lines in --json mode
    assert task["status"] == "SUCCESSFUL" and [s["name"] for s in task["subTasks"]] == BACKUP_PHASES
    upload = task["subTasks"][1]["stages"][0]
    assert upload["name"] == "Upload the archive" and upload["progress"]["completed"] > 0


def test_listing_backups_and_tasks(configured: Client, first_backup: tuple[Any, str]) -> None:
    _, name = first_backup
    listed = configured.run("backups", "list")
    assert listed.returncode == 0 and name in listed.stdout, listed.stdout
    page = configured.json("backups", "list")
    entry = next(b for b in page["elements"] if b["fileName"] == name)
    assert entry["sha256"] and entry["size"] > 0

    tasks = configured.run("tasks", "list", "--type", "SDDC_MANAGER_BACKUP")
    assert tasks.returncode == 0 and "SDDC Manager backup" in tasks.stdout
    (newest,) = configured.json("tasks", "list", "--limit", "1", "--status", "successful")["elements"]
    shown = configured.run("tasks", "show", newest["id"])
    assert shown.returncode == 0, shown.stderr
    assert newest["id"] in shown.stdout and "Phases" in shown.stdout
    assert configured.json("tasks", "show", newest["id"])["id"] == newest["id"]


def test_verify_and_retention(
    configured: Client, first_backup: tuple[Any, str], spec: dict[str, Any], tmp_path: Path
) -> None:
    _, name = first_backup
    verified = configured.run("backups", "verify", name, "--wait", "--interval", "0.2")
    assert verified.returncode == 0, verified.stderr
    assert re.search(r"Verify backup \S+: SUCCESSFUL\n$", verified.stdout), verified.stdout
    entry = next(b for b in configured.json("backups", "list")["elements"] if b["fileName"] == name)
    assert entry["manifestVerified"] is True
    started = configured.json("backups", "verify", name)
    assert started["name"] == "Verify backup" and started["status"] in ("IN_PROGRESS", "SUCCESSFUL")
    assert configured.run("tasks", "watch", started["id"]).returncode == 0
    missing = configured.run("backups", "verify", "vcf-backup-nothing-2001-01-01-00-00-00.tar.gz")
    assert_error(missing, 2, "BACKUP_FILE_NOT_FOUND")

    with_policy = write_json(tmp_path / "schedule.json", {"backupSchedules": [SCHEDULE]})
    assert configured.run("config", "set", "-f", str(with_policy)).returncode == 0
    preview = configured.run("retention", "preview")
    assert preview.returncode == 0 and name in preview.stdout and "MOST_RECENT" in preview.stdout
    kept = configured.json("retention", "preview")["elements"]
    assert next(b for b in kept if b["fileName"] == name)["retention"]["keep"] is True
    applied = configured.run("retention", "apply", "--wait")
    assert applied.returncode == 0, applied.stderr
    assert re.search(r"Apply the retention policy \S+: SUCCESSFUL\n$", applied.stdout)
    started = configured.json("retention", "apply")
    assert started["type"] and started["status"] in ("IN_PROGRESS", "SUCCESSFUL")
    assert configured.run("tasks", "watch", started["id"]).returncode == 0
    assert name in names_of(configured)


def test_restore_by_name_waits_until_the_files_are_back(
    configured: Client, first_backup: tuple[Any, str], appliance: Appliance, tmp_path: Path
) -> None:
    _, name = first_backup
    (appliance.tree / "app.properties").write_text("a=2\n")
    (tmp_path / "pass").write_text(PASSPHRASE + "\n")
    result = configured.run(
        "restore", name, "--passphrase-file", str(tmp_path / "pass"), "--wait", "--interval", "0.2"
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stdout.startswith("[In Progress] SDDC Manager Restore Operation\n")
    ended = re.search(r"SDDC Manager Restore Operation (\S+): Successful\n$", result.stdout)
    assert ended, result.stdout
    task = configured.json("tasks", "show", ended.group(1))
    assert [s["status"] for s in task["subTasks"]] == ["Successful"] * 8
    assert (appliance.tree / "app.properties").read_text() == "a=1\n"


def test_a_restore_with_a_wrong_passphrase_exits_1_with_the_error_code(
    configured: Client, first_backup: tuple[Any, str], tmp_path: Path
) -> None:
    _, name = first_backup
    (tmp_path / "wrong").write_text("Wr0ng!passphrase\n")
    result = configured.run("restore", name, "-p", str(tmp_path / "wrong"), "--wait", "--json")
    assert_error(result, 1, "ARCHIVE_WRONG_PASSPHRASE")
    task = json.loads(result.stdout)
    assert task["status"] == "Failed" and task["errors"][0]["errorCode"] == "ARCHIVE_WRONG_PASSPHRASE"
    assert "Wr0ng" not in result.stdout + result.stderr
