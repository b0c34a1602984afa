"""The stored backup configuration, with its password and passphrase sealed by the ``SecretBox``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sddc_backup.domain.backup_config import (
    BackupConfiguration,
    BackupLocation,
    BackupSchedule,
    Frequency,
    LocationProtocol,
    RetentionPolicy,
)
from sddc_backup.domain.errors import SddcBackupError
from sddc_backup.persistence.secret_box import SecretBox
from sddc_backup.persistence.settings_store import SettingsStore

KEY = "backup_configuration"
Transform = Callable[[str], str | None]
log = logging.getLogger(__name__)


def configuration_to_dict(config: BackupConfiguration, seal: Transform | None = None) -> dict[str, Any]:
    """A JSON-ready form of ``config``; secrets pass through ``seal`` when it is given."""

    def secret(value: str | None) -> str | None:
        return value if value is None or seal is None else seal(value)

    loc, sch = config.location, config.schedule
    return {
        "location": None
        if loc is None
        else {
            "protocol": loc.protocol.value,
            "directoryPath": loc.directory_path,
            "server": loc.server,
            "port": loc.port,
            "username": loc.username,
            "password": secret(loc.password),
            "sshFingerprint": loc.ssh_fingerprint,
        },
        "schedule": None
        if sch is None
        else {
            "frequency": sch.frequency.value,
            "takeScheduledBackups": sch.take_scheduled_backups,
            "takeBackupOnStateChange": sch.take_backup_on_state_change,
            "daysOfWeek": list(sch.days_of_week),
            "hourOfDay": sch.hour_of_day,
            "minuteOfHour": sch.minute_of_hour,
            "retention": None
            if sch.retention is None
            else {
                "mostRecent": sch.retention.most_recent,
                "hourlyDays": sch.retention.hourly_days,
                "dailyDays": sch.retention.daily_days,
            },
        },
        "passphrase": secret(config.passphrase),
    }


def configuration_from_dict(raw: dict[str, Any], unseal: Transform | None = None) -> BackupConfiguration:
    """The inverse of ``configuration_to_dict``."""

    def secret(value: str | None) -> str | None:
        return value if value is None or unseal is None else unseal(value)

    loc, sch = raw.get("location"), raw.get("schedule")
    location = None
    if loc is not None:
        location = BackupLocation(
            protocol=LocationProtocol(loc["protocol"]),
            directory_path=loc["directoryPath"],
            server=loc.get("server"),
            port=loc.get("port"),
            username=loc.get("username"),
            password=secret(loc.get("password")),
            ssh_fingerprint=loc.get("sshFingerprint"),
        )
    schedule = None
    if sch is not None:
        ret = sch.get("retention")
        schedule = BackupSchedule(
            frequency=Frequency(sch["frequency"]),
            take_scheduled_backups=sch["takeScheduledBackups"],
            take_backup_on_state_change=sch["takeBackupOnStateChange"],
            days_of_week=tuple(sch.get("daysOfWeek", ())),
            hour_of_day=sch.get("hourOfDay"),
            minute_of_hour=sch.get("minuteOfHour"),
            retention=None
            if ret is None
            else RetentionPolicy(ret["mostRecent"], ret.get("hourlyDays"), ret.get("dailyDays")),
        )
    return BackupConfiguration(location=location, schedule=schedule, passphrase=secret(raw.get("passphrase")))


class BackupConfigurationStore:
    def __init__(self, settings: SettingsStore, box: SecretBox) -> None:
        self._settings = settings
        self._box = box

    async def get(self) -> BackupConfiguration:
        """The stored configuration. A secret that cannot be unsealed (the data directory's key was
        replaced) reads as unset, so the operator can set it again instead of being locked out."""
        raw = await self._settings.get(KEY)
        return BackupConfiguration() if raw is None else configuration_from_dict(raw, self._unseal)

    def _unseal(self, sealed: str) -> str | None:
        try:
            return self._box.open(sealed)
        except SddcBackupError as exc:
            log.error("a stored secret of the backup configuration is unreadable: %s", exc.message)
            return None

    async def put(self, config: BackupConfiguration, now: datetime) -> None:
        await self._settings.put(KEY, configuration_to_dict(config, self._box.seal), now)
