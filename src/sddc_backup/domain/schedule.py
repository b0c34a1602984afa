"""When a scheduled backup is due: VCF's HOURLY and WEEKLY schedules, always in UTC.

HOURLY runs every hour at ``minuteOfHour``; WEEKLY runs on each of ``daysOfWeek`` at
``hourOfDay:minuteOfHour``. A time of day in UTC has no daylight saving time, so a schedule never
skips or repeats a run when local clocks change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sddc_backup.domain.backup_config import BackupSchedule, Frequency

_WEEKDAYS = {
    "MONDAY": 0,
    "TUESDAY": 1,
    "WEDNESDAY": 2,
    "THURSDAY": 3,
    "FRIDAY": 4,
    "SATURDAY": 5,
    "SUNDAY": 6,
}


def next_run(schedule: BackupSchedule, last_run: datetime | None, now: datetime) -> datetime | None:
    """The time of the next scheduled run; a time at or before ``now`` means a run is due now.

    ``last_run`` is when the schedule last ran (or started to apply; ``None``: never). A slot missed
    since then (the service was down) is due now, once, however many slots were missed. A
    ``last_run`` later than ``now`` (the clock was set back) counts as ``now``: the schedule goes on
    from the present instead of waiting for the old time to come back. ``None`` when scheduled
    backups are off or the schedule names no day.
    """
    if not schedule.take_scheduled_backups:
        return None
    now = now.astimezone(UTC)
    latest = latest_slot(schedule, now)
    if latest is None:
        return None
    if last_run is not None and min(last_run.astimezone(UTC), now) < latest:
        return latest
    return first_slot_after(schedule, now)


def latest_slot(schedule: BackupSchedule, moment: datetime) -> datetime | None:
    """The last slot of the schedule at or before ``moment`` (UTC)."""
    moment = moment.astimezone(UTC)
    minute = schedule.minute_of_hour or 0
    if schedule.frequency is Frequency.HOURLY:
        slot = moment.replace(minute=minute, second=0, microsecond=0)
        return slot if slot <= moment else slot - timedelta(hours=1)
    for back in range(8):
        found = _weekly_slot(schedule, moment - timedelta(days=back))
        if found is not None and found <= moment:
            return found
    return None


def first_slot_after(schedule: BackupSchedule, moment: datetime) -> datetime | None:
    """The first slot of the schedule strictly after ``moment`` (UTC)."""
    moment = moment.astimezone(UTC)
    minute = schedule.minute_of_hour or 0
    if schedule.frequency is Frequency.HOURLY:
        slot = moment.replace(minute=minute, second=0, microsecond=0)
        return slot if slot > moment else slot + timedelta(hours=1)
    for ahead in range(8):
        found = _weekly_slot(schedule, moment + timedelta(days=ahead))
        if found is not None and found > moment:
            return found
    return None


def _weekly_slot(schedule: BackupSchedule, day: datetime) -> datetime | None:
    """The slot on ``day``'s date, if the schedule runs on that weekday."""
    if day.weekday() not in {_WEEKDAYS[d] for d in schedule.days_of_week if d in _WEEKDAYS}:
        return None
    hour, minute = schedule.hour_of_day or 0, schedule.minute_of_hour or 0
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0)
