"""Validations, the fingerprint lookup and the backup inventory, over raw HTTPS (LOCAL locations;
the SFTP cases run against a real sshd in tests/api/test_sftp_locations.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support.http import Api, assert_vcf_error
from tests.support.ports import free_port

PASSPHRASE = "VMw@re1!VMw@re1!"


def validate(api: Api, token: str, spec: dict) -> dict:
    r = api.request("POST", "/v1/system/backup-configuration/validations", token, json=spec)
    assert r.status_code == 202, r.text
    return r.json()


def test_validation_of_a_writable_directory_succeeds_and_saves_nothing(
    api: Api, admin_token: str, tmp_path: Path
) -> None:
    before = api.request("GET", "/v1/system/backup-configuration", admin_token).json()
    spec = {
        "backupLocations": [{"protocol": "LOCAL", "directoryPath": str(tmp_path)}],
        "encryption": {"passphrase": PASSPHRASE},
    }
    result = validate(api, admin_token, spec)
    assert (result["executionStatus"], result["resultStatus"]) == ("COMPLETED", "SUCCEEDED")
    statuses = {c["description"]: c["resultStatus"] for c in result["validationChecks"]}
    assert statuses["The backup directory exists and a file can be written in it"] == "SUCCEEDED"
    assert statuses["The passphrase meets the passphrase policy"] == "SUCCEEDED"
    assert "Free space in the backup directory" in statuses
    assert list(tmp_path.iterdir()) == []  # the probe file was removed
    assert api.request("GET", "/v1/system/backup-configuration", admin_token).json() == before


def test_validation_of_a_missing_directory_fails_with_its_code(
    api: Api, admin_token: str, tmp_path: Path
) -> None:
    spec = {"backupLocations": [{"protocol": "LOCAL", "directoryPath": str(tmp_path / "missing")}]}
    result = validate(api, admin_token, spec)
    assert result["resultStatus"] == "FAILED"
    failed = [c for c in result["validationChecks"] if c["resultStatus"] == "FAILED"]
    assert failed[0]["errorResponse"]["errorCode"] == "BACKUP_DIRECTORY_NOT_FOUND"
    assert failed[0]["errorResponse"]["remediationMessage"]


def test_validation_breaking_a_rule_is_a_400(api: Api, admin_token: str) -> None:
    r = api.request(
        "POST",
        "/v1/system/backup-configuration/validations",
        admin_token,
        json={"encryption": {"passphrase": "weak"}},
    )
    assert_vcf_error(r, 400, "PASSPHRASE_POLICY_VIOLATION")


def test_fingerprint_lookup_of_a_closed_port_says_unreachable(api: Api, admin_token: str) -> None:
    port = free_port()
    for key in ("serverIp", "serverIP"):
        r = api.request(
            "GET",
            f"/v1/system/backup-configuration/backup-locations?{key}=127.0.0.1&port={port}",
            admin_token,
        )
        assert_vcf_error(r, 400, "SFTP_HOST_UNREACHABLE")
    r = api.request("GET", "/v1/system/backup-configuration/backup-locations?port=22", admin_token)
    assert_vcf_error(r, 400, "MISSING_REQUIRED_FIELD")
    r = api.request("GET", "/v1/system/backup-configuration/backup-locations?serverIp=h&port=0", admin_token)
    assert_vcf_error(r, 400, "INVALID_PORT")


def test_backups_lists_our_files_newest_first_with_sidecar_digests(
    api: Api, admin_token: str, tmp_path: Path
) -> None:
    names = [
        "vcf-backup-sfo-vcf01-sfo-rainpole-io-2026-11-26-08-00-00.tar.gz",
        "vcf-backup-sfo-vcf01-sfo-rainpole-io-2026-11-27-08-00-00.tar.gz",
    ]
    for name in names:
        (tmp_path / name).write_bytes(name.encode())
    digest = hashlib.sha256(names[1].encode()).hexdigest()
    (tmp_path / f"{names[1]}.sha256").write_text(f"{digest}  {names[1]}\n")
    (tmp_path / "notes.txt").write_text("not a backup")
    (tmp_path / f".{names[0]}.abc.part").write_text("an upload in progress")
    spec = {"backupLocations": [{"protocol": "LOCAL", "directoryPath": str(tmp_path)}]}
    r = api.request("PATCH", "/v1/system/backup-configuration", admin_token, json=spec)
    assert api.wait_task(r.json()["id"], admin_token)["status"] == "SUCCESSFUL"
    listed = api.request("GET", "/v1/backups", admin_token).json()["elements"]
    assert [b["fileName"] for b in listed] == names[::-1]
    assert listed[0]["sha256"] == digest and listed[1].get("sha256") is None
    assert listed[0]["creationTimestamp"] == "2026-11-27T08:00:00.000Z"
    assert listed[0]["size"] == len(names[1])


def test_saving_a_location_removes_temporary_files_left_long_ago(
    api: Api, admin_token: str, tmp_path: Path
) -> None:
    import os
    import time

    old, fresh = tmp_path / ".vcf-backup-a.tar.gz.0a1b2c.part", tmp_path / ".vcf-backup-b.tar.gz.3d4e5f.part"
    old.write_bytes(b"interrupted two days ago")
    fresh.write_bytes(b"an upload running now")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    spec = {"backupLocations": [{"protocol": "LOCAL", "directoryPath": str(tmp_path)}]}
    r = api.request("PATCH", "/v1/system/backup-configuration", admin_token, json=spec)
    task = api.wait_task(r.json()["id"], admin_token)
    assert task["status"] == "SUCCESSFUL"
    assert not old.exists() and fresh.exists()
    assert task["subTasks"][1]["stages"][-1]["name"] == "Remove stale temporary files"
