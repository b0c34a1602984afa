"""Which backups the retention policy keeps, and why: VCF's three rules, plus two that never give way.

A backup is kept when any rule keeps it: it is one of the ``numberOfMostRecentBackups`` newest; it is
the newest of its hour (UTC) within the last ``numberOfDaysOfHourlyBackups`` days; it is the newest of
its day (UTC) within the last ``numberOfDaysOfDailyBackups`` days. Whatever the policy says, the newest
successful backup is kept, and so is any backup the caller protects (the one just taken). Only
backups with a known creation time take part: anything else (files that are not backups) is never a
candidate. Deleting what no rule keeps changes no rule's choice, so applying the result twice deletes
nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sddc_backup.domain.backup_config import RetentionPolicy


class Reason(StrEnum):
    MOST_RECENT = "MOST_RECENT"
    HOURLY = "HOURLY"
    DAILY = "DAILY"
    NEWEST_SUCCESSFUL = "NEWEST_SUCCESSFUL"
    PROTECTED = "PROTECTED"


@dataclass(frozen=True)
class BackupRecord:
    name: str
    created: datetime
    successful: bool = True  # a complete backup (one whose check failed is not "successful")


def retention_reasons(
    backups: Iterable[BackupRecord],
    policy: RetentionPolicy,
    now: datetime,
    protect: Collection[str] = (),
) -> dict[str, set[Reason]]:
    """For every backup, the rules that keep it; an empty set means it may be deleted."""
    ordered = sorted(backups, key=lambda b: (b.created.astimezone(UTC), b.name), reverse=True)  # newest first
    reasons: dict[str, set[Reason]] = {b.name: set() for b in ordered}
    for backup in ordered[: max(policy.most_recent, 0)]:
        reasons[backup.name].add(Reason.MOST_RECENT)
    _newest_per_bucket(ordered, now, policy.hourly_days, _hour, Reason.HOURLY, reasons)
    _newest_per_bucket(ordered, now, policy.daily_days, _day, Reason.DAILY, reasons)
    newest_ok = next((b for b in ordered if b.successful), None)
    if newest_ok is not None:
        reasons[newest_ok.name].add(Reason.NEWEST_SUCCESSFUL)
    for name in protect:
        if name in reasons:
            reasons[name].add(Reason.PROTECTED)
    return reasons


def to_delete(reasons: dict[str, set[Reason]]) -> list[str]:
    return sorted(name for name, why in reasons.items() if not why)


def _newest_per_bucket(
    ordered: list[BackupRecord],
    now: datetime,
    days: int | None,
    bucket: Callable[[datetime], datetime],
    reason: Reason,
    reasons: dict[str, set[Reason]],
) -> None:
    if not days:
        return
    since = now.astimezone(UTC) - timedelta(days=days)
    seen: set[datetime] = set()
    for backup in ordered:  # newest first: the first one seen in a bucket is its newest
        created = backup.created.astimezone(UTC)
        if created < since:
            break
        key = bucket(created)
        if key not in seen:
            seen.add(key)
            reasons[backup.name].add(reason)


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)
