"""The only place that reads the wall clock. Everything else receives a ``Clock``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def to_vcf_timestamp(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a ``Z``, as the appliance prints it: 2025-11-18T15:11:34.795Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
