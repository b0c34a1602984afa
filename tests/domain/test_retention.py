"""Which backups the retention policy keeps, and why: worked examples, then properties of random histories."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sddc_backup.domain.backup_config import DEFAULT_RETENTION, RetentionPolicy
from sddc_backup.domain.retention import BackupRecord, Reason, retention_reasons, to_delete

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
FAILED = " failed"


def at(text: str) -> datetime:
    """``"03-10 11:00"`` in 2026, UTC unless the text names an offset (``"03-10 00:30+02:00"``)."""
    moment = datetime.fromisoformat(f"2026-{text}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def history(*names: str) -> list[BackupRecord]:
    """Backups named by their creation time; a name ending in " failed" is not successful."""
    return [
        BackupRecord(name=name, created=at(name.removesuffix(FAILED)), successful=not name.endswith(FAILED))
        for name in names
    ]


def reasons(text: str) -> set[Reason]:
    return {Reason[word] for word in text.split()}


def case(
    name: str, policy: RetentionPolicy, expected: dict[str, str], protect: Collection[str] = ()
) -> object:
    """A worked example: each backup (named by its time) and the reasons that keep it ("" for none)."""
    return pytest.param(
        history(*expected), policy, protect, {n: reasons(r) for n, r in expected.items()}, id=name
    )


MOST_RECENT_CASES = [
    case("two-of-three", RetentionPolicy(2), {
        "03-10 08:00": "",
        "03-10 09:00": "MOST_RECENT",
        "03-10 10:00": "MOST_RECENT NEWEST_SUCCESSFUL",
    }),
    case("one", RetentionPolicy(1), {
        "03-10 08:00": "",
        "03-10 09:00": "",
        "03-10 10:00": "MOST_RECENT NEWEST_SUCCESSFUL",
    }),
    case("more-than-there-are", RetentionPolicy(10), {
        "01-01 00:00": "MOST_RECENT",
        "03-10 09:00": "MOST_RECENT",
        "03-10 10:00": "MOST_RECENT NEWEST_SUCCESSFUL",
    }),
    case("order-is-by-time-not-by-name", RetentionPolicy(1), {
        "03-10 10:00+02:00": "",  # 08:00 UTC
        "03-10 09:00": "MOST_RECENT NEWEST_SUCCESSFUL",
    }),
    case("failed-backups-count-as-recent", RetentionPolicy(2), {
        "03-10 08:00": "NEWEST_SUCCESSFUL",
        "03-10 09:00 failed": "MOST_RECENT",
        "03-10 10:00 failed": "MOST_RECENT",
    }),
]  # fmt: skip

# now: 2026-03-10 12:00 UTC
HOURLY_CASES = [
    case("newest-of-each-hour", RetentionPolicy(1, hourly_days=1), {
        "03-10 09:10": "",
        "03-10 09:50": "HOURLY",
        "03-10 10:59:59": "HOURLY",
        "03-10 11:00": "",
        "03-10 11:45": "MOST_RECENT HOURLY NEWEST_SUCCESSFUL",
    }),
    case("10:59:59-and-11:00-are-different-hours", RetentionPolicy(1, hourly_days=1), {
        "03-10 10:59:59": "HOURLY",
        "03-10 11:00": "MOST_RECENT HOURLY NEWEST_SUCCESSFUL",
    }),
    case("11:00-and-11:59:59.999999-are-the-same-hour", RetentionPolicy(1, hourly_days=1), {
        "03-10 11:00": "",
        "03-10 11:59:59.999999": "MOST_RECENT HOURLY NEWEST_SUCCESSFUL",
    }),
    case("exactly-one-day-ago-is-in-the-window", RetentionPolicy(1, hourly_days=1), {
        "03-09 11:59:59.999999": "",
        "03-09 12:00": "HOURLY",
        "03-10 11:00": "MOST_RECENT HOURLY NEWEST_SUCCESSFUL",
    }),
    case("two-days", RetentionPolicy(1, hourly_days=2), {
        "03-08 11:59": "",
        "03-08 12:00": "",
        "03-08 12:30": "HOURLY",
        "03-09 03:00": "HOURLY",
        "03-10 11:00": "MOST_RECENT HOURLY NEWEST_SUCCESSFUL",
    }),
    case("the-hour-is-utc", RetentionPolicy(1, hourly_days=1), {
        "03-10 10:30+01:00": "",  # 09:30 UTC
        "03-10 09:45": "HOURLY",
        "03-10 13:15+02:00": "MOST_RECENT HOURLY NEWEST_SUCCESSFUL",  # 11:15 UTC
    }),
    case("zero-days-keeps-no-hourly", RetentionPolicy(1, hourly_days=0), {
        "03-10 10:00": "",
        "03-10 11:00": "MOST_RECENT NEWEST_SUCCESSFUL",
    }),
    case("none-keeps-no-hourly", RetentionPolicy(1, hourly_days=None), {
        "03-10 10:00": "",
        "03-10 11:00": "MOST_RECENT NEWEST_SUCCESSFUL",
    }),
]  # fmt: skip

DAILY_CASES = [
    case("newest-of-each-day", RetentionPolicy(1, daily_days=2), {
        "03-08 11:59:59.999999": "",
        "03-08 12:00": "DAILY",  # exactly two days ago
        "03-09 00:00": "",
        "03-09 23:59:59.999999": "DAILY",
        "03-10 00:00": "",
        "03-10 11:00": "MOST_RECENT DAILY NEWEST_SUCCESSFUL",
    }),
    case("newest-of-its-day-but-a-microsecond-too-old", RetentionPolicy(1, daily_days=2), {
        "03-08 11:59:59.999999": "",
        "03-10 11:00": "MOST_RECENT DAILY NEWEST_SUCCESSFUL",
    }),
    case("the-day-is-utc", RetentionPolicy(1, daily_days=2), {
        "03-10 00:30+02:00": "",  # 2026-03-09 22:30 UTC
        "03-09 23:00": "DAILY",
        "03-09 22:00-05:00": "",  # 2026-03-10 03:00 UTC
        "03-10 01:00": "",
        "03-10 11:00": "MOST_RECENT DAILY NEWEST_SUCCESSFUL",
    }),
    case("zero-days-keeps-no-daily", RetentionPolicy(1, daily_days=0), {
        "03-09 10:00": "",
        "03-10 11:00": "MOST_RECENT NEWEST_SUCCESSFUL",
    }),
]  # fmt: skip

NEWEST_SUCCESSFUL_CASES = [
    case("the-newest-failed", RetentionPolicy(1), {
        "03-10 09:00": "",
        "03-10 10:00": "NEWEST_SUCCESSFUL",
        "03-10 11:00 failed": "MOST_RECENT",
    }),
    case("outside-every-window", RetentionPolicy(1, hourly_days=1, daily_days=1), {
        "02-01 00:00": "",
        "02-02 00:00": "NEWEST_SUCCESSFUL",
        "03-10 10:00 failed": "HOURLY",
        "03-10 11:00 failed": "MOST_RECENT HOURLY DAILY",
    }),
    case("all-failed", RetentionPolicy(1), {
        "03-10 10:00 failed": "",
        "03-10 11:00 failed": "MOST_RECENT",
    }),
    case("only-one-and-it-failed", RetentionPolicy(10, 2, 15), {
        "03-10 11:00 failed": "MOST_RECENT HOURLY DAILY",
    }),
]  # fmt: skip

PROTECTED_CASES = [
    case("an-old-one", RetentionPolicy(1), {
        "03-01 00:00": "PROTECTED",
        "03-05 00:00": "",
        "03-10 11:00": "MOST_RECENT NEWEST_SUCCESSFUL",
    }, protect={"03-01 00:00"}),
    case("one-already-kept", RetentionPolicy(1), {
        "03-05 00:00": "",
        "03-10 11:00": "MOST_RECENT NEWEST_SUCCESSFUL PROTECTED",
    }, protect=["03-10 11:00"]),
    case("a-failed-one", RetentionPolicy(1), {
        "03-10 10:00": "NEWEST_SUCCESSFUL",
        "03-10 11:00 failed": "",
        "03-10 11:30 failed": "MOST_RECENT PROTECTED",
    }, protect=("03-10 11:30 failed",)),
    case("several-and-an-unknown-name", RetentionPolicy(1), {
        "03-01 00:00": "PROTECTED",
        "03-02 00:00": "",
        "03-03 00:00": "PROTECTED",
        "03-10 11:00": "MOST_RECENT NEWEST_SUCCESSFUL",
    }, protect={"03-01 00:00", "03-03 00:00", "not-a-backup"}),
]  # fmt: skip

COMBINED_CASES = [
    # now 2026-03-10 12:00: most recent 2, hourly back to 03-09 12:00, daily back to 03-07 12:00
    case("all-rules", RetentionPolicy(2, hourly_days=1, daily_days=3), {
        "03-06 18:00": "",
        "03-07 11:00": "",
        "03-07 13:00": "DAILY",
        "03-08 08:00": "",
        "03-08 20:00": "DAILY",
        "03-09 11:30": "",
        "03-09 12:30": "HOURLY",
        "03-09 23:50": "HOURLY DAILY",
        "03-10 00:10": "HOURLY",
        "03-10 10:20": "",
        "03-10 10:50": "HOURLY",
        "03-10 11:10": "",
        "03-10 11:40": "MOST_RECENT NEWEST_SUCCESSFUL",
        "03-10 11:50 failed": "MOST_RECENT HOURLY DAILY",
    }),
    case("one-backup-every-rule", RetentionPolicy(1, hourly_days=1, daily_days=1), {
        "03-10 11:00": "MOST_RECENT HOURLY DAILY NEWEST_SUCCESSFUL PROTECTED",
    }, protect={"03-10 11:00"}),
    # 15 days back is 02-23 12:00, 2 days back 03-08 12:00
    case("defaults", DEFAULT_RETENTION, {
        "02-22 18:00": "",
        "02-23 06:00": "",
        "02-23 18:00": "DAILY",
        "03-01 00:00": "",
        "03-01 09:00": "DAILY",
        "03-08 11:00": "",
        "03-08 13:00": "HOURLY DAILY",
        "03-10 01:00": "HOURLY",
        "03-10 02:00": "HOURLY",
        "03-10 03:00": "MOST_RECENT HOURLY",
        "03-10 04:00": "MOST_RECENT HOURLY",
        "03-10 05:00": "MOST_RECENT HOURLY",
        "03-10 06:00": "MOST_RECENT HOURLY",
        "03-10 07:00": "MOST_RECENT HOURLY",
        "03-10 08:00": "MOST_RECENT HOURLY",
        "03-10 09:00": "MOST_RECENT HOURLY",
        "03-10 10:00": "MOST_RECENT",
        "03-10 10:30": "MOST_RECENT HOURLY",
        "03-10 11:00": "MOST_RECENT HOURLY DAILY NEWEST_SUCCESSFUL",
    }),
]  # fmt: skip


@pytest.mark.parametrize(
    ("backups", "policy", "protect", "expected"),
    MOST_RECENT_CASES
    + HOURLY_CASES
    + DAILY_CASES
    + NEWEST_SUCCESSFUL_CASES
    + PROTECTED_CASES
    + COMBINED_CASES,
)
def test_worked_examples(
    backups: list[BackupRecord],
    policy: RetentionPolicy,
    protect: Collection[str],
    expected: dict[str, set[Reason]],
) -> None:
    got = retention_reasons(backups, policy, NOW, protect)
    assert got == expected
    assert to_delete(got) == sorted(name for name, why in expected.items() if not why)
    assert retention_reasons(list(reversed(backups)), policy, NOW, protect) == got


def test_no_backups() -> None:
    assert retention_reasons([], DEFAULT_RETENTION, NOW) == {}
    assert retention_reasons([], DEFAULT_RETENTION, NOW, protect={"b1"}) == {}
    assert to_delete({}) == []


def test_the_defaults_are_10_recent_2_days_hourly_15_days_daily() -> None:
    assert RetentionPolicy(most_recent=10, hourly_days=2, daily_days=15) == DEFAULT_RETENTION


def test_the_defaults_on_a_backup_every_half_hour_for_20_days() -> None:
    times = [NOW - timedelta(minutes=30 * n) for n in range(20 * 48, 0, -1)]  # 02-18 12:00 to 03-10 11:30
    backups = [BackupRecord(name=f"{t:%Y-%m-%dT%H%M}", created=t) for t in times]

    got = retention_reasons(backups, DEFAULT_RETENTION, NOW)

    def named(reason: Reason) -> list[str]:
        return sorted(name for name, why in got.items() if reason in why)

    # the ten newest: 07:00 to 11:30 on 03-10
    assert named(Reason.MOST_RECENT) == [f"2026-03-10T{h:02d}{m:02d}" for h in range(7, 12) for m in (0, 30)]
    # since 03-08 12:00: the :30 backup of each of the last 48 hours
    hourly = [datetime(2026, 3, 8, 12, 30, tzinfo=UTC) + timedelta(hours=h) for h in range(48)]
    assert named(Reason.HOURLY) == [f"{t:%Y-%m-%dT%H%M}" for t in hourly]
    # since 02-23 12:00: the 23:30 backup of each day from 02-23 to 03-09, and today's newest
    days = [datetime(2026, 2, 23, 23, 30, tzinfo=UTC) + timedelta(days=d) for d in range(15)]
    assert named(Reason.DAILY) == [f"{t:%Y-%m-%dT%H%M}" for t in days] + ["2026-03-10T1130"]
    assert named(Reason.NEWEST_SUCCESSFUL) == ["2026-03-10T1130"]
    assert named(Reason.PROTECTED) == []
    assert len(backups) - len(to_delete(got)) == 66  # 10 + 48 + 16, less the ones kept twice


def test_equal_times_keep_exactly_the_number_asked_for() -> None:
    same = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
    backups = [BackupRecord(name=f"b{n}", created=same) for n in range(5)]
    got = retention_reasons(backups, RetentionPolicy(2, hourly_days=1, daily_days=1), NOW)
    assert sum(Reason.MOST_RECENT in why for why in got.values()) == 2
    assert sum(Reason.HOURLY in why for why in got.values()) == 1
    assert sum(Reason.DAILY in why for why in got.values()) == 1
    assert sum(Reason.NEWEST_SUCCESSFUL in why for why in got.values()) == 1
    assert len(to_delete(got)) == 3
    assert retention_reasons(list(reversed(backups)), RetentionPolicy(2, 1, 1), NOW) == got


def test_to_delete_lists_the_backups_no_rule_keeps_sorted() -> None:
    got = {"c": set(), "a": set(), "b": {Reason.HOURLY}, "d": {Reason.PROTECTED}}
    assert to_delete(got) == ["a", "c"]


# -- properties ------------------------------------------------------------------------------------------

ZONES: list[tzinfo] = [
    UTC,
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-5)),
    ZoneInfo("Europe/Berlin"),
]
DAY_SECONDS = 24 * 60 * 60


@st.composite
def situations(
    draw: st.DrawFn,
) -> tuple[list[BackupRecord], RetentionPolicy, datetime, set[str]]:
    """A history of up to 80 backups over ~40 days, a policy, the present, and some names to protect."""
    now = NOW + timedelta(seconds=draw(st.integers(0, DAY_SECONDS - 1)))
    ages = st.one_of(
        st.integers(0, 40 * DAY_SECONDS).map(lambda s: timedelta(seconds=s)),
        st.integers(0, 40 * 48).map(lambda k: timedelta(minutes=30 * k)),  # on window edges, and equal times
        st.integers(0, 40 * DAY_SECONDS * 1000).map(lambda ms: timedelta(milliseconds=ms)),
    )
    entries = draw(st.lists(st.tuples(ages, st.booleans(), st.sampled_from(ZONES)), max_size=80))
    backups = [
        BackupRecord(name=f"backup-{n:03d}", created=(now - age).astimezone(zone), successful=ok)
        for n, (age, ok, zone) in enumerate(entries)
    ]
    policy = RetentionPolicy(
        most_recent=draw(st.one_of(st.integers(1, 12), st.integers(1, 600))),
        hourly_days=draw(st.none() | st.integers(0, 14)),
        daily_days=draw(st.none() | st.integers(0, 30)),
    )
    protect = draw(st.sets(st.sampled_from([b.name for b in backups]))) if backups else set()
    return backups, policy, now, protect


Situation = tuple[list[BackupRecord], RetentionPolicy, datetime, set[str]]


def utc(backup: BackupRecord) -> datetime:
    return backup.created.astimezone(UTC)


def hour_of(backup: BackupRecord) -> datetime:
    return utc(backup).replace(minute=0, second=0, microsecond=0)


def day_of(backup: BackupRecord) -> datetime:
    return utc(backup).replace(hour=0, minute=0, second=0, microsecond=0)


@settings(max_examples=200)
@given(situations())
def test_one_entry_per_backup_and_nothing_else(situation: Situation) -> None:
    backups, policy, now, protect = situation
    got = retention_reasons(backups, policy, now, protect | {"not-a-backup.txt"})
    assert sorted(got) == sorted(b.name for b in backups)
    assert to_delete(got) == sorted(name for name, why in got.items() if not why)


@settings(max_examples=200)
@given(situations())
def test_the_newest_successful_backup_is_always_kept(situation: Situation) -> None:
    backups, policy, now, protect = situation
    got = retention_reasons(backups, policy, now, protect)
    successful = [b for b in backups if b.successful]
    marked = [b for b in backups if Reason.NEWEST_SUCCESSFUL in got[b.name]]
    if not successful:
        assert marked == []
        return
    assert len(marked) == 1
    (newest,) = marked
    assert newest.successful
    assert utc(newest) == max(utc(b) for b in successful)
    assert newest.name not in to_delete(got)


@settings(max_examples=200)
@given(situations())
def test_every_reason_is_true_and_each_rule_keeps_what_it_should(situation: Situation) -> None:
    backups, policy, now, protect = situation
    got = retention_reasons(backups, policy, now, protect)
    now_utc = now.astimezone(UTC)

    def newest_of_its(key: Callable[[BackupRecord], datetime], backup: BackupRecord) -> bool:
        return not any(key(o) == key(backup) and utc(o) > utc(backup) for o in backups)

    for backup in backups:
        why = got[backup.name]
        newer = sum(utc(o) > utc(backup) for o in backups)
        if Reason.MOST_RECENT in why:
            assert newer < policy.most_recent
        if Reason.HOURLY in why:
            assert policy.hourly_days
            assert utc(backup) >= now_utc - timedelta(days=policy.hourly_days)
            assert newest_of_its(hour_of, backup)
        if Reason.DAILY in why:
            assert policy.daily_days
            assert utc(backup) >= now_utc - timedelta(days=policy.daily_days)
            assert newest_of_its(day_of, backup)
        assert (Reason.PROTECTED in why) == (backup.name in protect)

    # each rule keeps as many as it should: N newest, one per hour and one per day in the windows
    assert sum(Reason.MOST_RECENT in why for why in got.values()) == min(policy.most_recent, len(backups))
    rules = ((Reason.HOURLY, policy.hourly_days, hour_of), (Reason.DAILY, policy.daily_days, day_of))
    for reason, days, key in rules:
        in_window = [b for b in backups if days and utc(b) >= now_utc - timedelta(days=days)]
        for bucket in {key(b) for b in in_window}:
            assert sum(reason in got[b.name] for b in in_window if key(b) == bucket) == 1
        assert sum(reason in why for why in got.values()) == len({key(b) for b in in_window})


@settings(max_examples=200)
@given(situations())
def test_applying_the_result_again_deletes_nothing_more(situation: Situation) -> None:
    backups, policy, now, protect = situation
    got = retention_reasons(backups, policy, now, protect)
    survivors = [b for b in backups if got[b.name]]
    again = retention_reasons(survivors, policy, now, protect)
    assert to_delete(again) == []
    assert again == {b.name: got[b.name] for b in survivors}  # no rule changes its choice


@settings(max_examples=200)
@given(situations())
def test_protected_backups_are_never_deleted(situation: Situation) -> None:
    backups, policy, now, protect = situation
    got = retention_reasons(backups, policy, now, protect)
    assert not protect & set(to_delete(got))
    assert all(Reason.PROTECTED in got[name] for name in protect)


@settings(max_examples=100)
@given(st.data())
def test_the_order_of_the_input_does_not_matter(data: st.DataObject) -> None:
    backups, policy, now, protect = data.draw(situations())
    shuffled = data.draw(st.permutations(backups))
    assert retention_reasons(shuffled, policy, now, protect) == retention_reasons(
        backups, policy, now, protect
    )
