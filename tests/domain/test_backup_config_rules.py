"""Every validation rule of ``resolve_configuration``, one table row per rule, with its stable code."""

from __future__ import annotations

from typing import Any

import pytest

from sddc_backup.domain.backup_config import (
    DEFAULT_RETENTION,
    BackupConfiguration,
    ConfigurationSpec,
    Frequency,
    LocationProtocol,
    RetentionPolicy,
    ScheduleSpec,
)
from sddc_backup.domain.errors import ConfigurationRuleError, InvalidInputError

from .config_specs import (
    GOOD_FINGERPRINT,
    GOOD_PASSPHRASE,
    hourly,
    local,
    resolve,
    retention,
    sftp,
    spec,
    weekly,
)

LOC = "backupLocations[0]"
SCH = "backupSchedules[0]"
RET = f"{SCH}.retentionPolicy"
SFTP_FINGERPRINT = f"{LOC}.sshFingerprint"


def bad_sftp(name: str, code: str, field: str, **changes: Any) -> Any:
    return pytest.param(spec(sftp(**changes)), code, f"{LOC}.{field}", id=name)


def bad_local(name: str, **changes: Any) -> Any:
    return pytest.param(spec(local(**changes)), "UNSUPPORTED_FIELD_FOR_PROTOCOL", LOC, id=name)


def bad_schedule(name: str, code: str, field: str, schedule: ScheduleSpec) -> Any:
    return pytest.param(spec(schedules=(schedule,)), code, f"{SCH}.{field}", id=name)


def bad_retention(name: str, code: str, field: str, **changes: Any) -> Any:
    schedule = hourly(retention=retention(**changes))
    return pytest.param(spec(schedules=(schedule,)), code, f"{RET}.{field}", id=name)


MISSING = "MISSING_REQUIRED_FIELD"
BAD_PATH = "INVALID_DIRECTORY_PATH"
BAD_PRINT = "INVALID_SSH_FINGERPRINT"
BAD_RETENTION = "INVALID_RETENTION_POLICY"
RECENT = "numberOfMostRecentBackups"
HOURLY_DAYS = "numberOfDaysOfHourlyBackups"
DAILY_DAYS = "numberOfDaysOfDailyBackups"

REFUSED = [
    bad_sftp("protocol-missing", MISSING, "protocol", protocol=None),
    bad_sftp("protocol-unknown", "INVALID_PROTOCOL", "protocol", protocol="FTP"),
    bad_sftp("protocol-lower-case", "INVALID_PROTOCOL", "protocol", protocol="sftp"),
    bad_sftp("sftp-server-missing", MISSING, "server", server=None),
    bad_sftp("sftp-server-empty", MISSING, "server", server=""),
    bad_sftp("sftp-username-missing", MISSING, "username", username=None),
    bad_sftp("sftp-port-missing", MISSING, "port", port=None),
    bad_sftp("port-0", "INVALID_PORT", "port", port=0),
    bad_sftp("port-65536", "INVALID_PORT", "port", port=65536),
    bad_sftp("port-negative", "INVALID_PORT", "port", port=-22),
    bad_sftp("directory-missing", MISSING, "directoryPath", directory_path=None),
    bad_sftp("directory-empty", MISSING, "directoryPath", directory_path=""),
    bad_sftp("directory-relative", BAD_PATH, "directoryPath", directory_path="backups/vcf"),
    bad_sftp("directory-dotdot", BAD_PATH, "directoryPath", directory_path="/backups/../etc"),
    bad_sftp("directory-trailing-dotdot", BAD_PATH, "directoryPath", directory_path="/backups/.."),
    bad_sftp("directory-nul", BAD_PATH, "directoryPath", directory_path="/back\x00ups"),
    bad_sftp("fingerprint-md5", BAD_PRINT, "sshFingerprint", ssh_fingerprint="MD5:" + "a" * 43),
    bad_sftp("fingerprint-42-chars", BAD_PRINT, "sshFingerprint", ssh_fingerprint="SHA256:" + "A" * 42),
    bad_sftp("fingerprint-44-chars", BAD_PRINT, "sshFingerprint", ssh_fingerprint="SHA256:" + "A" * 44),
    bad_sftp("fingerprint-padding", BAD_PRINT, "sshFingerprint", ssh_fingerprint="SHA256:" + "A" * 42 + "="),
    bad_sftp(
        "fingerprint-url-safe", BAD_PRINT, "sshFingerprint", ssh_fingerprint="SHA256:" + "-_" * 21 + "A"
    ),
    bad_sftp(
        "fingerprint-trailing-newline", BAD_PRINT, "sshFingerprint", ssh_fingerprint=GOOD_FINGERPRINT + "\n"
    ),
    bad_sftp("fingerprint-lower-prefix", BAD_PRINT, "sshFingerprint", ssh_fingerprint="sha256:" + "A" * 43),
    bad_local("local-with-server", server="backup.example.com"),
    bad_local("local-with-port", port=22),
    bad_local("local-with-username", username="svc-backup"),
    bad_local("local-with-password", password="Sftp-pass-1"),
    bad_local("local-with-fingerprint", ssh_fingerprint=GOOD_FINGERPRINT),
    pytest.param(spec(sftp(), local()), "TOO_MANY_BACKUP_LOCATIONS", "backupLocations", id="two-locations"),
    pytest.param(
        spec(schedules=(hourly(), weekly())),
        "TOO_MANY_BACKUP_SCHEDULES",
        "backupSchedules",
        id="two-schedules",
    ),
    bad_schedule(
        "resource-type-other", "INVALID_RESOURCE_TYPE", "resourceType", hourly(resource_type="VCENTER")
    ),
    bad_schedule(
        "resource-type-lower", "INVALID_RESOURCE_TYPE", "resourceType", hourly(resource_type="sddc_manager")
    ),
    bad_schedule("resource-type-missing", MISSING, "resourceType", hourly(resource_type=None)),
    bad_schedule("frequency-missing", MISSING, "frequency", hourly(frequency=None)),
    bad_schedule("frequency-daily", "INVALID_FREQUENCY", "frequency", hourly(frequency="DAILY")),
    bad_schedule("frequency-lower-case", "INVALID_FREQUENCY", "frequency", hourly(frequency="hourly")),
    bad_schedule(
        "day-unknown", "INVALID_DAY_OF_WEEK", "daysOfWeek", weekly(days_of_week=("MONDAY", "FUNDAY"))
    ),
    bad_schedule("day-lower-case", "INVALID_DAY_OF_WEEK", "daysOfWeek", weekly(days_of_week=("monday",))),
    bad_schedule("day-abbreviated", "INVALID_DAY_OF_WEEK", "daysOfWeek", hourly(days_of_week=("MON",))),
    bad_schedule("weekly-days-missing", MISSING, "daysOfWeek", weekly(days_of_week=None)),
    bad_schedule("weekly-days-empty", MISSING, "daysOfWeek", weekly(days_of_week=())),
    bad_schedule("weekly-hour-missing", MISSING, "hourOfDay", weekly(hour_of_day=None)),
    bad_schedule("hourly-minute-missing", MISSING, "minuteOfHour", hourly(minute_of_hour=None)),
    bad_schedule("weekly-minute-missing", MISSING, "minuteOfHour", weekly(minute_of_hour=None)),
    bad_schedule("hour-24", "INVALID_HOUR_OF_DAY", "hourOfDay", weekly(hour_of_day=24)),
    bad_schedule("hour-negative", "INVALID_HOUR_OF_DAY", "hourOfDay", weekly(hour_of_day=-1)),
    bad_schedule("minute-60", "INVALID_MINUTE_OF_HOUR", "minuteOfHour", hourly(minute_of_hour=60)),
    bad_schedule("minute-negative", "INVALID_MINUTE_OF_HOUR", "minuteOfHour", hourly(minute_of_hour=-1)),
    bad_retention("most-recent-0", BAD_RETENTION, RECENT, most_recent=0),
    bad_retention("most-recent-601", BAD_RETENTION, RECENT, most_recent=601),
    bad_retention("most-recent-missing", MISSING, RECENT, most_recent=None),
    bad_retention("hourly-days-negative", BAD_RETENTION, HOURLY_DAYS, hourly_days=-1),
    bad_retention("hourly-days-15", BAD_RETENTION, HOURLY_DAYS, hourly_days=15),
    bad_retention("daily-days-negative", BAD_RETENTION, DAILY_DAYS, daily_days=-1),
    bad_retention("daily-days-31", BAD_RETENTION, DAILY_DAYS, daily_days=31),
    bad_schedule(
        "state-change-without-schedule",
        "STATE_CHANGE_BACKUP_REQUIRES_SCHEDULE",
        "takeBackupOnStateChange",
        hourly(take_scheduled_backups=False, take_backup_on_state_change=True),
    ),
    pytest.param(
        spec(passphrase="weak"), "PASSPHRASE_POLICY_VIOLATION", "encryption.passphrase", id="passphrase"
    ),
]


@pytest.mark.parametrize(("sent", "code", "field"), REFUSED)
def test_a_spec_breaking_one_rule_is_refused_with_that_rules_code(
    sent: ConfigurationSpec, code: str, field: str
) -> None:
    with pytest.raises(ConfigurationRuleError) as caught:
        resolve(sent)
    error = caught.value
    assert error.error_code == code
    assert [e.error_code for e in error.nested] == [code]
    assert error.context == {"field": field}
    assert error.nested[0].context == {"field": field}
    assert error.http_status == 400


def good_schedule(name: str, schedule: ScheduleSpec) -> Any:
    return pytest.param(spec(schedules=(schedule,)), id=name)


EVERY_DAY = ("SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY")

ACCEPTED = [
    pytest.param(spec(sftp(port=1)), id="port-1"),
    pytest.param(spec(sftp(port=65535)), id="port-65535"),
    pytest.param(spec(local(directory_path="/")), id="directory-root"),
    pytest.param(spec(sftp(directory_path="/backups/vcf/")), id="directory-trailing-slash"),
    pytest.param(spec(sftp(directory_path="/backups/..old/vcf")), id="directory-dotdot-inside-a-name"),
    pytest.param(spec(sftp(directory_path="/backups/./vcf")), id="directory-single-dot"),
    pytest.param(spec(sftp(ssh_fingerprint=GOOD_FINGERPRINT)), id="fingerprint-valid"),
    pytest.param(spec(sftp(password=None)), id="sftp-without-password"),
    pytest.param(spec(local()), id="local-directory-only"),
    good_schedule("hourly-minute-0", hourly(minute_of_hour=0)),
    good_schedule("hourly-minute-59", hourly(minute_of_hour=59)),
    good_schedule("hourly-without-hour", hourly(hour_of_day=None)),
    good_schedule("weekly-hour-0", weekly(hour_of_day=0)),
    good_schedule("weekly-hour-23", weekly(hour_of_day=23)),
    good_schedule("weekly-every-day", weekly(days_of_week=EVERY_DAY)),
    good_schedule(
        "retention-lowest", hourly(retention=retention(most_recent=1, hourly_days=0, daily_days=0))
    ),
    good_schedule(
        "retention-highest", hourly(retention=retention(most_recent=600, hourly_days=14, daily_days=30))
    ),
    good_schedule("retention-counts-only", hourly(retention=retention(hourly_days=None, daily_days=None))),
    good_schedule("state-change-with-schedule", hourly(take_backup_on_state_change=True)),
    good_schedule("no-scheduled-backups", hourly(take_scheduled_backups=False)),
    pytest.param(spec(passphrase=GOOD_PASSPHRASE), id="passphrase-compliant"),
]


@pytest.mark.parametrize("sent", ACCEPTED)
def test_a_spec_at_the_edge_of_every_rule_is_accepted(sent: ConfigurationSpec) -> None:
    resolved = resolve(sent)
    assert isinstance(resolved, BackupConfiguration)
    if sent.locations:
        assert resolved.location is not None
        assert resolved.location.directory_path == sent.locations[0].directory_path
        assert resolved.location.port == sent.locations[0].port
    if sent.schedules:
        assert resolved.schedule is not None
        assert resolved.schedule.minute_of_hour == sent.schedules[0].minute_of_hour
        assert resolved.schedule.hour_of_day == sent.schedules[0].hour_of_day
    if sent.passphrase:
        assert resolved.passphrase == sent.passphrase


def test_an_accepted_sftp_location_carries_every_field_that_was_sent() -> None:
    resolved = resolve(spec(sftp(ssh_fingerprint=GOOD_FINGERPRINT)))
    assert resolved.location is not None
    assert resolved.location.protocol is LocationProtocol.SFTP
    assert resolved.location.server == "backup.example.com"
    assert resolved.location.port == 22
    assert resolved.location.username == "svc-backup"
    assert resolved.location.password == "Sftp-pass-1"
    assert resolved.location.ssh_fingerprint == GOOD_FINGERPRINT


def test_a_local_location_has_no_sftp_fields() -> None:
    resolved = resolve(spec(local()))
    assert resolved.location is not None
    assert resolved.location.protocol is LocationProtocol.LOCAL
    assert resolved.location.directory_path == "/var/backups"
    assert (resolved.location.server, resolved.location.port, resolved.location.username) == (
        None,
        None,
        None,
    )
    assert resolved.location.password is None


def test_weekly_days_are_put_in_week_order_without_repeats() -> None:
    resolved = resolve(spec(schedules=(weekly(days_of_week=("FRIDAY", "MONDAY", "FRIDAY", "SUNDAY")),)))
    assert resolved.schedule is not None
    assert resolved.schedule.frequency is Frequency.WEEKLY
    assert resolved.schedule.days_of_week == ("SUNDAY", "MONDAY", "FRIDAY")
    assert resolved.schedule.resource_type == "SDDC_MANAGER"


def test_scheduled_backups_without_a_retention_policy_get_the_default() -> None:
    resolved = resolve(spec(schedules=(hourly(retention=None),)))
    assert resolved.schedule is not None
    assert resolved.schedule.retention == DEFAULT_RETENTION
    assert RetentionPolicy(most_recent=10, hourly_days=2, daily_days=15) == DEFAULT_RETENTION


def test_a_retention_policy_that_was_sent_replaces_the_default() -> None:
    sent = retention(most_recent=3, hourly_days=0, daily_days=7)
    resolved = resolve(spec(schedules=(hourly(retention=sent),)))
    assert resolved.schedule is not None
    assert resolved.schedule.retention == RetentionPolicy(3, 0, 7)


def test_without_scheduled_backups_no_default_retention_is_applied() -> None:
    resolved = resolve(spec(schedules=(hourly(take_scheduled_backups=False, retention=None),)))
    assert resolved.schedule is not None
    assert resolved.schedule.take_scheduled_backups is False
    assert resolved.schedule.retention is None


def test_a_spec_breaking_three_rules_lists_all_three_and_leads_with_the_first() -> None:
    sent = spec(sftp(port=0), schedules=(hourly(frequency="DAILY"),), passphrase="weak")
    with pytest.raises(ConfigurationRuleError) as caught:
        resolve(sent)
    error = caught.value
    codes = [e.error_code for e in error.nested]
    assert codes == ["INVALID_PORT", "INVALID_FREQUENCY", "PASSPHRASE_POLICY_VIOLATION"]
    assert error.error_code == "INVALID_PORT"
    assert error.context == {"field": f"{LOC}.port"}
    assert error.remediation == error.nested[0].remediation
    for nested in error.nested:
        assert isinstance(nested, InvalidInputError)
        assert nested.message in error.message


def test_one_location_can_break_several_rules_at_once() -> None:
    sent = spec(sftp(server=None, username=None, port=70000, ssh_fingerprint="nope"))
    with pytest.raises(ConfigurationRuleError) as caught:
        resolve(sent)
    fields = [e.context["field"] for e in caught.value.nested]
    assert fields == [f"{LOC}.server", f"{LOC}.username", f"{LOC}.port", f"{LOC}.sshFingerprint"]
    assert caught.value.error_code == "MISSING_REQUIRED_FIELD"


def test_a_refused_local_location_names_every_sftp_field_that_was_given() -> None:
    with pytest.raises(ConfigurationRuleError) as caught:
        resolve(spec(local(server="h", username="u")))
    assert "server" in caught.value.message
    assert "username" in caught.value.message
    assert "port" not in caught.value.message


@pytest.mark.parametrize(
    "passphrase",
    [
        pytest.param("Zq7#short", id="too-short"),
        pytest.param("zqxv-lower-only-987", id="no-upper-case"),
        pytest.param("ZQXV-UPPER-ONLY-987", id="no-lower-case"),
        pytest.param("Zqxv-No-Digits-Here", id="no-digit"),
        pytest.param("Zqxv7NoSpecials9876", id="no-special"),
        pytest.param("qwzx", id="lacks-everything"),
    ],
)
def test_a_refused_passphrase_never_appears_in_the_error(passphrase: str) -> None:
    with pytest.raises(ConfigurationRuleError) as caught:
        resolve(spec(sftp(port=0), passphrase=passphrase))
    error = caught.value
    assert [e.error_code for e in error.nested] == ["INVALID_PORT", "PASSPHRASE_POLICY_VIOLATION"]
    texts = [str(error), repr(error.args), error.remediation, *error.arguments, *error.context.values()]
    for nested in error.nested:
        texts += [
            str(nested),
            nested.message,
            nested.remediation,
            *nested.arguments,
            *nested.context.values(),
        ]
    assert all(passphrase not in text for text in texts)
