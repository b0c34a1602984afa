"""Whether automatic backups (scheduled, or after a state change) may start now.

A restore pauses them from its first phase and resumes them in its last (``UnquiesceSystem``), or when
it rolls back; the scheduler asks ``paused`` before it starts a run, and records a skipped run instead.
"""

from __future__ import annotations


class Quiesce:
    def __init__(self) -> None:
        self._holders: set[str] = set()

    def pause(self, holder: str) -> None:
        self._holders.add(holder)

    def resume(self, holder: str) -> None:
        self._holders.discard(holder)

    @property
    def paused(self) -> bool:
        return bool(self._holders)
