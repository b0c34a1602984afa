"""The backup configuration: where backups go, when they are taken, and the passphrase.

``BackupConfiguration`` is the validated, stored form. ``ConfigurationSpec`` is what a client sent,
loosely typed and with every field optional, exactly as the VCF ``BackupConfigurationSpec``; the rules
that turn one into the other are in ``config_rules``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

SECRET_MASK = "**********"  # noqa: S105 - a placeholder, not a password
"""What GET shows in place of a password or passphrase; sent back, it means "keep the stored one"."""

DAYS_OF_WEEK = ("SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY")
RESOURCE_TYPE = "SDDC_MANAGER"


class LocationProtocol(StrEnum):
    SFTP = "SFTP"
    LOCAL = "LOCAL"  # our extension: a directory on the server itself


class Frequency(StrEnum):
    HOURLY = "HOURLY"
    WEEKLY = "WEEKLY"


@dataclass(frozen=True)
class RetentionPolicy:
    most_recent: int
    hourly_days: int | None = None
    daily_days: int | None = None


DEFAULT_RETENTION = RetentionPolicy(most_recent=10, hourly_days=2, daily_days=15)


@dataclass(frozen=True)
class BackupLocation:
    protocol: LocationProtocol
    directory_path: str
    server: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    ssh_fingerprint: str | None = None

    @property
    def catalog_key(self) -> str:
        """Names the directory on its server, for the backup catalog: ``SFTP://user@host:22/dir``."""
        directory = self.directory_path.rstrip("/") or "/"
        if self.protocol is LocationProtocol.LOCAL:
            return f"LOCAL://{directory}"
        return f"{self.protocol.value}://{self.username}@{self.server}:{self.port}{directory}"

    def same_target(self, other: BackupLocation) -> bool:
        """Whether ``other`` names the same account on the same server (so its secret still applies)."""
        return (self.protocol, self.server, self.port, self.username) == (
            other.protocol,
            other.server,
            other.port,
            other.username,
        )


@dataclass(frozen=True)
class BackupSchedule:
    frequency: Frequency
    take_scheduled_backups: bool
    take_backup_on_state_change: bool
    days_of_week: tuple[str, ...] = ()
    hour_of_day: int | None = None
    minute_of_hour: int | None = None
    retention: RetentionPolicy | None = None
    resource_type: str = RESOURCE_TYPE


@dataclass(frozen=True)
class BackupConfiguration:
    location: BackupLocation | None = None
    schedule: BackupSchedule | None = None
    passphrase: str | None = None

    @property
    def is_configured(self) -> bool:
        """VCF's ``isConfigured``: both a backup location and a passphrase are set."""
        return self.location is not None and self.passphrase is not None


# -- what a client sends ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocationSpec:
    protocol: str | None = None
    server: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    directory_path: str | None = None
    ssh_fingerprint: str | None = None


@dataclass(frozen=True)
class RetentionSpec:
    most_recent: int | None = None
    hourly_days: int | None = None
    daily_days: int | None = None


@dataclass(frozen=True)
class ScheduleSpec:
    resource_type: str | None = None
    frequency: str | None = None
    take_scheduled_backups: bool | None = None
    days_of_week: tuple[str, ...] | None = None
    hour_of_day: int | None = None
    minute_of_hour: int | None = None
    take_backup_on_state_change: bool | None = None
    retention: RetentionSpec | None = None


@dataclass(frozen=True)
class ConfigurationSpec:
    """A ``BackupConfigurationSpec``; ``None`` means the client left the field out."""

    locations: tuple[LocationSpec, ...] | None = None
    schedules: tuple[ScheduleSpec, ...] | None = None
    passphrase: str | None = None


def spec_to_dict(spec: ConfigurationSpec) -> dict[str, Any]:
    """A JSON-ready form of ``spec`` (what a task keeps to apply it, or apply it again on retry)."""
    return asdict(spec)


def spec_from_dict(raw: dict[str, Any]) -> ConfigurationSpec:
    """The inverse of ``spec_to_dict``."""

    def schedule(s: dict[str, Any]) -> ScheduleSpec:
        days, ret = s.get("days_of_week"), s.get("retention")
        plain = {k: v for k, v in s.items() if k not in ("days_of_week", "retention")}
        return ScheduleSpec(
            **plain,
            days_of_week=None if days is None else tuple(days),
            retention=None if ret is None else RetentionSpec(**ret),
        )

    locations, schedules = raw.get("locations"), raw.get("schedules")
    return ConfigurationSpec(
        locations=None if locations is None else tuple(LocationSpec(**loc) for loc in locations),
        schedules=None if schedules is None else tuple(schedule(s) for s in schedules),
        passphrase=raw.get("passphrase"),
    )
