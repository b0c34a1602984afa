"""Backup locations on a real OpenSSH server, through the API: each failure has its own check and
errorCode, and a configuration that fails is not saved."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest

from tests.support.http import Api
from tests.support.ports import free_port
from tests.support.server import ServerProcess
from tests.support.sshd import SshServer

PASSPHRASE = "VMw@re1!VMw@re1!"


def location(sftp: SshServer, **changes: Any) -> dict[str, Any]:
    return sftp.location_spec(**changes)


def checks(api: Api, token: str, loc: dict[str, Any]) -> tuple[str, list[tuple[str, str, str | None]]]:
    r = api.request(
        "POST", "/v1/system/backup-configuration/validations", token, json={"backupLocations": [loc]}
    )
    assert r.status_code == 202, r.text
    body = r.json()
    return body["resultStatus"], [
        (c["description"], c["resultStatus"], (c.get("errorResponse") or {}).get("errorCode"))
        for c in body["validationChecks"]
    ]


def test_a_good_sftp_location_passes_every_check(api: Api, admin_token: str, sftp_server: SshServer) -> None:
    result, found = checks(api, admin_token, location(sftp_server))
    assert result == "SUCCEEDED"
    assert [status for _, status, _ in found[:4]] == ["SUCCEEDED"] * 4
    assert found[4][0] == "Free space in the backup directory" and found[4][1] == "SUCCEEDED"


WRONG = "SHA256:" + base64.b64encode(os.urandom(32)).decode().rstrip("=")


@pytest.mark.parametrize(
    ("changes", "failed_at", "code"),
    [
        ({"port": "closed"}, 0, "SFTP_HOST_UNREACHABLE"),
        ({"sshFingerprint": WRONG}, 1, "SSH_FINGERPRINT_MISMATCH"),
        ({"sshFingerprint": None}, 1, "SSH_FINGERPRINT_REQUIRED"),
        ({"password": "Wrong!password-1"}, 2, "SFTP_LOGIN_FAILED"),
        ({"directoryPath": "/nonexistent/backups"}, 3, "BACKUP_DIRECTORY_NOT_FOUND"),
        ({"directoryPath": "/usr"}, 3, "BACKUP_DIRECTORY_NOT_WRITABLE"),
    ],
    ids=["unreachable", "wrong-fingerprint", "no-fingerprint", "wrong-password", "missing-dir", "read-only"],
)
def test_each_failure_names_its_check_and_code(
    api: Api, admin_token: str, sftp_server: SshServer, changes: dict[str, Any], failed_at: int, code: str
) -> None:
    if changes.get("port") == "closed":
        changes = {"port": free_port()}
    result, found = checks(api, admin_token, location(sftp_server, **changes))
    assert result == "FAILED"
    statuses = [status for _, status, _ in found]
    assert statuses[:failed_at] == ["SUCCEEDED"] * failed_at
    assert statuses[failed_at] == "FAILED" and found[failed_at][2] == code
    assert all(s == "SKIPPED" for s in statuses[failed_at + 1 :])


def test_without_a_fingerprint_the_error_offers_the_server_keys(
    api: Api, admin_token: str, sftp_server: SshServer
) -> None:
    r = api.request(
        "POST",
        "/v1/system/backup-configuration/validations",
        admin_token,
        json={"backupLocations": [location(sftp_server, sshFingerprint=None)]},
    )
    failed = next(c for c in r.json()["validationChecks"] if c["resultStatus"] == "FAILED")
    message = failed["errorResponse"]["message"]
    assert sftp_server.fingerprints["ecdsa"] in message
    assert message.index(sftp_server.fingerprints["ecdsa"]) < message.index(sftp_server.fingerprints["rsa"])
    assert sftp_server.password not in r.text


def test_the_fingerprint_lookup_matches_ssh_keygen(
    api: Api, admin_token: str, sftp_server: SshServer
) -> None:
    r = api.request(
        "GET",
        f"/v1/system/backup-configuration/backup-locations?serverIp={sftp_server.host}&port={sftp_server.port}",
        admin_token,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sshFingerprint"] == sftp_server.fingerprints["ecdsa"]
    offered = {k["sshFingerprint"] for k in body["hostKeys"]}
    assert offered == set(sftp_server.fingerprints.values())
    assert body["hostKeys"][0]["keyType"].startswith("ecdsa-")


def test_a_failing_location_is_not_saved(api: Api, admin_token: str, sftp_server: SshServer) -> None:
    good = {"backupLocations": [location(sftp_server)], "encryption": {"passphrase": PASSPHRASE}}
    r = api.request("PUT", "/v1/system/backup-configuration", admin_token, json=good)
    assert api.wait_task(r.json()["id"], admin_token)["status"] == "SUCCESSFUL"
    bad = {"backupLocations": [location(sftp_server, sshFingerprint=WRONG)]}
    r = api.request("PATCH", "/v1/system/backup-configuration", admin_token, json=bad)
    task = api.wait_task(r.json()["id"], admin_token)
    assert task["status"] == "FAILED" and task["errors"][0]["errorCode"] == "SSH_FINGERPRINT_MISMATCH"
    stored = api.request("GET", "/v1/system/backup-configuration", admin_token).json()
    assert stored["backupLocations"][0]["sshFingerprint"] == sftp_server.fingerprints["ecdsa"]


def test_backups_are_listed_from_the_sftp_server(api: Api, admin_token: str, sftp_server: SshServer) -> None:
    directory = sftp_server.account.new_directory()  # of this test alone: other tests back up too
    name = "vcf-backup-sfo-vcf01-2026-11-27-09-00-00.tar.gz"
    (directory / name).write_bytes(b"x" * 10)
    good = {"backupLocations": [location(sftp_server, directoryPath=str(directory))]}
    r = api.request("PATCH", "/v1/system/backup-configuration", admin_token, json=good)
    assert api.wait_task(r.json()["id"], admin_token)["status"] == "SUCCESSFUL"
    listed = api.request("GET", "/v1/backups", admin_token).json()["elements"]
    assert [(b["fileName"], b["size"]) for b in listed] == [(name, 10)]


def test_a_location_without_a_password_logs_in_with_the_configured_key(
    fresh_server: ServerProcess, sftp_server: SshServer
) -> None:
    fresh_server.base_env = {"SDDC_BACKUP_SFTP_CLIENT_KEYS": json.dumps([str(sftp_server.client_key)])}
    fresh_server.start()
    api = Api(fresh_server)
    token = api.token()
    spec = {"backupLocations": [location(sftp_server, password=None)]}
    r = api.request("PATCH", "/v1/system/backup-configuration", token, json=spec)
    task = api.wait_task(r.json()["id"], token)
    assert task["status"] == "SUCCESSFUL", task
    stored = api.request("GET", "/v1/system/backup-configuration", token).json()["backupLocations"][0]
    assert "password" not in stored
