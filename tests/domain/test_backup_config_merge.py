"""How a PATCH or PUT spec is merged with the stored configuration, and how secrets survive it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sddc_backup.domain.backup_config import (
    SECRET_MASK,
    BackupConfiguration,
    BackupLocation,
    BackupSchedule,
    ConfigurationSpec,
    Frequency,
    LocationProtocol,
)
from sddc_backup.domain.config_rules import directory_path_problem
from sddc_backup.domain.errors import ConfigurationRuleError
from sddc_backup.domain.passphrase import PassphrasePolicy

from .config_specs import GOOD_FINGERPRINT, GOOD_PASSPHRASE, hourly, local, resolve, sftp, spec, weekly

STORED_LOCATION = BackupLocation(
    protocol=LocationProtocol.SFTP,
    directory_path="/backups/vcf",
    server="backup.example.com",
    port=22,
    username="svc-backup",
    password="Stored-sftp-pass-1",
)
STORED_SCHEDULE = BackupSchedule(
    frequency=Frequency.HOURLY,
    take_scheduled_backups=True,
    take_backup_on_state_change=False,
    minute_of_hour=5,
)
STORED_PASSPHRASE = "Stored-Passphrase-42"
STORED = BackupConfiguration(location=STORED_LOCATION, schedule=STORED_SCHEDULE, passphrase=STORED_PASSPHRASE)


def test_patch_with_nothing_keeps_the_whole_stored_configuration() -> None:
    assert resolve(ConfigurationSpec(), STORED, partial=True) == STORED


def test_patch_of_the_schedule_keeps_the_location_and_the_passphrase() -> None:
    resolved = resolve(spec(schedules=(weekly(),)), STORED, partial=True)
    assert resolved.location == STORED_LOCATION
    assert resolved.passphrase == STORED_PASSPHRASE
    assert resolved.schedule is not None
    assert resolved.schedule.frequency is Frequency.WEEKLY


def test_patch_of_the_location_keeps_the_schedule_and_the_passphrase() -> None:
    resolved = resolve(spec(local()), STORED, partial=True)
    assert resolved.location == BackupLocation(protocol=LocationProtocol.LOCAL, directory_path="/var/backups")
    assert resolved.schedule == STORED_SCHEDULE
    assert resolved.passphrase == STORED_PASSPHRASE


def test_patch_of_the_passphrase_keeps_the_location_and_the_schedule() -> None:
    resolved = resolve(spec(passphrase=GOOD_PASSPHRASE), STORED, partial=True)
    assert resolved == BackupConfiguration(STORED_LOCATION, STORED_SCHEDULE, GOOD_PASSPHRASE)


@pytest.mark.parametrize("partial", [pytest.param(True, id="patch"), pytest.param(False, id="put")])
def test_empty_lists_remove_the_location_and_the_schedule(partial: bool) -> None:
    resolved = resolve(ConfigurationSpec(locations=(), schedules=()), STORED, partial=partial)
    assert resolved.location is None
    assert resolved.schedule is None
    assert resolved.passphrase == STORED_PASSPHRASE


def test_put_without_location_and_schedule_resets_both_but_keeps_the_passphrase() -> None:
    resolved = resolve(ConfigurationSpec(), STORED, partial=False)
    assert resolved == BackupConfiguration(location=None, schedule=None, passphrase=STORED_PASSPHRASE)


def test_put_of_the_location_alone_resets_the_schedule() -> None:
    resolved = resolve(spec(local()), STORED, partial=False)
    assert resolved.location is not None
    assert resolved.location.protocol is LocationProtocol.LOCAL
    assert resolved.schedule is None
    assert resolved.passphrase == STORED_PASSPHRASE


def test_put_of_the_schedule_alone_resets_the_location() -> None:
    resolved = resolve(spec(schedules=(hourly(),)), STORED, partial=False)
    assert resolved.location is None
    assert resolved.schedule is not None
    assert resolved.passphrase == STORED_PASSPHRASE


@pytest.mark.parametrize("partial", [pytest.param(True, id="patch"), pytest.param(False, id="put")])
def test_the_mask_as_passphrase_keeps_the_stored_passphrase(partial: bool) -> None:
    resolved = resolve(spec(passphrase=SECRET_MASK), STORED, partial=partial)
    assert resolved.passphrase == STORED_PASSPHRASE


@pytest.mark.parametrize("partial", [pytest.param(True, id="patch"), pytest.param(False, id="put")])
def test_the_mask_as_passphrase_with_none_stored_is_refused(partial: bool) -> None:
    with pytest.raises(ConfigurationRuleError) as caught:
        resolve(spec(local(), passphrase=SECRET_MASK), BackupConfiguration(), partial=partial)
    assert caught.value.error_code == "PASSPHRASE_NOT_SET"
    assert [e.error_code for e in caught.value.nested] == ["PASSPHRASE_NOT_SET"]
    assert caught.value.context == {"field": "encryption.passphrase"}


def test_a_new_passphrase_replaces_the_stored_one() -> None:
    assert resolve(spec(passphrase=GOOD_PASSPHRASE), STORED).passphrase == GOOD_PASSPHRASE


def test_a_stored_passphrase_is_not_checked_again_against_a_stricter_policy() -> None:
    strict = PassphrasePolicy(min_length=64)
    resolved = resolve(spec(passphrase=SECRET_MASK), STORED, policy=strict)
    assert resolved.passphrase == STORED_PASSPHRASE


@pytest.mark.parametrize("partial", [pytest.param(True, id="patch"), pytest.param(False, id="put")])
@pytest.mark.parametrize(
    "sent_password", [pytest.param(None, id="omitted"), pytest.param(SECRET_MASK, id="mask")]
)
def test_the_stored_password_is_kept_for_the_same_server_port_and_user(
    partial: bool, sent_password: str | None
) -> None:
    sent = sftp(password=sent_password, directory_path="/elsewhere", ssh_fingerprint=GOOD_FINGERPRINT)
    resolved = resolve(spec(sent), STORED, partial=partial)
    assert resolved.location is not None
    assert resolved.location.password == "Stored-sftp-pass-1"
    assert resolved.location.directory_path == "/elsewhere"
    assert resolved.location.ssh_fingerprint == GOOD_FINGERPRINT


def test_a_new_password_replaces_the_stored_one() -> None:
    resolved = resolve(spec(sftp(password="Brand-new-pass-2")), STORED)
    assert resolved.location is not None
    assert resolved.location.password == "Brand-new-pass-2"


OTHER_TARGETS = [
    pytest.param({"server": "other.example.com"}, id="other-server"),
    pytest.param({"port": 2222}, id="other-port"),
    pytest.param({"username": "someone-else"}, id="other-username"),
]


@pytest.mark.parametrize("change", OTHER_TARGETS)
def test_an_omitted_password_is_dropped_when_the_target_changes(change: dict[str, object]) -> None:
    resolved = resolve(spec(sftp(password=None, **change)), STORED)
    assert resolved.location is not None
    assert resolved.location.password is None


@pytest.mark.parametrize("change", OTHER_TARGETS)
def test_the_mask_as_password_for_another_target_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(ConfigurationRuleError) as caught:
        resolve(spec(sftp(password=SECRET_MASK, **change)), STORED)
    assert caught.value.error_code == "PASSWORD_NOT_SET"
    assert caught.value.context == {"field": "backupLocations[0].password"}
    assert "Stored-sftp-pass-1" not in str(caught.value)


def test_an_omitted_password_is_dropped_when_the_stored_location_was_local() -> None:
    stored = BackupConfiguration(location=BackupLocation(LocationProtocol.LOCAL, "/var/backups"))
    resolved = resolve(spec(sftp(password=None)), stored)
    assert resolved.location is not None
    assert resolved.location.password is None


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(BackupConfiguration(), id="nothing-stored"),
        pytest.param(
            BackupConfiguration(location=BackupLocation(LocationProtocol.LOCAL, "/var/backups")), id="local"
        ),
        pytest.param(
            BackupConfiguration(location=replace(STORED_LOCATION, password=None)),
            id="same-target-without-password",
        ),
    ],
)
def test_the_mask_as_password_with_no_stored_password_is_refused(stored: BackupConfiguration) -> None:
    with pytest.raises(ConfigurationRuleError) as caught:
        resolve(spec(sftp(password=SECRET_MASK)), stored)
    assert [e.error_code for e in caught.value.nested] == ["PASSWORD_NOT_SET"]


def test_switching_to_local_leaves_no_password_behind() -> None:
    resolved = resolve(spec(local()), STORED)
    assert resolved.location is not None
    assert resolved.location.password is None


@pytest.mark.parametrize(
    ("other", "same"),
    [
        pytest.param(STORED_LOCATION, True, id="identical"),
        pytest.param(replace(STORED_LOCATION, directory_path="/x"), True, id="other-dir"),
        pytest.param(replace(STORED_LOCATION, password="p"), True, id="other-password"),
        pytest.param(
            replace(STORED_LOCATION, ssh_fingerprint=GOOD_FINGERPRINT),
            True,
            id="other-fingerprint",
        ),
        pytest.param(replace(STORED_LOCATION, server="h2"), False, id="other-server"),
        pytest.param(replace(STORED_LOCATION, port=2022), False, id="other-port"),
        pytest.param(replace(STORED_LOCATION, username="u2"), False, id="other-user"),
        pytest.param(
            replace(STORED_LOCATION, protocol=LocationProtocol.LOCAL),
            False,
            id="other-protocol",
        ),
    ],
)
def test_same_target_compares_protocol_server_port_and_username_only(
    other: BackupLocation, same: bool
) -> None:
    assert STORED_LOCATION.same_target(other) is same
    assert other.same_target(STORED_LOCATION) is same


@pytest.mark.parametrize(
    ("config", "configured"),
    [
        pytest.param(STORED, True, id="location-and-passphrase"),
        pytest.param(BackupConfiguration(location=STORED_LOCATION), False, id="location-only"),
        pytest.param(BackupConfiguration(passphrase=STORED_PASSPHRASE), False, id="passphrase-only"),
        pytest.param(BackupConfiguration(schedule=STORED_SCHEDULE), False, id="schedule-only"),
        pytest.param(BackupConfiguration(), False, id="nothing"),
    ],
)
def test_is_configured_needs_both_a_location_and_a_passphrase(
    config: BackupConfiguration, configured: bool
) -> None:
    assert config.is_configured is configured


def test_a_first_configuration_becomes_configured_once_resolved() -> None:
    resolved = resolve(spec(local(), passphrase=GOOD_PASSPHRASE), BackupConfiguration(), partial=False)
    assert resolved.is_configured


@pytest.mark.parametrize(
    "path", ["/", "/backups", "/backups/vcf/", "/backups/..old", "/backups/.hidden/./x", "//double"]
)
def test_directory_path_problem_accepts_absolute_paths_without_dotdot_segments(path: str) -> None:
    assert directory_path_problem(path) is None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        pytest.param("backups", "not an absolute path", id="relative"),
        pytest.param("", "not an absolute path", id="empty"),
        pytest.param("./backups", "not an absolute path", id="dot-relative"),
        pytest.param("/backups/../etc", "'..' segment", id="dotdot-middle"),
        pytest.param("/..", "'..' segment", id="dotdot-root"),
        pytest.param("/backups/..", "'..' segment", id="dotdot-end"),
        pytest.param("/back\x00ups", "NUL byte", id="nul"),
        pytest.param("relative\x00", "NUL byte", id="nul-before-relative"),
    ],
)
def test_directory_path_problem_explains_why_a_path_is_refused(path: str, reason: str) -> None:
    problem = directory_path_problem(path)
    assert problem is not None
    assert reason in problem
    assert "\x00" not in problem
