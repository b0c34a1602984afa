"""``BackupConfigurationSpec`` (requests) and ``BackupConfiguration`` (responses).

Request models carry types only: every value rule lives in ``domain.backup_config`` so that each broken
rule gets its own stable error code. Responses never carry a secret: a set password or passphrase is
shown as the mask.
"""

from __future__ import annotations

from pydantic import Field

from sddc_backup.api.schemas.base import VcfModel
from sddc_backup.domain import backup_config as dc


class BackupRetentionPolicy(VcfModel):
    number_of_most_recent_backups: int | None = Field(None, description="1-600")
    number_of_days_of_hourly_backups: int | None = Field(None, description="0-14")
    number_of_days_of_daily_backups: int | None = Field(None, description="0-30")


class BackupLocation(VcfModel):
    server: str | None = Field(None, description="IP address or FQDN of the SFTP server")
    port: int | None = Field(None, description="1-65535")
    protocol: str | None = Field(None, description="SFTP, or LOCAL (a directory on this server)")
    username: str | None = None
    password: str | None = Field(None, description="never returned; GET shows a mask")
    directory_path: str | None = Field(None, description="absolute path of the backup directory")
    ssh_fingerprint: str | None = Field(None, description="SHA256:<base64> of the server's host key")


class BackupSchedule(VcfModel):
    resource_type: str | None = Field(None, description="SDDC_MANAGER")
    frequency: str | None = Field(None, description="HOURLY or WEEKLY")
    take_scheduled_backups: bool | None = None
    days_of_week: list[str] | None = Field(None, description="SUNDAY ... SATURDAY")
    hour_of_day: int | None = Field(None, description="0-23, UTC")
    minute_of_hour: int | None = Field(None, description="0-59, UTC")
    take_backup_on_state_change: bool | None = None
    retention_policy: BackupRetentionPolicy | None = None


class Encryption(VcfModel):
    passphrase: str | None = Field(None, description="never returned; GET shows a mask")


class BackupConfigurationSpec(VcfModel):
    encryption: Encryption | None = None
    backup_locations: list[BackupLocation] | None = None
    backup_schedules: list[BackupSchedule] | None = None

    def to_domain(self) -> dc.ConfigurationSpec:
        return dc.ConfigurationSpec(
            locations=None
            if self.backup_locations is None
            else tuple(
                dc.LocationSpec(
                    protocol=loc.protocol,
                    server=loc.server,
                    port=loc.port,
                    username=loc.username,
                    password=loc.password,
                    directory_path=loc.directory_path,
                    ssh_fingerprint=loc.ssh_fingerprint,
                )
                for loc in self.backup_locations
            ),
            schedules=None
            if self.backup_schedules is None
            else tuple(_schedule_spec(s) for s in self.backup_schedules),
            passphrase=None if self.encryption is None else self.encryption.passphrase,
        )


def _schedule_spec(s: BackupSchedule) -> dc.ScheduleSpec:
    ret = s.retention_policy
    return dc.ScheduleSpec(
        resource_type=s.resource_type,
        frequency=s.frequency,
        take_scheduled_backups=s.take_scheduled_backups,
        days_of_week=None if s.days_of_week is None else tuple(s.days_of_week),
        hour_of_day=s.hour_of_day,
        minute_of_hour=s.minute_of_hour,
        take_backup_on_state_change=s.take_backup_on_state_change,
        retention=None
        if ret is None
        else dc.RetentionSpec(
            most_recent=ret.number_of_most_recent_backups,
            hourly_days=ret.number_of_days_of_hourly_backups,
            daily_days=ret.number_of_days_of_daily_backups,
        ),
    )


class BackupConfiguration(BackupConfigurationSpec):
    is_configured: bool

    @classmethod
    def of(cls, config: dc.BackupConfiguration) -> BackupConfiguration:
        loc, sch = config.location, config.schedule
        return cls(
            is_configured=config.is_configured,
            encryption=Encryption(passphrase=_mask(config.passphrase)) if config.passphrase else None,
            backup_locations=[]
            if loc is None
            else [
                BackupLocation(
                    server=loc.server,
                    port=loc.port,
                    protocol=loc.protocol.value,
                    username=loc.username,
                    password=_mask(loc.password),
                    directory_path=loc.directory_path,
                    ssh_fingerprint=loc.ssh_fingerprint,
                )
            ],
            backup_schedules=[] if sch is None else [_schedule(sch)],
        )


def _schedule(sch: dc.BackupSchedule) -> BackupSchedule:
    ret = sch.retention
    return BackupSchedule(
        resource_type=sch.resource_type,
        frequency=sch.frequency.value,
        take_scheduled_backups=sch.take_scheduled_backups,
        days_of_week=list(sch.days_of_week),
        hour_of_day=sch.hour_of_day,
        minute_of_hour=sch.minute_of_hour,
        take_backup_on_state_change=sch.take_backup_on_state_change,
        retention_policy=None
        if ret is None
        else BackupRetentionPolicy(
            number_of_most_recent_backups=ret.most_recent,
            number_of_days_of_hourly_backups=ret.hourly_days,
            number_of_days_of_daily_backups=ret.daily_days,
        ),
    )


def _mask(secret: str | None) -> str | None:
    return None if secret is None else dc.SECRET_MASK
