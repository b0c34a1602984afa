"""``/v1/system/backup-configuration`` over raw HTTPS: each rule is a 400 VCF Error; secrets stay masked."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.support.http import Api, assert_vcf_error
from tests.support.mounts import tmpfs
from tests.support.sshd import SshServer

PASSPHRASE = "VMw@re1!VMw@re1!"
PASSWORD = "S3cret!sftp-password"
FINGERPRINT = "SHA256:" + "A" * 43


def sftp_spec(sftp: SshServer | None = None) -> dict[str, Any]:
    """A full spec; on ``sftp`` (a real server) when given, else on a placeholder that rule checks
    refuse before any connection."""
    return {
        "backupLocations": [
            {
                "server": sftp.host if sftp else "sftp.example.test",
                "port": sftp.port if sftp else 22,
                "protocol": "SFTP",
                "username": sftp.user if sftp else "svc-vcf-bck",
                "password": sftp.password if sftp else PASSWORD,
                "directoryPath": str(sftp.directory) if sftp else "/backups/sfo-vcf-01/",
                "sshFingerprint": sftp.fingerprints["ecdsa"] if sftp else FINGERPRINT,
            }
        ],
        "backupSchedules": [
            {
                "resourceType": "SDDC_MANAGER",
                "takeScheduledBackups": True,
                "frequency": "WEEKLY",
                "daysOfWeek": ["SUNDAY"],
                "hourOfDay": 2,
                "minuteOfHour": 0,
                "takeBackupOnStateChange": True,
                "retentionPolicy": {
                    "numberOfMostRecentBackups": 10,
                    "numberOfDaysOfHourlyBackups": 2,
                    "numberOfDaysOfDailyBackups": 15,
                },
            }
        ],
        "encryption": {"passphrase": PASSPHRASE},
    }


def with_change(path: str, value: Any, sftp: SshServer | None = None) -> dict[str, Any]:
    """``sftp_spec()`` with the value at a dotted path (list indexes as numbers) replaced or, for
    ``...``, removed."""
    spec = sftp_spec(sftp)
    *parents, last = path.split(".")
    node: Any = spec
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return spec


def apply(api: Api, token: str, method: str, spec: dict[str, Any]) -> dict[str, Any]:
    r = api.request(method, "/v1/system/backup-configuration", token, json=spec)
    assert r.status_code == (200 if method == "PUT" else 202), r.text
    return api.wait_task(r.json()["id"], token)


RULES = [
    ("backupLocations.0.protocol", "FTP", "INVALID_PROTOCOL"),
    ("backupLocations.0.protocol", ..., "MISSING_REQUIRED_FIELD"),
    ("backupLocations.0.server", ..., "MISSING_REQUIRED_FIELD"),
    ("backupLocations.0.username", ..., "MISSING_REQUIRED_FIELD"),
    ("backupLocations.0.directoryPath", ..., "MISSING_REQUIRED_FIELD"),
    ("backupLocations.0.port", ..., "MISSING_REQUIRED_FIELD"),
    ("backupLocations.0.port", 0, "INVALID_PORT"),
    ("backupLocations.0.port", 65536, "INVALID_PORT"),
    ("backupLocations.0.directoryPath", "relative/dir", "INVALID_DIRECTORY_PATH"),
    ("backupLocations.0.directoryPath", "/backups/../etc", "INVALID_DIRECTORY_PATH"),
    ("backupLocations.0.directoryPath", "/backups/\u0000x", "INVALID_DIRECTORY_PATH"),
    ("backupLocations.0.sshFingerprint", "MD5:aa:bb", "INVALID_SSH_FINGERPRINT"),
    ("backupSchedules.0.resourceType", "VCENTER", "INVALID_RESOURCE_TYPE"),
    ("backupSchedules.0.frequency", "DAILY", "INVALID_FREQUENCY"),
    ("backupSchedules.0.daysOfWeek", ["FUNDAY"], "INVALID_DAY_OF_WEEK"),
    ("backupSchedules.0.daysOfWeek", [], "MISSING_REQUIRED_FIELD"),
    ("backupSchedules.0.hourOfDay", 24, "INVALID_HOUR_OF_DAY"),
    ("backupSchedules.0.minuteOfHour", 60, "INVALID_MINUTE_OF_HOUR"),
    ("backupSchedules.0.retentionPolicy.numberOfMostRecentBackups", 0, "INVALID_RETENTION_POLICY"),
    ("backupSchedules.0.retentionPolicy.numberOfMostRecentBackups", 601, "INVALID_RETENTION_POLICY"),
    ("backupSchedules.0.retentionPolicy.numberOfDaysOfHourlyBackups", 15, "INVALID_RETENTION_POLICY"),
    ("backupSchedules.0.retentionPolicy.numberOfDaysOfDailyBackups", 31, "INVALID_RETENTION_POLICY"),
    ("backupSchedules.0.takeScheduledBackups", False, "STATE_CHANGE_BACKUP_REQUIRES_SCHEDULE"),
    ("encryption.passphrase", "short1!A", "PASSPHRASE_POLICY_VIOLATION"),
    ("encryption.passphrase", "alllowercaseletters", "PASSPHRASE_POLICY_VIOLATION"),
    ("backupLocations.0.port", "twenty-two", "INVALID_INPUT"),
    ("backupSchedules", {"not": "a list"}, "INVALID_INPUT"),
]


@pytest.mark.parametrize(("path", "value", "code"), RULES, ids=[f"{p}={v!r}" for p, v, _ in RULES])
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_each_rule_is_a_400_vcf_error(
    api: Api, admin_token: str, method: str, path: str, value: Any, code: str
) -> None:
    r = api.request(method, "/v1/system/backup-configuration", admin_token, json=with_change(path, value))
    assert_vcf_error(r, 400, code)
    assert PASSPHRASE not in r.text and PASSWORD not in r.text


def test_every_broken_rule_is_listed_as_a_nested_error(api: Api, admin_token: str) -> None:
    spec = with_change("backupLocations.0.port", 0)
    spec["backupSchedules"][0]["frequency"] = "DAILY"
    spec["encryption"]["passphrase"] = "weak"
    r = api.request("PUT", "/v1/system/backup-configuration", admin_token, json=spec)
    body = assert_vcf_error(r, 400, "INVALID_PORT")
    codes = {n["errorCode"] for n in body["nestedErrors"]}
    assert codes == {"INVALID_PORT", "INVALID_FREQUENCY", "PASSPHRASE_POLICY_VIOLATION"}
    assert all(n["context"]["field"] for n in body["nestedErrors"])


def test_malformed_json_body_is_400_not_422(api: Api, admin_token: str) -> None:
    r = api.request(
        "PATCH",
        "/v1/system/backup-configuration",
        admin_token,
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert_vcf_error(r, 400, "INVALID_INPUT")


def test_lenient_forms_from_old_documentation_are_accepted(
    api: Api, admin_token: str, sftp_server: SshServer
) -> None:
    spec = sftp_spec(sftp_server)
    schedule = spec["backupSchedules"][0]
    schedule["takeScheduledBackups"] = "True"
    schedule["retentionPolicy"]["numberOfMostRecentBackups"] = "20"
    spec["backupLocations"][0]["port"] = str(sftp_server.port)
    task = apply(api, admin_token, "PUT", spec)
    assert task["status"] == "SUCCESSFUL", task
    got = api.request("GET", "/v1/system/backup-configuration", admin_token).json()
    assert got["backupLocations"][0]["port"] == sftp_server.port
    assert got["backupSchedules"][0]["retentionPolicy"]["numberOfMostRecentBackups"] == 20


def test_get_masks_secrets_and_reports_configured(api: Api, admin_token: str, sftp_server: SshServer) -> None:
    task = apply(api, admin_token, "PUT", sftp_spec(sftp_server))
    assert task["status"] == "SUCCESSFUL"
    r = api.request("GET", "/v1/system/backup-configuration", admin_token)
    assert r.status_code == 200
    assert sftp_server.password not in r.text and PASSPHRASE not in r.text
    got = r.json()
    assert got["isConfigured"] is True
    assert got["backupLocations"][0]["password"] == "**********"
    assert got["encryption"]["passphrase"] == "**********"
    expected = copy.deepcopy(sftp_spec(sftp_server)["backupLocations"][0])
    expected["password"] = "**********"
    assert got["backupLocations"][0] == expected
    assert got["backupSchedules"] == sftp_spec(sftp_server)["backupSchedules"]


def test_secrets_are_encrypted_at_rest(api: Api, admin_token: str, sftp_server: SshServer) -> None:
    apply(api, admin_token, "PUT", sftp_spec(sftp_server))
    data_dir: Path = api.server.data_dir
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert sftp_server.password.encode() not in content, path
            assert PASSPHRASE.encode() not in content, path
    assert (data_dir / "secret.key").stat().st_mode & 0o777 == 0o600


def test_the_masked_values_sent_back_keep_the_stored_secrets(
    api: Api, admin_token: str, sftp_server: SshServer
) -> None:
    apply(api, admin_token, "PUT", sftp_spec(sftp_server))
    got = api.request("GET", "/v1/system/backup-configuration", admin_token).json()
    got.pop("isConfigured")
    got["backupSchedules"][0]["hourOfDay"] = 5
    task = apply(api, admin_token, "PATCH", got)
    assert task["status"] == "SUCCESSFUL", task
    again = api.request("GET", "/v1/system/backup-configuration", admin_token).json()
    assert again["isConfigured"] is True
    assert again["backupSchedules"][0]["hourOfDay"] == 5


def test_partial_patch_changes_only_what_it_names(api: Api, admin_token: str, sftp_server: SshServer) -> None:
    apply(api, admin_token, "PUT", sftp_spec(sftp_server))
    schedule = {"resourceType": "SDDC_MANAGER", "frequency": "HOURLY", "minuteOfHour": 15}
    task = apply(api, admin_token, "PATCH", {"backupSchedules": [schedule]})
    assert task["status"] == "SUCCESSFUL"
    got = api.request("GET", "/v1/system/backup-configuration", admin_token).json()
    assert got["backupLocations"][0]["server"] == sftp_server.host
    assert got["isConfigured"] is True
    assert got["backupSchedules"][0]["frequency"] == "HOURLY"
    assert got["backupSchedules"][0]["takeScheduledBackups"] is False


def test_enabling_schedules_without_a_policy_applies_the_default_retention(
    api: Api, admin_token: str, sftp_server: SshServer
) -> None:
    spec = with_change("backupSchedules.0.retentionPolicy", ..., sftp_server)
    apply(api, admin_token, "PUT", spec)
    got = api.request("GET", "/v1/system/backup-configuration", admin_token).json()
    assert got["backupSchedules"][0]["retentionPolicy"] == {
        "numberOfMostRecentBackups": 10,
        "numberOfDaysOfHourlyBackups": 2,
        "numberOfDaysOfDailyBackups": 15,
    }


def test_put_without_location_clears_it_but_keeps_the_passphrase(
    api: Api, admin_token: str, sftp_server: SshServer
) -> None:
    apply(api, admin_token, "PUT", sftp_spec(sftp_server))
    apply(api, admin_token, "PUT", {"backupSchedules": sftp_spec(sftp_server)["backupSchedules"]})
    got = api.request("GET", "/v1/system/backup-configuration", admin_token).json()
    assert got["backupLocations"] == []
    assert got["encryption"]["passphrase"] == "**********"
    assert got["isConfigured"] is False


def test_local_location_needs_only_a_writable_directory(api: Api, admin_token: str, tmp_path: Path) -> None:
    spec = {"backupLocations": [{"protocol": "LOCAL", "directoryPath": str(tmp_path)}]}
    task = apply(api, admin_token, "PATCH", spec)
    assert task["status"] == "SUCCESSFUL", task
    assert list(tmp_path.iterdir()) == []  # the write probe is gone
    got = api.request("GET", "/v1/system/backup-configuration", admin_token).json()
    assert got["backupLocations"] == [{"protocol": "LOCAL", "directoryPath": str(tmp_path)}]


def test_local_location_with_sftp_fields_is_refused(api: Api, admin_token: str, tmp_path: Path) -> None:
    spec = {"backupLocations": [{"protocol": "LOCAL", "directoryPath": str(tmp_path), "server": "x"}]}
    r = api.request("PATCH", "/v1/system/backup-configuration", admin_token, json=spec)
    assert_vcf_error(r, 400, "UNSUPPORTED_FIELD_FOR_PROTOCOL")


@pytest.mark.parametrize(
    ("make_dir", "code"),
    [
        (lambda base: base / "missing", "BACKUP_DIRECTORY_NOT_FOUND"),
        (lambda base: base / "a-file", "BACKUP_DIRECTORY_NOT_FOUND"),
    ],
    ids=["missing", "not-a-directory"],
)
def test_unusable_local_directory_fails_the_task_and_saves_nothing(
    api: Api, admin_token: str, tmp_path: Path, make_dir: Any, code: str, sftp_server: SshServer
) -> None:
    (tmp_path / "a-file").write_text("x")
    apply(api, admin_token, "PUT", sftp_spec(sftp_server))
    spec = {"backupLocations": [{"protocol": "LOCAL", "directoryPath": str(make_dir(tmp_path))}]}
    task = apply(api, admin_token, "PATCH", spec)
    assert task["status"] == "FAILED"
    assert task["errors"][0]["errorCode"] == code
    assert task["errors"][0]["remediationMessage"]
    assert task["subTasks"][0]["status"] == "FAILED"
    assert task["subTasks"][1]["status"] == "PENDING"
    assert task["isRetryable"] is True
    got = api.request("GET", "/v1/system/backup-configuration", admin_token).json()
    assert got["backupLocations"][0]["protocol"] == "SFTP"  # the old configuration stands


def test_read_only_local_directory_fails_the_task(api: Api, admin_token: str, tmp_path: Path) -> None:
    # The service runs as root, which ignores permission bits: a read-only filesystem it is.
    with tmpfs(tmp_path / "ro", read_only=True) as read_only:
        spec = {"backupLocations": [{"protocol": "LOCAL", "directoryPath": str(read_only)}]}
        task = apply(api, admin_token, "PATCH", spec)
    assert task["status"] == "FAILED"
    assert task["errors"][0]["errorCode"] == "BACKUP_DIRECTORY_NOT_WRITABLE"


def test_configuration_task_is_listed_and_not_cancellable(
    api: Api, admin_token: str, sftp_server: SshServer
) -> None:
    task = apply(api, admin_token, "PUT", sftp_spec(sftp_server))
    assert task["type"] == "CONFIGURE_BACKUP"
    assert [s["name"] for s in task["subTasks"]] == ["Validate backup location", "Save backup configuration"]
    assert all(s["status"] == "SUCCESSFUL" for s in task["subTasks"])
    r = api.request("DELETE", f"/v1/tasks/{task['id']}", admin_token)
    assert_vcf_error(r, 409, "TASK_NOT_CANCELLABLE")
    r = api.request("PATCH", f"/v1/tasks/{task['id']}", admin_token)
    assert_vcf_error(r, 409, "TASK_NOT_RETRYABLE")


def test_partial_patches_sent_together_both_land(
    api: Api, admin_token: str, tmp_path: Path, sftp_server: SshServer
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    apply(api, admin_token, "PUT", sftp_spec(sftp_server))
    schedule = {"resourceType": "SDDC_MANAGER", "frequency": "HOURLY", "minuteOfHour": 42}
    bodies = [
        {"backupSchedules": [schedule]},
        {"backupLocations": [{"protocol": "LOCAL", "directoryPath": str(tmp_path)}]},
    ]
    with ThreadPoolExecutor(2) as pool:
        responses = list(
            pool.map(
                lambda b: api.request("PATCH", "/v1/system/backup-configuration", admin_token, json=b), bodies
            )
        )
    for r in responses:
        assert r.status_code == 202
        assert api.wait_task(r.json()["id"], admin_token)["status"] == "SUCCESSFUL"
    got = api.request("GET", "/v1/system/backup-configuration", admin_token).json()
    assert got["backupSchedules"][0]["minuteOfHour"] == 42
    assert got["backupLocations"][0]["directoryPath"] == str(tmp_path)
    assert got["encryption"]["passphrase"] == "**********"
