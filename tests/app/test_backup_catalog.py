"""The backup catalog and the verification of stored backups (our extensions): ``GET /v1/backups``
says which files were read back and checked completely, and ``POST /v1/backups/verifications`` checks
one, against a real SFTP server and both state stores."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.support.http import Api, assert_vcf_error
from tests.support.server import ServerProcess
from tests.support.sshd import SshServer

PASSPHRASE = "VMw@re1!VMw@re1!"


def configure_and_back_up(api: Api, token: str, sftp: SshServer) -> str:
    spec = {"backupLocations": [sftp.location_spec()], "encryption": {"passphrase": PASSPHRASE}}
    r = api.request("PUT", "/v1/system/backup-configuration", token, json=spec)
    assert api.wait_task(r.json()["id"], token)["status"] == "SUCCESSFUL"
    r = api.request("POST", "/v1/backups/tasks", token, json={"elements": [{"resourceType": "SDDC_MANAGER"}]})
    task = api.wait_task(r.json()["id"], token, timeout=120)
    assert task["status"] == "SUCCESSFUL", task
    assert task["subTasks"][2]["stages"][-1]["name"] == "Record the backup in the catalog"
    return str(api.request("GET", "/v1/backups", token).json()["elements"][0]["fileName"])


def listed(api: Api, token: str, name: str) -> dict[str, Any]:
    elements = api.request("GET", "/v1/backups", token).json()["elements"]
    return next(e for e in elements if e["fileName"] == name)


def verify(api: Api, token: str, name: str) -> dict[str, Any]:
    r = api.request("POST", "/v1/backups/verifications", token, json={"fileName": name})
    assert r.status_code == 202, r.text
    return api.wait_task(r.json()["id"], token, timeout=120)


def test_a_verified_backup_shows_as_verified_until_it_changes(
    fresh_server: ServerProcess, sftp_server: SshServer
) -> None:
    fresh_server.start()
    api = Api(fresh_server)
    token = api.token()
    name = configure_and_back_up(api, token, sftp_server)
    before = listed(api, token, name)
    assert before["manifestVerified"] is False and before.get("verificationTimestamp") is None

    task = verify(api, token, name)
    assert task["status"] == "SUCCESSFUL", task
    stage = task["subTasks"][0]["stages"][0]
    assert stage["progress"]["completed"] == stage["progress"]["total"] == before["size"]
    after = listed(api, token, name)
    assert after["manifestVerified"] is True and after["verificationTimestamp"]

    # One flipped bit in the middle of the stored file, a minute later: the listing stops vouching
    # for it at once (its modification time changed), and a new check fails and says so. (SFTP
    # reports whole seconds, hence the explicit time: a change within the same second as the check
    # is only caught by the next check.)
    stored = sftp_server.directory / name
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    later = stored.stat().st_mtime + 60
    os.utime(stored, (later, later))
    assert listed(api, token, name)["manifestVerified"] is False
    failed = verify(api, token, name)
    assert failed["status"] == "FAILED"
    assert failed["errors"][0]["errorCode"] in (
        "ARCHIVE_CORRUPT",
        "BACKUP_CHECKSUM_MISMATCH",
    )
    assert listed(api, token, name)["manifestVerified"] is False


def test_verification_refuses_what_it_cannot_check(
    fresh_server: ServerProcess, sftp_server: SshServer
) -> None:
    fresh_server.start()
    api = Api(fresh_server)
    token = api.token()
    body = {"fileName": "vcf-backup-x-2026-01-01-00-00-00.tar.gz"}
    assert_vcf_error(
        api.request("POST", "/v1/backups/verifications", token, json=body), 400, "BACKUP_NOT_CONFIGURED"
    )
    configure_and_back_up(api, token, sftp_server)
    for name, code in (
        ("vcf-backup-x-2026-01-01-00-00-00.tar.gz", "BACKUP_FILE_NOT_FOUND"),
        ("../etc/passwd", "INVALID_BACKUP_FILE_NAME"),
        ("notes.txt", "INVALID_BACKUP_FILE_NAME"),
    ):
        r = api.request("POST", "/v1/backups/verifications", token, json={"fileName": name})
        assert_vcf_error(r, 400, code)


def test_backups_taken_within_one_second_never_replace_each_other(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    """File names have a resolution of one second; quick backups must still all be kept."""
    fresh_server.start()
    api = Api(fresh_server)
    token = api.token()
    target = tmp_path / "local-backups"
    target.mkdir()
    spec = {
        "backupLocations": [{"protocol": "LOCAL", "directoryPath": str(target)}],
        "encryption": {"passphrase": PASSPHRASE},
    }
    r = api.request("PUT", "/v1/system/backup-configuration", token, json=spec)
    assert api.wait_task(r.json()["id"], token)["status"] == "SUCCESSFUL"
    for _ in range(4):
        r = api.request(
            "POST", "/v1/backups/tasks", token, json={"elements": [{"resourceType": "SDDC_MANAGER"}]}
        )
        assert api.wait_task(r.json()["id"], token, timeout=60)["status"] == "SUCCESSFUL"
    archives = sorted(p.name for p in target.iterdir() if p.name.endswith(".tar.gz"))
    assert len(archives) == 4
    assert len(api.request("GET", "/v1/backups", token).json()["elements"]) == 4
