"""Scheduled backups, and backups after a change of state, started in the server process.

Both go through ``BackupService.start``, exactly as a manual backup, so the one-operation-at-a-time
rule, the progress and the errors are the same. A scheduled run that cannot start (a backup or a
restore is running, or a restore has quiesced the system) is not queued: it is recorded as a SKIPPED
task saying why. A run missed while the service was down is taken once at start-up, not once per
missed slot (``domain.schedule.next_run``). When ``takeBackupOnStateChange`` is on, a successful change
of the configuration or a restore asks for one backup; requests that arrive within
``state_change_delay`` of each other, or while an operation runs, make one backup together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import asdict
from datetime import datetime

from sddc_backup.domain.backup_config import BackupConfiguration, BackupSchedule
from sddc_backup.domain.clock import Clock
from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.domain.restore import TASK_TYPE as RESTORE_TYPE
from sddc_backup.domain.schedule import next_run
from sddc_backup.domain.tasks import ErrorRecord, Task, TaskStatus
from sddc_backup.persistence.settings_store import SettingsStore
from sddc_backup.services.backups import TASK_TYPE as BACKUP_TYPE
from sddc_backup.services.backups import TRIGGERS, BackupService
from sddc_backup.services.exclusive import CONFIGURE_TYPE, EXCLUSIVE_TYPES
from sddc_backup.services.quiesce import Quiesce
from sddc_backup.tasks.engine import TaskEngine

log = logging.getLogger(__name__)
STATE_KEY = "scheduler"
STATE_CHANGING = (CONFIGURE_TYPE, RESTORE_TYPE)
MAX_SLEEP = 60.0  # the configuration is read again at least this often


class Scheduler:
    def __init__(
        self,
        clock: Clock,
        configuration: Callable[[], Awaitable[BackupConfiguration]],
        backups: BackupService,
        engine: TaskEngine,
        quiesce: Quiesce,
        settings: SettingsStore,
        state_change_delay: float = 5.0,
    ) -> None:
        self._clock, self._configuration, self._backups = clock, configuration, backups
        self._engine, self._quiesce, self._settings = engine, quiesce, settings
        self._delay = state_change_delay
        self._wake = asyncio.Event()
        self._changed_at: datetime | None = None  # a state change that no backup has covered yet
        engine.on_finished(self._task_finished)

    async def run(self) -> None:
        """Run until cancelled. A failure in one round is logged; the next round runs anyway."""
        while True:
            self._wake.clear()  # before the round: a wake-up during it must not be lost
            try:
                sleep = await self.tick()
            except Exception:
                log.exception("the scheduler failed; trying again in %s s", MAX_SLEEP)
                sleep = MAX_SLEEP
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(sleep, 0.05))

    async def tick(self) -> float:
        """Start what is due now; return how many seconds until something may be due."""
        config = await self._configuration()
        schedule = config.schedule if config.is_configured else None
        now = self._clock.now()
        sleep = MAX_SLEEP
        last_run = await self._last_run(schedule, now)
        due = next_run(schedule, last_run, now) if schedule is not None else None
        if due is not None and due <= now:
            await self._start("SCHEDULED", due)
            await self._save_state(schedule, now)
            due = next_run(schedule, now, now) if schedule is not None else None
        if due is not None:
            sleep = min(sleep, (due - now).total_seconds())
        if self._changed_at is not None:
            if schedule is None or not schedule.take_backup_on_state_change:
                self._changed_at = None
            else:
                sleep = min(sleep, await self._state_change_backup(now))
        return sleep

    async def _state_change_backup(self, now: datetime) -> float:
        assert self._changed_at is not None
        quiet = (now - self._changed_at).total_seconds()
        if quiet < self._delay:
            return self._delay - quiet
        if self._quiesce.paused or self._engine.is_running(EXCLUSIVE_TYPES):
            return MAX_SLEEP  # the end of the running operation wakes the scheduler
        self._changed_at = None
        try:
            await self._backups.start(["SDDC_MANAGER"], trigger="STATE_CHANGE")
        except InvalidInputError as exc:
            log.warning("the backup after a change of state could not start: %s", exc.message)
        return MAX_SLEEP

    async def _start(self, trigger: str, slot: datetime) -> Task | None:
        """Start the scheduled backup of ``slot``, or record why it was skipped."""
        try:
            # Refused while a backup or restore runs, or while a restore awaits its recovery.
            task = await self._backups.start(["SDDC_MANAGER"], trigger=trigger)
        except InvalidInputError as exc:
            reason = ErrorRecord(
                error_code=exc.error_code,
                message=f"The scheduled backup due at {slot.isoformat()} was skipped: {exc.message}",
                remediation="Nothing needs doing: the next scheduled run takes a backup. To take one "
                "now, use POST /v1/backups/tasks once the running operation has ended.",
                context={"slot": slot.isoformat()},
            )
            name = f"SDDC Manager backup{TRIGGERS[trigger]}"
            await self._engine.record_skipped(
                BACKUP_TYPE, reason, name=name, resources=[self._backups.resource]
            )
            return None
        return task  # a change made before it counts as covered once it succeeds (_task_finished)

    def _task_finished(self, task: Task) -> None:
        if task.status is TaskStatus.SUCCESSFUL and task.type in STATE_CHANGING:
            self._changed_at = self._clock.now()
        elif (
            task.type == BACKUP_TYPE
            and task.status is TaskStatus.SUCCESSFUL
            and self._changed_at is not None
            and task.created >= self._changed_at
        ):
            self._changed_at = None
        self._wake.set()

    # -- state ----------------------------------------------------------------------------------------

    async def _last_run(self, schedule: BackupSchedule | None, now: datetime) -> datetime | None:
        """When this schedule last ran; a schedule seen for the first time starts from now."""
        state = await self._settings.get(STATE_KEY) or {}
        if schedule is None:
            return None
        if state.get("schedule") != _fingerprint(schedule) or not state.get("lastRun"):
            await self._save_state(schedule, now)
            return now
        last_run = datetime.fromisoformat(str(state["lastRun"]))
        if last_run > now:
            # The clock was set back: go on from the present, or no run would come until the old
            # time came round again.
            await self._save_state(schedule, now)
            return now
        return last_run

    async def _save_state(self, schedule: BackupSchedule | None, last_run: datetime) -> None:
        state = {"schedule": _fingerprint(schedule), "lastRun": last_run.isoformat()}
        await self._settings.put(STATE_KEY, state, self._clock.now())


def _fingerprint(schedule: BackupSchedule | None) -> dict[str, object] | None:
    """What decides the slots; a change of it starts the schedule afresh."""
    if schedule is None:
        return None
    raw = asdict(schedule)
    raw.pop("retention", None)
    raw.pop("take_backup_on_state_change", None)
    raw["days_of_week"] = list(raw["days_of_week"])
    raw["frequency"] = str(raw["frequency"])
    return raw
