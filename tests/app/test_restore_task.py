"""``POST /v1/restores/tasks`` end to end: a real server restores a real PostgreSQL database, two
directory trees and a SQLite file from a backup on a real SFTP server, all or nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sddc_backup.domain.restore import PHASES
from tests.support.appliance import Appliance
from tests.support.http import Api, assert_vcf_error
from tests.support.restore import ELEMENTS, PASSPHRASE, back_up, restore
from tests.support.server import ServerProcess
from tests.support.sshd import SshServer


@pytest.fixture
def server(tmp_path: Path, appliance: Appliance) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data")
    proc.base_env = appliance.env()
    yield proc
    proc.stop()


def test_a_restore_brings_back_every_part_byte_for_byte(
    server: ServerProcess, appliance: Appliance, sftp_server: SshServer, tmp_path: Path
) -> None:
    server.start()
    api = Api(server)
    token = api.token()
    before = appliance.snapshot()
    name = back_up(api, token, sftp_server)
    appliance.change_everything()
    assert appliance.snapshot() != before
    databases = appliance.databases()

    copy = Path("/tmp") / f"{tmp_path.name}-{name}"
    shutil.copyfile(sftp_server.directory / name, copy)
    try:
        task = restore(api, token, str(copy))
    finally:
        copy.unlink()
    assert task["status"] == "Successful", task["errors"][0]["message"]
    assert [(s["name"], s["description"]) for s in task["subTasks"]] == list(PHASES)
    assert {s["status"] for s in task["subTasks"]} == {"Successful"}
    assert appliance.snapshot() == before
    assert appliance.databases() == databases  # the replaced database was dropped, nothing left over
    leftovers = [p for t in appliance.trees for p in t.parent.iterdir() if "sddc-restore" in p.name]
    assert leftovers == []
    assert not (server.data_dir / "restore-journal.json").exists()
    assert list((server.data_dir / "restore-staging").iterdir()) == []
    generic = api.request("GET", f"/v1/tasks/{task['id']}", token).json()
    assert generic["status"] == "Successful" and generic["type"] == "SDDC_MANAGER_RESTORE"


def test_a_restore_by_name_from_the_location(
    server: ServerProcess, appliance: Appliance, sftp_server: SshServer
) -> None:
    server.start()
    api = Api(server)
    token = api.token()
    before = appliance.snapshot()
    name = back_up(api, token, sftp_server)
    appliance.change_everything()
    task = restore(api, token, name)
    assert task["status"] == "Successful", task["errors"][0]["message"]
    extract = task["subTasks"][1]["stages"][0]
    assert extract["progress"]["completed"] == extract["progress"]["total"] > 0
    assert appliance.snapshot() == before
    # The restore read the whole file and checked it against its manifest: the catalog says so.
    listed = api.request("GET", "/v1/backups", token).json()["elements"]
    assert next(b for b in listed if b["fileName"] == name)["manifestVerified"] is True


def test_a_wrong_passphrase_fails_in_extract_and_touches_nothing(
    server: ServerProcess, appliance: Appliance, sftp_server: SshServer
) -> None:
    server.start()
    api = Api(server)
    token = api.token()
    name = back_up(api, token, sftp_server)
    appliance.change_everything()
    changed = appliance.snapshot()
    databases = appliance.databases()
    task = restore(api, token, name, passphrase="Wr0ng!passphrase")
    assert task["status"] == "Failed", task
    failed = [s for s in task["subTasks"] if s["status"] == "Failed"]
    assert [s["name"] for s in failed] == ["ExtractSDDCManagerBackup"]
    assert task["errors"][0]["context"]["phase"] == "ExtractSDDCManagerBackup"
    assert "Wr0ng" not in str(task)
    assert appliance.snapshot() == changed
    assert appliance.databases() == databases


def test_refused_backup_files(server: ServerProcess, tmp_path: Path) -> None:
    server.start()
    api = Api(server)
    token = api.token()
    outside = Path("/var/tmp") / f"{tmp_path.name}-outside.tar.gz"
    outside.write_bytes(b"x")
    link = Path("/tmp") / f"{tmp_path.name}-link.tar.gz"
    link.symlink_to(outside)
    try:
        for backup_file, code in (
            (str(outside), "RESTORE_FILE_NOT_ALLOWED"),
            (str(link), "RESTORE_FILE_NOT_ALLOWED"),
            ("/tmp/../etc/passwd", "RESTORE_FILE_NOT_ALLOWED"),
            ("/tmp/no-such-backup.tar.gz", "RESTORE_FILE_NOT_FOUND"),
            ("sub/dir.tar.gz", "RESTORE_FILE_NOT_ALLOWED"),
            ("vcf-backup-x-2026-01-01-00-00-00.tar.gz", "RESTORE_FILE_NOT_ALLOWED"),  # no location
        ):
            body = {"elements": ELEMENTS, "backupFile": backup_file, "encryption": {"passphrase": PASSPHRASE}}
            assert_vcf_error(api.request("POST", "/v1/restores/tasks", token, json=body), 400, code)
    finally:
        link.unlink()
        outside.unlink()
    for body in (
        {"elements": ELEMENTS, "backupFile": "", "encryption": {"passphrase": PASSPHRASE}},
        {"elements": ELEMENTS, "backupFile": "/tmp/x"},
        {"elements": [], "backupFile": "/tmp/x", "encryption": {"passphrase": PASSPHRASE}},
    ):
        assert_vcf_error(api.request("POST", "/v1/restores/tasks", token, json=body), 400)


def test_a_tampered_file_fails_in_extract_and_touches_nothing(
    server: ServerProcess, appliance: Appliance, sftp_server: SshServer, tmp_path: Path
) -> None:
    server.start()
    api = Api(server)
    token = api.token()
    name = back_up(api, token, sftp_server)
    appliance.change_everything()
    changed = appliance.snapshot()
    databases = appliance.databases()
    copy = Path("/tmp") / f"{tmp_path.name}-tampered-{name}"
    data = bytearray((sftp_server.directory / name).read_bytes())
    data[len(data) // 2] ^= 0x40  # one bit, in the middle of the encrypted stream
    copy.write_bytes(bytes(data))
    try:
        task = restore(api, token, str(copy))
    finally:
        copy.unlink()
    assert task["status"] == "Failed", task
    assert [s["name"] for s in task["subTasks"] if s["status"] == "Failed"] == ["ExtractSDDCManagerBackup"]
    assert task["errors"][0]["errorCode"] in ("ARCHIVE_CORRUPT", "ARCHIVE_MANIFEST_MISMATCH")
    assert appliance.snapshot() == changed
    assert appliance.databases() == databases
    assert list((server.data_dir / "restore-staging").iterdir()) == []
