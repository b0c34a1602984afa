"""When a scheduled backup is due: HOURLY and WEEKLY schedules in UTC, driven by explicit times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sddc_backup.domain.backup_config import DAYS_OF_WEEK, BackupSchedule, Frequency
from sddc_backup.domain.schedule import first_slot_after, latest_slot, next_run

BERLIN = ZoneInfo("Europe/Berlin")
PLUS_2 = timezone(timedelta(hours=2))
MINUS_5 = timezone(timedelta(hours=-5))
MICRO = timedelta(microseconds=1)
SHORT = {day[:3]: day for day in DAYS_OF_WEEK}  # "MON" -> "MONDAY"
WEEKDAY_NUMBER = {  # datetime.weekday()
    "MONDAY": 0,
    "TUESDAY": 1,
    "WEDNESDAY": 2,
    "THURSDAY": 3,
    "FRIDAY": 4,
    "SATURDAY": 5,
    "SUNDAY": 6,
}


def at(text: str, tz: tzinfo = UTC) -> datetime:
    """``"2026-03-02 10:15"`` as an aware time in ``tz`` (UTC unless told)."""
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def berlin(text: str, *, fold: int = 0) -> datetime:
    """A Berlin wall-clock time; ``fold=1`` is the second 02:xx of the night the clocks go back."""
    return at(text, BERLIN).replace(fold=fold)


def hourly(minute: int, *, on: bool = True, hour: int | None = None, days: str = "") -> BackupSchedule:
    return BackupSchedule(
        frequency=Frequency.HOURLY,
        take_scheduled_backups=on,
        take_backup_on_state_change=False,
        days_of_week=tuple(SHORT[d] for d in days.split()),
        hour_of_day=hour,
        minute_of_hour=minute,
    )


def weekly(days: str, time: str, *, on: bool = True) -> BackupSchedule:
    """``weekly("MON WED", "22:30")``; ``"ALL"`` names the seven days, ``""`` none."""
    names = DAYS_OF_WEEK if days == "ALL" else tuple(SHORT[d] for d in days.split())
    hour, minute = (int(part) for part in time.split(":"))
    return BackupSchedule(
        frequency=Frequency.WEEKLY,
        take_scheduled_backups=on,
        take_backup_on_state_change=False,
        days_of_week=names,
        hour_of_day=hour,
        minute_of_hour=minute,
    )


Moment = str | datetime | None


def moment(value: Moment) -> datetime | None:
    return at(value) if isinstance(value, str) else value


def row(name: str, schedule: BackupSchedule, *, ran: Moment, now: Moment, expect: Moment) -> object:
    return pytest.param(schedule, moment(ran), moment(now), moment(expect), id=name)


# fmt: off
# Dates: Mon 2026-03-02 .. Sun 2026-03-08, Mon 2026-03-09; Thu 2026-12-31, Fri 2027-01-01.
# In every row the last run is at the previous slot (the schedule is up to date) unless the name says.
HOURLY_ROWS = [
    row("before-the-minute", hourly(30),
        ran="2026-03-02 09:30", now="2026-03-02 10:15", expect="2026-03-02 10:30"),
    row("exactly-at-the-slot-is-due", hourly(30),
        ran="2026-03-02 09:30", now="2026-03-02 10:30", expect="2026-03-02 10:30"),
    row("one-microsecond-before-the-slot", hourly(30),
        ran="2026-03-02 09:30", now="2026-03-02 10:29:59.999999", expect="2026-03-02 10:30"),
    row("one-microsecond-after-the-slot-is-due", hourly(30),
        ran="2026-03-02 09:30", now="2026-03-02 10:30:00.000001", expect="2026-03-02 10:30"),
    row("after-running-at-the-slot", hourly(30),
        ran="2026-03-02 10:30", now="2026-03-02 10:30:00.000001", expect="2026-03-02 11:30"),
    row("after-running-late-in-the-hour", hourly(30),
        ran="2026-03-02 10:47", now="2026-03-02 10:59", expect="2026-03-02 11:30"),
    row("minute-0", hourly(0),
        ran="2026-03-02 10:00", now="2026-03-02 10:00:00.000001", expect="2026-03-02 11:00"),
    row("minute-0-one-microsecond-before", hourly(0),
        ran="2026-03-02 09:00", now="2026-03-02 09:59:59.999999", expect="2026-03-02 10:00"),
    row("minute-59-goes-to-the-next-hour", hourly(59),
        ran="2026-03-02 10:59", now="2026-03-02 10:59:00.000001", expect="2026-03-02 11:59"),
    row("minute-59-before-it", hourly(59),
        ran="2026-03-02 09:59", now="2026-03-02 10:00", expect="2026-03-02 10:59"),
    row("23:59-goes-to-the-next-day", hourly(30),
        ran="2026-03-02 23:30", now="2026-03-02 23:59", expect="2026-03-03 00:30"),
    row("minute-59-at-23:59-goes-to-the-next-day", hourly(59),
        ran="2026-03-02 23:59", now="2026-03-02 23:59:00.000001", expect="2026-03-03 00:59"),
    row("saturday-night-to-sunday", hourly(5),
        ran="2026-03-07 23:05", now="2026-03-07 23:30", expect="2026-03-08 00:05"),
    row("sunday-night-to-monday", hourly(5),
        ran="2026-03-08 23:05", now="2026-03-08 23:30", expect="2026-03-09 00:05"),
    row("year-end", hourly(15),
        ran="2026-12-31 23:15", now="2026-12-31 23:45", expect="2027-01-01 00:15"),
    row("hour-and-days-are-ignored", hourly(30, hour=5, days="MON"),
        ran="2026-03-04 09:30", now="2026-03-04 10:00", expect="2026-03-04 10:30"),
]

WEEKLY_ROWS = [
    # one day: WEDNESDAY 02:00
    row("one-day-later-in-the-week", weekly("WED", "02:00"),
        ran="2026-02-25 02:00", now="2026-03-02 10:00", expect="2026-03-04 02:00"),
    row("one-day-earlier-that-day", weekly("WED", "02:00"),
        ran="2026-02-25 02:00", now="2026-03-04 01:59", expect="2026-03-04 02:00"),
    row("one-day-exactly-at-the-slot-is-due", weekly("WED", "02:00"),
        ran="2026-02-25 02:00", now="2026-03-04 02:00", expect="2026-03-04 02:00"),
    row("one-day-one-microsecond-before", weekly("WED", "02:00"),
        ran="2026-02-25 02:00", now="2026-03-04 01:59:59.999999", expect="2026-03-04 02:00"),
    row("one-day-one-microsecond-after-is-due", weekly("WED", "02:00"),
        ran="2026-02-25 02:00", now="2026-03-04 02:00:00.000001", expect="2026-03-04 02:00"),
    row("one-day-after-running-waits-a-week", weekly("WED", "02:00"),
        ran="2026-03-04 02:00", now="2026-03-04 02:00:00.000001", expect="2026-03-11 02:00"),
    row("one-day-later-that-day-waits-a-week", weekly("WED", "02:00"),
        ran="2026-03-04 02:00", now="2026-03-04 23:59", expect="2026-03-11 02:00"),
    # several days: MONDAY, WEDNESDAY, FRIDAY 22:30
    row("several-days-monday-to-wednesday", weekly("MON WED FRI", "22:30"),
        ran="2026-03-02 22:30", now="2026-03-03 12:00", expect="2026-03-04 22:30"),
    row("several-days-wednesday-to-friday", weekly("MON WED FRI", "22:30"),
        ran="2026-03-04 22:30", now="2026-03-05 12:00", expect="2026-03-06 22:30"),
    row("several-days-friday-to-next-monday", weekly("MON WED FRI", "22:30"),
        ran="2026-03-06 22:30", now="2026-03-07 12:00", expect="2026-03-09 22:30"),
    row("several-days-on-a-named-day-before-its-time", weekly("MON WED FRI", "22:30"),
        ran="2026-03-02 22:30", now="2026-03-04 22:29", expect="2026-03-04 22:30"),
    # all seven days at 23:59
    row("all-days-same-day", weekly("ALL", "23:59"),
        ran="2026-03-02 23:59", now="2026-03-03 00:00", expect="2026-03-03 23:59"),
    row("all-days-23:59-goes-to-the-next-day", weekly("ALL", "23:59"),
        ran="2026-03-03 23:59", now="2026-03-03 23:59:00.000001", expect="2026-03-04 23:59"),
    row("all-days-midnight", weekly("ALL", "00:00"),
        ran="2026-03-03 00:00", now="2026-03-03 23:59:59.999999", expect="2026-03-04 00:00"),
    # the end of the week
    row("saturday-to-sunday", weekly("SAT SUN", "12:00"),
        ran="2026-03-07 12:00", now="2026-03-07 13:00", expect="2026-03-08 12:00"),
    row("sunday-to-monday", weekly("SUN MON", "12:00"),
        ran="2026-03-08 12:00", now="2026-03-08 18:00", expect="2026-03-09 12:00"),
    row("sunday-only-from-saturday-night", weekly("SUN", "00:00"),
        ran="2026-03-01 00:00", now="2026-03-07 23:59:59.999999", expect="2026-03-08 00:00"),
    row("monday-only-from-sunday-night", weekly("MON", "01:00"),
        ran="2026-03-02 01:00", now="2026-03-08 23:00", expect="2026-03-09 01:00"),
    row("sunday-only-after-running-waits-a-week", weekly("SUN", "00:00"),
        ran="2026-03-08 00:00", now="2026-03-08 00:00:00.000001", expect="2026-03-15 00:00"),
    row("year-end-thursday-to-friday", weekly("FRI", "00:30"),
        ran="2026-12-25 00:30", now="2026-12-31 23:59", expect="2027-01-01 00:30"),
    row("year-end-into-the-new-year-week", weekly("MON", "08:00"),
        ran="2026-12-28 08:00", now="2026-12-31 23:00", expect="2027-01-04 08:00"),
    # no day named
    row("no-day-named", weekly("", "02:00"),
        ran="2026-02-25 02:00", now="2026-03-04 02:00", expect=None),
    row("no-day-named-never-run", weekly("", "02:00"),
        ran=None, now="2026-03-04 02:00", expect=None),
]

MISSED_ROWS = [
    # down from 08:30 to 12:34: the 09:00, 10:00, 11:00 and 12:00 runs were missed; the latest is due, once
    row("hourly-several-missed-the-latest-is-due", hourly(0),
        ran="2026-03-02 08:00", now="2026-03-02 12:34", expect="2026-03-02 12:00"),
    row("hourly-after-running-the-missed-one", hourly(0),
        ran="2026-03-02 12:34", now="2026-03-02 12:35", expect="2026-03-02 13:00"),
    row("hourly-after-running-recorded-at-its-slot", hourly(0),
        ran="2026-03-02 12:00", now="2026-03-02 12:35", expect="2026-03-02 13:00"),
    row("hourly-one-missed-by-a-microsecond", hourly(0),
        ran="2026-03-02 09:59:59.999999", now="2026-03-02 10:00:00.000001", expect="2026-03-02 10:00"),
    row("hourly-missed-for-days", hourly(20),
        ran="2026-02-20 07:20", now="2026-03-02 12:34", expect="2026-03-02 12:20"),
    # MONDAY and THURSDAY 03:00, last run Monday 2026-02-23, back on Saturday 2026-03-07
    row("weekly-several-missed-the-latest-is-due", weekly("MON THU", "03:00"),
        ran="2026-02-23 03:00", now="2026-03-07 10:00", expect="2026-03-05 03:00"),
    row("weekly-after-running-the-missed-one", weekly("MON THU", "03:00"),
        ran="2026-03-07 10:00", now="2026-03-07 10:01", expect="2026-03-09 03:00"),
    row("weekly-missed-across-the-year-end", weekly("THU", "03:00"),
        ran="2026-12-17 03:00", now="2027-01-02 09:00", expect="2026-12-31 03:00"),
    row("weekly-missed-over-weeks", weekly("SUN", "23:00"),
        ran="2026-01-04 23:00", now="2026-03-09 00:00", expect="2026-03-08 23:00"),
]

NEVER_RUN_ROWS = [
    row("hourly-never-run", hourly(30),
        ran=None, now="2026-03-02 10:15", expect="2026-03-02 10:30"),
    row("hourly-never-run-after-the-minute", hourly(30),
        ran=None, now="2026-03-02 10:45", expect="2026-03-02 11:30"),
    row("weekly-never-run", weekly("WED", "02:00"),
        ran=None, now="2026-03-02 10:00", expect="2026-03-04 02:00"),
    row("weekly-never-run-just-after-a-slot", weekly("WED", "02:00"),
        ran=None, now="2026-03-04 02:00:00.000001", expect="2026-03-11 02:00"),
]

# The clock was set back: the last run is later than now, and counts as now.
SKEW_ROWS = [
    row("hourly-last-run-hours-ahead", hourly(0),
        ran="2026-03-02 15:00", now="2026-03-02 12:20", expect="2026-03-02 13:00"),
    row("hourly-last-run-a-year-ahead", hourly(0),
        ran="2027-03-02 15:00", now="2026-03-02 12:20", expect="2026-03-02 13:00"),
    row("hourly-last-run-a-microsecond-ahead", hourly(0),
        ran="2026-03-02 12:20:00.000001", now="2026-03-02 12:20", expect="2026-03-02 13:00"),
    row("hourly-now-exactly-at-a-slot", hourly(0),
        ran="2026-03-02 15:00", now="2026-03-02 12:00", expect="2026-03-02 13:00"),
    row("weekly-last-run-next-week", weekly("MON", "03:00"),
        ran="2026-03-09 03:00", now="2026-03-03 08:00", expect="2026-03-09 03:00"),
    row("weekly-last-run-weeks-ahead", weekly("WED", "03:00"),
        ran="2026-04-01 03:00", now="2026-03-03 08:00", expect="2026-03-04 03:00"),
]

# Times given in other zones mean the same instants; the answer is the same, in UTC.
ZONE_ROWS = [
    row("now-in-plus-2", hourly(30),
        ran="2026-03-02 09:30", now=at("2026-03-02 12:15", PLUS_2), expect="2026-03-02 10:30"),
    row("last-run-in-plus-2", hourly(30),
        ran=at("2026-03-02 12:30", PLUS_2), now="2026-03-02 10:31", expect="2026-03-02 11:30"),
    row("now-in-minus-5-on-the-previous-local-day-is-due", weekly("WED", "02:00"),
        ran="2026-02-25 02:00", now=at("2026-03-03 22:30", MINUS_5), expect="2026-03-04 02:00"),
    row("now-in-minus-5-after-the-run", weekly("WED", "02:00"),
        ran=at("2026-03-03 21:00", MINUS_5), now=at("2026-03-03 22:30", MINUS_5), expect="2026-03-11 02:00"),
    row("plus-2-local-wednesday-is-utc-tuesday-before-the-slot", weekly("TUE", "23:00"),
        ran="2026-02-24 23:00", now=at("2026-03-04 00:30", PLUS_2), expect="2026-03-03 23:00"),
    row("plus-2-local-wednesday-is-utc-tuesday-after-the-slot-is-due", weekly("TUE", "23:00"),
        ran="2026-02-24 23:00", now=at("2026-03-04 01:30", PLUS_2), expect="2026-03-03 23:00"),
    row("plus-2-after-running-the-tuesday-slot", weekly("TUE", "23:00"),
        ran=at("2026-03-04 01:00", PLUS_2), now=at("2026-03-04 01:30", PLUS_2), expect="2026-03-10 23:00"),
]

# Europe/Berlin moves from +01:00 to +02:00 at 2026-03-29 01:00 UTC and back at 2026-10-25 01:00 UTC.
DST_ROWS = [
    row("spring-hourly-over-the-change", hourly(30),
        ran="2026-03-29 00:30", now=berlin("2026-03-29 01:50"), expect="2026-03-29 01:30"),
    row("spring-hourly-local-03:10", hourly(30),
        ran="2026-03-29 00:30", now=berlin("2026-03-29 03:10"), expect="2026-03-29 01:30"),
    row("spring-weekly-local-03:31-is-due", weekly("SUN", "01:30"),
        ran="2026-03-22 01:30", now=berlin("2026-03-29 03:31"), expect="2026-03-29 01:30"),
    row("spring-weekly-local-03:29-is-before-it", weekly("SUN", "01:30"),
        ran="2026-03-22 01:30", now=berlin("2026-03-29 03:29"), expect="2026-03-29 01:30"),
    row("spring-weekly-a-week-is-168-hours", weekly("SUN", "12:00"),
        ran="2026-03-22 12:00", now=berlin("2026-03-22 13:00:00.000001"), expect="2026-03-29 12:00"),
    row("autumn-local-02:40-first-time", hourly(0),
        ran="2026-10-25 00:00", now=berlin("2026-10-25 02:40"), expect="2026-10-25 01:00"),
    row("autumn-local-02:40-second-time", hourly(0),
        ran="2026-10-25 01:00", now=berlin("2026-10-25 02:40", fold=1), expect="2026-10-25 02:00"),
    row("autumn-weekly-slot-in-the-repeated-hour", weekly("SUN", "01:30"),
        ran="2026-10-18 01:30", now=berlin("2026-10-25 02:30", fold=1), expect="2026-10-25 01:30"),
]
# fmt: on


@pytest.mark.parametrize(("schedule", "last_run", "now", "expected"), HOURLY_ROWS)
def test_hourly(
    schedule: BackupSchedule, last_run: datetime | None, now: datetime, expected: datetime
) -> None:
    assert next_run(schedule, last_run, now) == expected


@pytest.mark.parametrize(("schedule", "last_run", "now", "expected"), WEEKLY_ROWS)
def test_weekly(
    schedule: BackupSchedule, last_run: datetime | None, now: datetime, expected: datetime | None
) -> None:
    assert next_run(schedule, last_run, now) == expected


@pytest.mark.parametrize(("schedule", "last_run", "now", "expected"), MISSED_ROWS)
def test_missed_slots(
    schedule: BackupSchedule, last_run: datetime | None, now: datetime, expected: datetime
) -> None:
    assert next_run(schedule, last_run, now) == expected


@pytest.mark.parametrize(("schedule", "last_run", "now", "expected"), NEVER_RUN_ROWS)
def test_never_run(schedule: BackupSchedule, last_run: None, now: datetime, expected: datetime) -> None:
    assert next_run(schedule, last_run, now) == expected


@pytest.mark.parametrize(("schedule", "last_run", "now", "expected"), SKEW_ROWS)
def test_a_last_run_in_the_future_counts_as_now(
    schedule: BackupSchedule, last_run: datetime, now: datetime, expected: datetime
) -> None:
    got = next_run(schedule, last_run, now)
    assert got == expected
    assert got is not None
    assert got > now  # not due again, and not waiting for the old time to come back


@pytest.mark.parametrize(("schedule", "last_run", "now", "expected"), ZONE_ROWS + DST_ROWS)
def test_times_in_other_zones(
    schedule: BackupSchedule, last_run: datetime, now: datetime, expected: datetime
) -> None:
    got = next_run(schedule, last_run, now)
    assert got == expected
    assert got is not None
    assert got.utcoffset() == timedelta(0)
    assert next_run(schedule, last_run.astimezone(UTC), now.astimezone(UTC)) == got


@pytest.mark.parametrize(
    "schedule",
    [
        pytest.param(hourly(30, on=False), id="hourly"),
        pytest.param(weekly("MON WED", "02:00", on=False), id="weekly"),
        pytest.param(weekly("ALL", "00:00", on=False), id="weekly-every-day"),
    ],
)
@pytest.mark.parametrize(
    "last_run",
    [
        pytest.param(None, id="never-run"),
        pytest.param(at("2026-02-01 00:00"), id="run-long-ago"),
        pytest.param(at("2026-03-02 10:30"), id="run-at-now"),
        pytest.param(at("2026-04-01 00:00"), id="run-in-the-future"),
    ],
)
def test_scheduled_backups_off_never_run(schedule: BackupSchedule, last_run: datetime | None) -> None:
    assert next_run(schedule, last_run, at("2026-03-02 10:30")) is None


def slots(name: str, schedule: BackupSchedule, *, t: Moment, latest: Moment, first: Moment) -> object:
    return pytest.param(schedule, moment(t), moment(latest), moment(first), id=name)


# fmt: off
SLOT_ROWS = [
    slots("hourly-at-a-slot", hourly(30),
          t="2026-03-02 10:30", latest="2026-03-02 10:30", first="2026-03-02 11:30"),
    slots("hourly-just-before", hourly(30),
          t="2026-03-02 10:29:59.999999", latest="2026-03-02 09:30", first="2026-03-02 10:30"),
    slots("hourly-new-year", hourly(0),
          t="2027-01-01 00:00", latest="2027-01-01 00:00", first="2027-01-01 01:00"),
    slots("hourly-back-into-the-old-year", hourly(59),
          t="2027-01-01 00:58", latest="2026-12-31 23:59", first="2027-01-01 00:59"),
    slots("weekly-at-a-slot", weekly("SUN", "00:00"),
          t="2026-03-08 00:00", latest="2026-03-08 00:00", first="2026-03-15 00:00"),
    slots("weekly-just-before", weekly("SUN", "00:00"),
          t="2026-03-07 23:59:59.999999", latest="2026-03-01 00:00", first="2026-03-08 00:00"),
    slots("weekly-over-sunday", weekly("SAT MON", "12:00"),
          t="2026-03-08 12:00", latest="2026-03-07 12:00", first="2026-03-09 12:00"),
    slots("weekly-over-the-year-end", weekly("FRI", "00:30"),
          t="2027-01-01 00:00", latest="2026-12-25 00:30", first="2027-01-01 00:30"),
    slots("weekly-given-in-plus-2", weekly("ALL", "06:00"),
          t=at("2026-03-04 05:00", PLUS_2), latest="2026-03-03 06:00", first="2026-03-04 06:00"),
]
# fmt: on


@pytest.mark.parametrize(("schedule", "t", "latest", "first"), SLOT_ROWS)
def test_latest_slot_and_first_slot_after(
    schedule: BackupSchedule, t: datetime, latest: datetime, first: datetime
) -> None:
    assert latest_slot(schedule, t) == latest
    assert first_slot_after(schedule, t) == first


def test_latest_slot_and_first_slot_after_without_a_day_are_none() -> None:
    assert latest_slot(weekly("", "02:00"), at("2026-03-04 02:00")) is None
    assert first_slot_after(weekly("", "02:00"), at("2026-03-04 02:00")) is None


def run_while_polling(
    schedule: BackupSchedule,
    last_run: datetime,
    start: datetime,
    end: datetime,
    step: timedelta,
    zone: tzinfo = UTC,
) -> list[datetime]:
    """Poll from ``start`` to ``end`` with clock readings in ``zone``, running whenever due; the runs."""
    runs: list[datetime] = []
    now = start.astimezone(zone)
    while now <= end:
        due = next_run(schedule, last_run, now)
        if due is not None and due <= now:
            runs.append(now)
            last_run = now
        now = (now.astimezone(UTC) + step).astimezone(zone)
    return runs


def test_missed_hourly_slots_run_once_then_the_schedule_goes_on() -> None:
    # Last ran at 08:00, down from 08:30 to 12:34: 09:00 to 12:00 were missed.
    runs = run_while_polling(
        hourly(0),
        at("2026-03-02 08:00"),
        at("2026-03-02 12:34"),
        at("2026-03-02 14:10"),
        timedelta(minutes=1),
    )
    assert runs == [at("2026-03-02 12:34"), at("2026-03-02 13:00"), at("2026-03-02 14:00")]


def test_missed_weekly_slots_run_once_then_the_schedule_goes_on() -> None:
    # MONDAY and THURSDAY 03:00; last ran Monday 2026-02-23, back on Saturday 2026-03-07 10:00.
    runs = run_while_polling(
        weekly("MON THU", "03:00"),
        at("2026-02-23 03:00"),
        at("2026-03-07 10:00"),
        at("2026-03-12 23:50"),
        timedelta(minutes=10),
    )
    assert runs == [at("2026-03-07 10:00"), at("2026-03-09 03:00"), at("2026-03-12 03:00")]


@pytest.mark.parametrize(
    ("start", "local_times"),
    [
        pytest.param(
            at("2026-03-28 22:00"), ["23:30", "00:30", "01:30", "03:30", "04:30", "05:30"], id="spring"
        ),
        pytest.param(
            at("2026-10-24 22:00"), ["00:30", "01:30", "02:30", "02:30", "03:30", "04:30"], id="autumn"
        ),
    ],
)
def test_an_hourly_schedule_runs_every_utc_hour_across_a_dst_change(
    start: datetime, local_times: list[str]
) -> None:
    # Polled with Berlin's local clock, which skips an hour in March and repeats one in October.
    runs = run_while_polling(
        hourly(30), start, start, start + timedelta(hours=6), timedelta(minutes=5), zone=BERLIN
    )
    # (compared in UTC: a local time in the repeated hour is never == to a time in another zone)
    assert [run.astimezone(UTC) for run in runs] == [start + timedelta(hours=h, minutes=30) for h in range(6)]
    assert [f"{run:%H:%M}" for run in runs] == local_times


def test_a_weekly_schedule_keeps_its_utc_time_across_the_dst_change() -> None:
    schedule = weekly("SUN", "12:00")
    slots = [first_slot_after(schedule, berlin("2026-03-21 12:00"))]
    for _ in range(2):
        previous = slots[-1]
        assert previous is not None
        slots.append(first_slot_after(schedule, previous))
    assert slots == [at("2026-03-22 12:00"), at("2026-03-29 12:00"), at("2026-04-05 12:00")]
    # The local wall clock moves (13:00 CET, then 14:00 CEST); the UTC time does not.
    assert [s.astimezone(BERLIN).hour for s in slots if s is not None] == [13, 14, 14]


# -- properties ------------------------------------------------------------------------------------------

ZONES = [UTC, PLUS_2, MINUS_5, timezone(timedelta(hours=5, minutes=45)), BERLIN, ZoneInfo("America/New_York")]


@st.composite
def schedules(draw: st.DrawFn) -> BackupSchedule:
    frequency = draw(st.sampled_from(Frequency))
    chosen = draw(st.sets(st.sampled_from(DAYS_OF_WEEK), min_size=1))
    return BackupSchedule(
        frequency=frequency,
        take_scheduled_backups=True,
        take_backup_on_state_change=False,
        days_of_week=tuple(d for d in DAYS_OF_WEEK if d in chosen),  # hourly ignores them
        hour_of_day=draw(st.integers(0, 23)),
        minute_of_hour=draw(st.integers(0, 59)),
    )


@st.composite
def moments(draw: st.DrawFn, schedule: BackupSchedule) -> datetime:
    """An instant in a random zone; often on one of the schedule's slots, or a microsecond off one."""
    moment = draw(st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 1))).replace(tzinfo=UTC)
    if draw(st.booleans()):
        moment = moment.replace(minute=schedule.minute_of_hour or 0, second=0, microsecond=0)
        if schedule.frequency is Frequency.WEEKLY:
            moment = moment.replace(hour=schedule.hour_of_day or 0)
        moment += draw(st.sampled_from([-MICRO, timedelta(0), MICRO]))
    return moment.astimezone(draw(st.sampled_from(ZONES)))


def on_schedule(schedule: BackupSchedule, slot: datetime) -> bool:
    utc = slot.astimezone(UTC)
    if (utc.minute, utc.second, utc.microsecond) != (schedule.minute_of_hour, 0, 0):
        return False
    if schedule.frequency is Frequency.HOURLY:
        return True
    days = {WEEKDAY_NUMBER[d] for d in schedule.days_of_week}
    return utc.hour == schedule.hour_of_day and utc.weekday() in days


@settings(max_examples=300)
@given(st.data())
def test_slots_bracket_the_moment_with_no_slot_between(data: st.DataObject) -> None:
    schedule = data.draw(schedules())
    t = data.draw(moments(schedule))
    latest, first = latest_slot(schedule, t), first_slot_after(schedule, t)
    assert latest is not None
    assert first is not None
    assert latest <= t < first
    assert on_schedule(schedule, latest)
    assert on_schedule(schedule, first)
    assert latest.utcoffset() == timedelta(0)
    assert first.utcoffset() == timedelta(0)
    # no slot strictly between them, seen from either side
    assert first_slot_after(schedule, latest) == first
    assert latest_slot(schedule, first - MICRO) == latest
    # a slot is its own latest slot
    assert latest_slot(schedule, first) == first
    assert latest_slot(schedule, latest) == latest
    if schedule.frequency is Frequency.HOURLY:
        assert first - latest == timedelta(hours=1)
    else:
        assert timedelta(days=1) <= first - latest <= timedelta(days=7)
        if len(schedule.days_of_week) == 7:
            assert first - latest == timedelta(days=1)
        if len(schedule.days_of_week) == 1:
            assert first - latest == timedelta(days=7)


@settings(max_examples=300)
@given(st.data())
def test_next_run_is_the_latest_missed_slot_or_the_next_one(data: st.DataObject) -> None:
    schedule = data.draw(schedules())
    now = data.draw(moments(schedule))
    latest = latest_slot(schedule, now)
    assert latest is not None
    last_run = data.draw(
        st.one_of(
            st.none(),
            moments(schedule),  # anywhere, often far in the past or the future
            st.timedeltas(-timedelta(days=15), timedelta(days=15)).map(lambda d: now + d),
            st.sampled_from([-MICRO, timedelta(0), MICRO]).map(lambda d: latest + d),
        )
    )
    got = next_run(schedule, last_run, now)
    assert got is not None
    missed = last_run is not None and last_run < latest  # a slot in (last_run, now]
    if missed:
        assert got == latest  # the latest missed slot, due now
    else:
        assert got == first_slot_after(schedule, now)
        assert got > now
    # the same instants given in other zones give the same answer
    zone = data.draw(st.sampled_from(ZONES))
    moved = None if last_run is None else last_run.astimezone(zone)
    assert next_run(schedule, moved, now.astimezone(zone)) == got
    # once run now, it is not due again before the next slot
    after = first_slot_after(schedule, now)
    assert after is not None
    assert next_run(schedule, now, now) == after
    later = now + data.draw(st.timedeltas(timedelta(0), after - now - MICRO))
    assert next_run(schedule, now, later) == after


@settings(max_examples=100)
@given(st.data())
def test_scheduled_backups_off_is_always_none(data: st.DataObject) -> None:
    schedule = data.draw(schedules())
    off = BackupSchedule(
        frequency=schedule.frequency,
        take_scheduled_backups=False,
        take_backup_on_state_change=False,
        days_of_week=schedule.days_of_week,
        hour_of_day=schedule.hour_of_day,
        minute_of_hour=schedule.minute_of_hour,
    )
    now = data.draw(moments(schedule))
    last_run = data.draw(st.none() | moments(schedule))
    assert next_run(off, last_run, now) is None
