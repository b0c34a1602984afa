"""Builders of valid configuration specs, so that each test changes only the field it is about."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sddc_backup.domain.backup_config import (
    BackupConfiguration,
    ConfigurationSpec,
    LocationSpec,
    RetentionSpec,
    ScheduleSpec,
)
from sddc_backup.domain.config_rules import resolve_configuration
from sddc_backup.domain.passphrase import PassphrasePolicy

GOOD_PASSPHRASE = "Correct-Horse-9battery"
GOOD_FINGERPRINT = "SHA256:" + "Ab0+/" * 8 + "xyz"  # 7 + 43 characters
POLICY = PassphrasePolicy()


def sftp(**changes: Any) -> LocationSpec:
    base = LocationSpec(
        protocol="SFTP",
        server="backup.example.com",
        port=22,
        username="svc-backup",
        password="Sftp-pass-1",
        directory_path="/backups/vcf",
    )
    return replace(base, **changes)


def local(**changes: Any) -> LocationSpec:
    return replace(LocationSpec(protocol="LOCAL", directory_path="/var/backups"), **changes)


def hourly(**changes: Any) -> ScheduleSpec:
    base = ScheduleSpec(
        resource_type="SDDC_MANAGER",
        frequency="HOURLY",
        take_scheduled_backups=True,
        minute_of_hour=15,
        take_backup_on_state_change=False,
    )
    return replace(base, **changes)


def weekly(**changes: Any) -> ScheduleSpec:
    return replace(hourly(frequency="WEEKLY", days_of_week=("MONDAY",), hour_of_day=2), **changes)


def retention(**changes: Any) -> RetentionSpec:
    return replace(RetentionSpec(most_recent=10, hourly_days=2, daily_days=15), **changes)


def spec(
    *locations: LocationSpec, schedules: tuple[ScheduleSpec, ...] | None = None, passphrase: str | None = None
) -> ConfigurationSpec:
    return ConfigurationSpec(locations=locations or None, schedules=schedules, passphrase=passphrase)


def resolve(
    sent: ConfigurationSpec,
    current: BackupConfiguration | None = None,
    *,
    partial: bool = True,
    policy: PassphrasePolicy = POLICY,
) -> BackupConfiguration:
    return resolve_configuration(sent, current or BackupConfiguration(), policy, partial=partial)
