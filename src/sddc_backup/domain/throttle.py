"""Throttling of failed logins: after too many failures in a window, a key is locked out for a while."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class LoginThrottle:
    """Counts failures per key (user name and client address) with the time passed in by the caller."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=5)
    lockout: timedelta = timedelta(minutes=1)
    _failures: dict[str, list[datetime]] = field(default_factory=dict)
    _locked_until: dict[str, datetime] = field(default_factory=dict)

    def retry_after(self, key: str, now: datetime) -> int:
        """Seconds until ``key`` may try again; 0 when it may try now."""
        until = self._locked_until.get(key)
        if until is None or until <= now:
            self._locked_until.pop(key, None)
            return 0
        return max(1, math.ceil((until - now).total_seconds()))

    def record_failure(self, key: str, now: datetime) -> None:
        recent = [t for t in self._failures.get(key, []) if now - t < self.window]
        recent.append(now)
        if len(recent) >= self.max_failures:
            self._locked_until[key] = now + self.lockout
            recent = []
        self._failures[key] = recent

    def record_success(self, key: str) -> None:
        self._failures.pop(key, None)
        self._locked_until.pop(key, None)
