"""The rules that turn a ``ConfigurationSpec`` and the stored configuration into a new one.

``resolve_configuration`` returns a validated ``BackupConfiguration`` or raises
``ConfigurationRuleError`` listing every rule the spec breaks, each with its own stable code. Secrets
that the client leaves out, or sends back as the mask that GET shows, keep their stored value, so a
GET-edit-PATCH round trip never loses them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from sddc_backup.domain.backup_config import (
    DAYS_OF_WEEK,
    DEFAULT_RETENTION,
    RESOURCE_TYPE,
    SECRET_MASK,
    BackupConfiguration,
    BackupLocation,
    BackupSchedule,
    ConfigurationSpec,
    Frequency,
    LocationProtocol,
    LocationSpec,
    RetentionPolicy,
    RetentionSpec,
    ScheduleSpec,
)
from sddc_backup.domain.errors import ConfigurationRuleError, InvalidInputError
from sddc_backup.domain.passphrase import PassphrasePolicy

_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


@dataclass
class _Problems:
    errors: list[InvalidInputError] = field(default_factory=list)

    def add(self, code: str, path: str, message: str, remediation: str) -> None:
        self.errors.append(
            InvalidInputError(
                f"{path}: {message}", error_code=code, remediation=remediation, context={"field": path}
            )
        )


def resolve_configuration(
    spec: ConfigurationSpec,
    current: BackupConfiguration,
    policy: PassphrasePolicy,
    *,
    partial: bool,
) -> BackupConfiguration:
    """The configuration that results from applying ``spec`` to ``current``.

    With ``partial`` (PATCH) a field the client left out keeps its current value; without it (PUT) it is
    reset, except the passphrase, which is never dropped by omission. Raises ``ConfigurationRuleError``
    with one nested error per broken rule.
    """
    problems = _Problems()
    location = current.location if partial else None
    if spec.locations is not None:
        location = _resolve_location(spec.locations, current.location, problems)
    schedule = current.schedule if partial else None
    if spec.schedules is not None:
        schedule = _resolve_schedule(spec.schedules, problems)
    passphrase = _resolve_passphrase(spec.passphrase, current.passphrase, policy, problems)
    if problems.errors:
        first = problems.errors[0]
        summary = "; ".join(e.message for e in problems.errors)
        raise ConfigurationRuleError(
            f"The backup configuration is not valid: {summary}",
            error_code=first.error_code,
            remediation=first.remediation,
            context=first.context,
            nested=tuple(problems.errors),
        )
    return BackupConfiguration(location=location, schedule=schedule, passphrase=passphrase)


def _resolve_passphrase(
    sent: str | None, stored: str | None, policy: PassphrasePolicy, problems: _Problems
) -> str | None:
    if sent is None or sent == SECRET_MASK:
        if sent == SECRET_MASK and stored is None:
            problems.add(
                "PASSPHRASE_NOT_SET",
                "encryption.passphrase",
                "the mask stands for a stored passphrase, and none is stored",
                "Send the passphrase itself.",
            )
        return stored
    missing = policy.problems(sent)
    if missing:
        problems.add(
            "PASSPHRASE_POLICY_VIOLATION",
            "encryption.passphrase",
            "the passphrase needs " + ", ".join(missing),
            f"Choose a passphrase with {policy.describe()}.",
        )
    return sent


def _resolve_location(
    specs: tuple[LocationSpec, ...], stored: BackupLocation | None, problems: _Problems
) -> BackupLocation | None:
    if not specs:
        return None
    if len(specs) > 1:
        problems.add(
            "TOO_MANY_BACKUP_LOCATIONS",
            "backupLocations",
            f"{len(specs)} locations were given and exactly one is supported",
            "Send one entry in backupLocations.",
        )
    spec, path = specs[0], "backupLocations[0]"
    protocol = _resolve_protocol(spec.protocol, path, problems)
    directory = _check_directory(spec.directory_path, f"{path}.directoryPath", problems)
    if protocol is None or directory is None:
        return None
    if protocol is LocationProtocol.LOCAL:
        extra = [
            name
            for name, value in (
                ("server", spec.server),
                ("port", spec.port),
                ("username", spec.username),
                ("password", spec.password),
                ("sshFingerprint", spec.ssh_fingerprint),
            )
            if value is not None
        ]
        if extra:
            problems.add(
                "UNSUPPORTED_FIELD_FOR_PROTOCOL",
                path,
                f"a LOCAL location takes only directoryPath, and {', '.join(extra)} were given",
                "Leave out the SFTP fields, or use protocol SFTP.",
            )
        return BackupLocation(protocol=protocol, directory_path=directory)
    return _resolve_sftp(spec, directory, stored, path, problems)


def _resolve_protocol(value: str | None, path: str, problems: _Problems) -> LocationProtocol | None:
    if value is None:
        problems.add("MISSING_REQUIRED_FIELD", f"{path}.protocol", "is required", "Set protocol to SFTP.")
        return None
    try:
        return LocationProtocol(value)
    except ValueError:
        problems.add(
            "INVALID_PROTOCOL",
            f"{path}.protocol",
            f"'{value}' is not a supported protocol",
            "Use SFTP (or LOCAL for a directory on this server).",
        )
        return None


def _resolve_sftp(
    spec: LocationSpec, directory: str, stored: BackupLocation | None, path: str, problems: _Problems
) -> BackupLocation | None:
    for name, value in (("server", spec.server), ("username", spec.username)):
        if not value:
            problems.add("MISSING_REQUIRED_FIELD", f"{path}.{name}", "is required for SFTP", f"Set {name}.")
    if spec.port is None:
        problems.add("MISSING_REQUIRED_FIELD", f"{path}.port", "is required for SFTP", "Set port, e.g. 22.")
    elif not 1 <= spec.port <= 65535:
        problems.add(
            "INVALID_PORT", f"{path}.port", f"{spec.port} is not a TCP port", "Use a port from 1 to 65535."
        )
    if spec.ssh_fingerprint is not None and not _FINGERPRINT.fullmatch(spec.ssh_fingerprint):
        problems.add(
            "INVALID_SSH_FINGERPRINT",
            f"{path}.sshFingerprint",
            "is not of the form SHA256:<43 base64 characters>",
            "Copy the fingerprint as 'ssh-keygen -l -E sha256 -f <host key>.pub' prints it on the "
            "SFTP server.",
        )
    if not spec.server or not spec.username or spec.port is None:
        return None
    location = BackupLocation(
        protocol=LocationProtocol.SFTP,
        directory_path=directory,
        server=spec.server,
        port=spec.port,
        username=spec.username,
        ssh_fingerprint=spec.ssh_fingerprint,
    )
    password = spec.password
    if password is None or password == SECRET_MASK:
        keep = stored is not None and stored.same_target(location)
        password = stored.password if keep and stored is not None else None
        if spec.password == SECRET_MASK and password is None:
            problems.add(
                "PASSWORD_NOT_SET",
                f"{path}.password",
                "the mask stands for a stored password, and none is stored for this server and user",
                "Send the password itself.",
            )
    return replace(location, password=password)


def _check_directory(value: str | None, path: str, problems: _Problems) -> str | None:
    if not value:
        problems.add("MISSING_REQUIRED_FIELD", path, "is required", "Set the absolute directory path.")
        return None
    reason = directory_path_problem(value)
    if reason:
        problems.add("INVALID_DIRECTORY_PATH", path, reason, "Use an absolute path such as /backups/vcf.")
        return None
    return value


def directory_path_problem(value: str) -> str | None:
    """Why ``value`` is not an acceptable backup directory path, or ``None`` if it is."""
    if "\x00" in value:
        return "contains a NUL byte"
    if not value.startswith("/"):
        return f"'{value}' is not an absolute path"
    if ".." in value.split("/"):
        return f"'{value}' contains a '..' segment"
    return None


def _resolve_schedule(specs: tuple[ScheduleSpec, ...], problems: _Problems) -> BackupSchedule | None:
    if not specs:
        return None
    if len(specs) > 1:
        problems.add(
            "TOO_MANY_BACKUP_SCHEDULES",
            "backupSchedules",
            f"{len(specs)} schedules were given and exactly one is supported",
            "Send one entry in backupSchedules, for resourceType SDDC_MANAGER.",
        )
    spec, path = specs[0], "backupSchedules[0]"
    if spec.resource_type is None:
        problems.add("MISSING_REQUIRED_FIELD", f"{path}.resourceType", "is required", "Set SDDC_MANAGER.")
    elif spec.resource_type != RESOURCE_TYPE:
        problems.add(
            "INVALID_RESOURCE_TYPE",
            f"{path}.resourceType",
            f"'{spec.resource_type}' is not a resource this service backs up",
            "Use SDDC_MANAGER.",
        )
    frequency = None
    if spec.frequency in (Frequency.HOURLY, Frequency.WEEKLY):
        frequency = Frequency(spec.frequency)
    elif spec.frequency is None:
        problems.add("MISSING_REQUIRED_FIELD", f"{path}.frequency", "is required", "Use HOURLY or WEEKLY.")
    else:
        problems.add(
            "INVALID_FREQUENCY",
            f"{path}.frequency",
            f"'{spec.frequency}' is not a frequency",
            "Use HOURLY or WEEKLY.",
        )
    days = _check_days(spec, frequency, path, problems)
    _check_range(spec.hour_of_day, 0, 23, "INVALID_HOUR_OF_DAY", f"{path}.hourOfDay", problems)
    _check_range(spec.minute_of_hour, 0, 59, "INVALID_MINUTE_OF_HOUR", f"{path}.minuteOfHour", problems)
    if frequency is Frequency.WEEKLY and spec.hour_of_day is None:
        problems.add("MISSING_REQUIRED_FIELD", f"{path}.hourOfDay", "is required for WEEKLY", "Set 0-23.")
    if frequency is not None and spec.minute_of_hour is None:
        problems.add("MISSING_REQUIRED_FIELD", f"{path}.minuteOfHour", "is required", "Set 0-59 (UTC).")
    scheduled = bool(spec.take_scheduled_backups)
    on_change = bool(spec.take_backup_on_state_change)
    if on_change and not scheduled:
        problems.add(
            "STATE_CHANGE_BACKUP_REQUIRES_SCHEDULE",
            f"{path}.takeBackupOnStateChange",
            "backups on state change need scheduled backups to be enabled",
            "Set takeScheduledBackups to true, or takeBackupOnStateChange to false.",
        )
    retention = _check_retention(spec.retention, f"{path}.retentionPolicy", problems)
    if retention is None and scheduled:
        retention = DEFAULT_RETENTION
    if frequency is None:
        return None
    return BackupSchedule(
        frequency=frequency,
        take_scheduled_backups=scheduled,
        take_backup_on_state_change=on_change,
        days_of_week=days,
        hour_of_day=spec.hour_of_day,
        minute_of_hour=spec.minute_of_hour,
        retention=retention,
    )


def _check_days(
    spec: ScheduleSpec, frequency: Frequency | None, path: str, problems: _Problems
) -> tuple[str, ...]:
    days = spec.days_of_week or ()
    wrong = [d for d in days if d not in DAYS_OF_WEEK]
    if wrong:
        problems.add(
            "INVALID_DAY_OF_WEEK",
            f"{path}.daysOfWeek",
            f"{', '.join(repr(d) for d in wrong)} is not a day of the week",
            "Use " + ", ".join(DAYS_OF_WEEK) + ".",
        )
    elif frequency is Frequency.WEEKLY and not days:
        problems.add(
            "MISSING_REQUIRED_FIELD", f"{path}.daysOfWeek", "is required for WEEKLY", "Name at least one day."
        )
    return tuple(d for d in DAYS_OF_WEEK if d in days)


def _check_range(value: int | None, low: int, high: int, code: str, path: str, problems: _Problems) -> bool:
    if value is not None and not low <= value <= high:
        problems.add(code, path, f"{value} is outside {low}-{high}", f"Use a value from {low} to {high}.")
        return False
    return True


def _check_retention(spec: RetentionSpec | None, path: str, problems: _Problems) -> RetentionPolicy | None:
    if spec is None:
        return None
    code = "INVALID_RETENTION_POLICY"
    if spec.most_recent is None:
        problems.add(
            "MISSING_REQUIRED_FIELD", f"{path}.numberOfMostRecentBackups", "is required", "Set 1-600."
        )
    ok = _check_range(spec.most_recent, 1, 600, code, f"{path}.numberOfMostRecentBackups", problems)
    ok &= _check_range(spec.hourly_days, 0, 14, code, f"{path}.numberOfDaysOfHourlyBackups", problems)
    ok &= _check_range(spec.daily_days, 0, 30, code, f"{path}.numberOfDaysOfDailyBackups", problems)
    if not ok or spec.most_recent is None:
        return None
    return RetentionPolicy(spec.most_recent, spec.hourly_days, spec.daily_days)
