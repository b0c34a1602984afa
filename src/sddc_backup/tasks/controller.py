"""What a task body may do to its task: name the step it is in, report progress, check for cancel."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from sddc_backup.domain.clock import Clock
from sddc_backup.domain.errors import SddcBackupError
from sddc_backup.domain.faults import FaultAction, FaultPlan
from sddc_backup.domain.tasks import Task


class TaskCancelledError(SddcBackupError):
    error_code = "TASK_CANCELLED"
    http_status = 409
    remediation = "The task was cancelled on request. Start it again when needed."


class InjectedFaultError(SddcBackupError):
    error_code = "INJECTED_FAULT"
    remediation = "A fault plan (SDDC_BACKUP_FAULTS) is set; unset it outside tests."


class TaskController(Protocol):
    """The narrow interface a task body receives."""

    @property
    def task_id(self) -> str: ...

    async def subtask(self, name: str) -> None:
        """Finish the running subtask and start ``name``; persisted before it returns."""

    async def stage(self, name: str, description: str = "") -> None:
        """Finish the running stage and start ``name`` in the running subtask; persisted before it returns."""

    def progress(self, completed: int, total: int | None, unit: str = "bytes") -> None:
        """Report progress of the running stage. Cheap: persisted at most about once a second."""

    def raise_if_cancelled(self) -> None:
        """Raise ``TaskCancelledError`` if a cancel was requested."""


class EngineController:
    """The engine's implementation of ``TaskController`` for one run of one task.

    ``task`` is the state that readers see. A transition is applied to a copy, the copy is persisted,
    and only then does it become ``task``: what a poll shows is always already in the state store, so
    a crash can never make a reported step disappear.
    """

    def __init__(
        self,
        task: Task,
        persist: Callable[[Task], Coroutine[Any, Any, None]],
        clock: Clock,
        faults: FaultPlan,
    ) -> None:
        self.task = task
        self._persist = persist
        self._clock = clock
        self._faults = faults
        self._lock = asyncio.Lock()
        self.cancel_requested = False
        self._last_progress_save = 0.0
        self._saves: set[asyncio.Task[None]] = set()

    @property
    def task_id(self) -> str:
        return self.task.id

    async def subtask(self, name: str) -> None:
        self.raise_if_cancelled()
        await self.transition(lambda draft: draft.begin_subtask(name, self._clock.now()))

    async def stage(self, name: str, description: str = "") -> None:
        self.raise_if_cancelled()
        await self.transition(lambda draft: draft.begin_stage(name, description or name, self._clock.now()))
        await self._fault(f"{self.task.type}:{name}")

    async def transition(self, change: Callable[[Task], object]) -> None:
        """Apply ``change`` to a copy of the task, persist the copy, then publish it."""
        async with self._lock:
            draft = copy.deepcopy(self.task)
            change(draft)
            await self._persist(draft)
            self.task = draft

    def progress(self, completed: int, total: int | None, unit: str = "bytes") -> None:
        self.task.report_progress(completed, total, unit)
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_progress_save >= 1.0:
            self._last_progress_save = loop.time()
            save = loop.create_task(self._save_progress())
            self._saves.add(save)  # keep a reference until it is done
            save.add_done_callback(self._saves.discard)

    async def _save_progress(self) -> None:
        async with self._lock:  # reads the task only once earlier transitions are stored
            await self._persist(self.task)

    def raise_if_cancelled(self) -> None:
        if self.cancel_requested:
            raise TaskCancelledError("The task was cancelled on request.")

    async def _fault(self, point: str) -> None:
        action = self._faults.action_at(point)
        if action is FaultAction.HANG:
            await asyncio.Event().wait()
        elif action is FaultAction.FAIL:
            raise InjectedFaultError(f"Fault injected at {point}.")
