"""The official VMware SDK (``vmware-sddc-manager``) against the real server process.

The SDK is driven as /work/shared/reference/official-sdk-client.md describes: a requests session with
``trust_env`` off and the server's certificate pinned, the REST protocol, and a stub configuration built
by hand. ``Task`` and ``Error`` cannot ``to_dict()`` (a recursive type), so ``plain`` walks their fields.
The ``server`` fixture is shared and parametrized over both state stores, so each test first PUTs the
complete configuration it depends on.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from vmware.sddc_manager import model_client as m
from vmware.sddc_manager.v1.system_client import BackupConfiguration
from vmware.sddc_manager.v1.tokens.access_token_client import Refresh
from vmware.sddc_manager.v1_client import Tasks, Tokens
from vmware.vapi.bindings.struct import VapiStruct
from vmware.vapi.lib.connect import get_requests_connector
from vmware.vapi.security.client.security_context_filter import SecurityContextFilter
from vmware.vapi.security.oauth import create_oauth_security_context
from vmware.vapi.stdlib.client.factories import StubConfigurationFactory

from sddc_backup.app.tls import ensure_certificate
from tests.support.server import ADMIN, ADMIN_PASSWORD, ServerProcess
from tests.support.sshd import SshServer

PASSPHRASE = "VMw@re1!VMw@re1!"
MASK = "**********"
TERMINAL = {"SUCCESSFUL", "FAILED", "CANCELLED"}


# -- helpers ------------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A binding value as plain data with camelCase keys; works on ``Task`` and ``Error`` too."""
    if isinstance(value, VapiStruct):
        names = value._canonical_to_pep_names  # private, but to_dict() recurses forever
        return {wire: plain(getattr(value, pep, None)) for wire, pep in names.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def fingerprint() -> str:
    return "SHA256:" + base64.b64encode(os.urandom(32)).decode().rstrip("=")


class Sdk:
    """Stub configurations for one server, all sharing one pinned requests session."""

    def __init__(self, server: ServerProcess, verify: str | Path | None = None) -> None:
        self.url = server.base_url
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify= otherwise
        self.session.verify = str(verify or server.cert)

    def connector(self, token: str | None = None, filters: list[Any] | None = None) -> Any:
        conn = get_requests_connector(
            session=self.session, msg_protocol="rest", url=self.url, timeout=30, provider_filter_chain=filters
        )
        if token is not None:
            conn.set_security_context(create_oauth_security_context(token))
        return conn

    def config(self, token: str | None = None) -> Any:
        return StubConfigurationFactory.new_std_configuration(self.connector(token))

    def recording_config(self, token: str) -> Any:
        """A configuration whose ``response_extractor`` tells the HTTP status of the last call."""
        return StubConfigurationFactory.new_runtime_configuration(
            self.connector(token), response_extractor=True
        )

    def login(self) -> m.TokenPair:
        return Tokens(self.config()).create_token(
            m.TokenCreationSpec(username=ADMIN, password=ADMIN_PASSWORD)
        )


def wait_task(cfg: Any, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Follow the task with ``Tasks.get_task`` until it ends; returns it as plain data."""
    deadline = time.monotonic() + timeout
    while True:
        task: dict[str, Any] = plain(Tasks(cfg).get_task(task_id))
        if task["status"] in TERMINAL:
            return task
        assert time.monotonic() < deadline, f"task {task_id} still {task['status']}"
        time.sleep(0.05)


def weekly_schedule(**overrides: Any) -> m.BackupSchedule:
    fields: dict[str, Any] = dict(
        resource_type="SDDC_MANAGER",
        take_scheduled_backups=True,
        frequency="WEEKLY",
        days_of_week=["MONDAY", "THURSDAY"],
        hour_of_day=2,
        minute_of_hour=30,
        take_backup_on_state_change=False,
        retention_policy=m.BackupRetentionPolicy(
            number_of_most_recent_backups=7,
            number_of_days_of_hourly_backups=3,
            number_of_days_of_daily_backups=20,
        ),
    )
    fields.update(overrides)
    return m.BackupSchedule(**fields)


def sftp_location(sftp: SshServer, ssh_fingerprint: str | None = None) -> m.BackupLocation:
    """The real test SFTP server, pinned to its ECDSA key unless another fingerprint is given."""
    return m.BackupLocation(
        server=sftp.host,
        port=sftp.port,
        protocol="SFTP",
        username=sftp.user,
        password=sftp.password,
        directory_path=str(sftp.directory),
        ssh_fingerprint=ssh_fingerprint or sftp.fingerprints["ecdsa"],
    )


def full_spec(
    location: m.BackupLocation, schedule: m.BackupSchedule | None = None
) -> m.BackupConfigurationSpec:
    return m.BackupConfigurationSpec(
        backup_locations=[location],
        backup_schedules=[schedule or weekly_schedule()],
        encryption=m.Encryption(passphrase=PASSPHRASE),
    )


def put_and_wait(cfg: Any, spec: m.BackupConfigurationSpec) -> dict[str, Any]:
    task = plain(BackupConfiguration(cfg).set_backup_configuration(spec))
    assert task["type"] == "CONFIGURE_BACKUP", task
    done = wait_task(cfg, task["id"])
    assert done["status"] == "SUCCESSFUL", done
    return done


def location_dict(location: m.BackupLocation) -> dict[str, Any]:
    return {k: v for k, v in location.to_dict().items() if k != "password"}


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def sdk(server: ServerProcess) -> Sdk:
    return Sdk(server)


@pytest.fixture
def admin_cfg(sdk: Sdk) -> Any:
    return sdk.config(sdk.login().access_token)


# -- tests --------------------------------------------------------------------------------------------


def test_sdk_puts_sftp_configuration_and_reads_it_back_with_secrets_masked(
    sdk: Sdk, sftp_server: SshServer
) -> None:
    pair = sdk.login()  # over TLS with the server's own certificate pinned
    assert pair.access_token and pair.refresh_token.id
    cfg = sdk.recording_config(pair.access_token)
    location = sftp_location(sftp_server)
    spec = full_spec(location)

    put_and_wait(cfg, spec)
    got = BackupConfiguration(cfg).get_backup_configuration()
    body = cfg.response_extractor.get_http_body()

    assert got.is_configured is True
    assert len(got.backup_locations) == 1
    assert location_dict(got.backup_locations[0]) == location_dict(location)
    assert [s.to_dict() for s in got.backup_schedules] == [weekly_schedule().to_dict()]
    assert got.backup_locations[0].password == MASK
    assert got.encryption.passphrase == MASK
    assert MASK in str(body), body  # the raw body, not just the parsed model, never has the clear values
    assert sftp_server.password not in str(body) and PASSPHRASE not in str(body)


def test_sdk_patch_of_schedules_only_keeps_location_and_passphrase(sdk: Sdk, sftp_server: SshServer) -> None:
    cfg = sdk.recording_config(sdk.login().access_token)
    client = BackupConfiguration(cfg)
    location = sftp_location(sftp_server)

    put = plain(client.set_backup_configuration(full_spec(location)))
    assert cfg.response_extractor.get_http_status() == 200
    assert wait_task(cfg, put["id"])["status"] == "SUCCESSFUL"

    hourly = m.BackupSchedule(
        resource_type="SDDC_MANAGER", frequency="HOURLY", minute_of_hour=15, take_scheduled_backups=True
    )
    patch = plain(client.update_backup_configuration(m.BackupConfigurationSpec(backup_schedules=[hourly])))
    assert cfg.response_extractor.get_http_status() == 202
    assert patch["type"] == "CONFIGURE_BACKUP", patch
    assert wait_task(cfg, patch["id"])["status"] == "SUCCESSFUL"

    got = client.get_backup_configuration()
    assert got.is_configured is True
    assert [location_dict(loc) for loc in got.backup_locations] == [location_dict(location)]
    assert got.backup_locations[0].password == MASK
    assert got.encryption.passphrase == MASK
    (schedule,) = got.backup_schedules
    assert (schedule.frequency, schedule.minute_of_hour) == ("HOURLY", 15)
    assert schedule.take_scheduled_backups is True


def test_sdk_sets_local_directory_location(admin_cfg: Any, tmp_path: Path) -> None:
    location = m.BackupLocation(protocol="LOCAL", directory_path=str(tmp_path))

    put_and_wait(admin_cfg, full_spec(location))

    got = BackupConfiguration(admin_cfg).get_backup_configuration()
    assert got.is_configured is True
    (stored,) = got.backup_locations
    assert (stored.protocol, stored.directory_path) == ("LOCAL", str(tmp_path))
    assert (stored.server, stored.port, stored.username, stored.password) == (None, None, None, None)
    assert got.encryption.passphrase == MASK


@pytest.mark.parametrize(
    ("schedule", "code"),
    [
        (weekly_schedule(frequency="DAILY"), "INVALID_FREQUENCY"),
        (
            weekly_schedule(take_backup_on_state_change=True, take_scheduled_backups=False),
            "STATE_CHANGE_BACKUP_REQUIRES_SCHEDULE",
        ),
    ],
    ids=["daily-frequency", "state-change-without-schedule"],
)
def test_sdk_invalid_spec_raises_error_400_and_changes_nothing(
    admin_cfg: Any, schedule: m.BackupSchedule, code: str, sftp_server: SshServer
) -> None:
    location = sftp_location(sftp_server)
    put_and_wait(admin_cfg, full_spec(location))
    client = BackupConfiguration(admin_cfg)

    with pytest.raises(m.Error) as caught:
        client.set_backup_configuration(full_spec(sftp_location(sftp_server), schedule))

    error = caught.value
    assert error.get_status_code() == 400, plain(error)
    assert error.error_code == code, plain(error)
    assert error.message and error.remediation_message, plain(error)
    assert location_dict(client.get_backup_configuration().backup_locations[0]) == location_dict(location)


def test_sdk_refuses_server_when_pinned_to_another_certificate(server: ServerProcess, tmp_path: Path) -> None:
    wrong = Sdk(server, verify=ensure_certificate(tmp_path, ["127.0.0.1"]).cert)  # a certificate of its own

    with pytest.raises(requests.exceptions.SSLError, match=r"(?i)certificate verify failed"):
        wrong.login()


class RefreshingFilter(SecurityContextFilter):
    """Token refresh as in Broadcom's samples: on Unauthorized/Unauthenticated, refresh and retry once."""

    def __init__(self, sdk: Sdk, access_token: str, refresh_id: str) -> None:
        super().__init__()
        self.sdk = sdk
        self.access_token = access_token
        self.refresh_id = refresh_id
        self.refreshes = 0

    def get_max_retries(self) -> int:
        return 1

    def should_retry(self, error_value: Any) -> bool:
        return bool(error_value.get_field("errorCode").value in ("Unauthorized", "Unauthenticated"))

    def get_security_context(self, on_error: bool) -> Any:
        if on_error:
            self.access_token = Refresh(self.sdk.config()).refresh_access_token(self.refresh_id)
            self.refreshes += 1
        return create_oauth_security_context(self.access_token)


def test_sdk_security_context_filter_refreshes_an_expired_access_token(sdk: Sdk, tmp_path: Path) -> None:
    pair = sdk.login()
    put_and_wait(
        sdk.config(pair.access_token),
        full_spec(m.BackupLocation(protocol="LOCAL", directory_path=str(tmp_path))),
    )
    refreshing = RefreshingFilter(sdk, access_token="expired", refresh_id=pair.refresh_token.id)
    cfg = StubConfigurationFactory.new_std_configuration(sdk.connector(filters=[refreshing]))

    got = BackupConfiguration(cfg).get_backup_configuration()

    assert got.is_configured is True
    assert refreshing.refreshes == 1
    assert refreshing.access_token != "expired"
    BackupConfiguration(cfg).get_backup_configuration()  # the refreshed token serves later calls as is
    assert refreshing.refreshes == 1


def test_sdk_configuration_with_a_wrong_fingerprint_fails_and_saves_nothing(
    admin_cfg: Any, sftp_server: SshServer
) -> None:
    good = sftp_location(sftp_server)
    put_and_wait(admin_cfg, full_spec(good))
    client = BackupConfiguration(admin_cfg)
    wrong = sftp_location(sftp_server, ssh_fingerprint=fingerprint())
    task = plain(client.set_backup_configuration(full_spec(wrong)))
    done = wait_task(admin_cfg, task["id"])
    assert done["status"] == "FAILED", done
    assert done["errors"][0]["errorCode"] == "SSH_FINGERPRINT_MISMATCH"
    assert sftp_server.fingerprints["ecdsa"] in done["errors"][0]["message"]  # what the server offers
    assert done["errors"][0]["remediationMessage"]
    stored = client.get_backup_configuration().backup_locations[0]
    assert stored.ssh_fingerprint == good.ssh_fingerprint
