"""What a task body may do to its task: name the step it is in, report progress, check for cancel."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
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


@dataclass
class TaskLogContext:
    """Which task, phase (subtask) and stage the code that logs is running in.

    The engine binds one to the context of a task's run (``bind_task_log_context``), so that everything
    the body logs, in coroutines and threads it starts too, can be attributed to the task; the controller
    keeps ``phase`` and ``stage`` current.
    """

    task_id: str
    task_type: str
    phase: str | None = None
    stage: str | None = None

    def fields(self) -> dict[str, str]:
        found = {"task_id": self.task_id, "task_type": self.task_type}
        found.update({k: v for k, v in (("phase", self.phase), ("stage", self.stage)) if v is not None})
        return found


_LOG_CONTEXT: ContextVar[TaskLogContext | None] = ContextVar("sddc_backup_task_log_context", default=None)


def bind_task_log_context(context: TaskLogContext) -> None:
    """Attribute what is logged from now on in this context (and contexts copied from it) to a task."""
    _LOG_CONTEXT.set(context)


def task_log_fields() -> dict[str, str]:
    """``task_id``, ``task_type``, ``phase`` and ``stage`` of the task running here; empty outside one."""
    context = _LOG_CONTEXT.get()
    return context.fields() if context is not None else {}


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
        self.log_context = TaskLogContext(task.id, task.type)

    @property
    def task_id(self) -> str:
        return self.task.id

    async def subtask(self, name: str) -> None:
        self.raise_if_cancelled()
        await self.transition(lambda draft: draft.begin_subtask(name, self._clock.now()))
        self.log_context.phase, self.log_context.stage = name, None

    async def stage(self, name: str, description: str = "") -> None:
        self.raise_if_cancelled()
        await self.transition(lambda draft: draft.begin_stage(name, description or name, self._clock.now()))
        current = self.task.current_subtask  # a stage outside any subtask starts one named after the task
        self.log_context.phase, self.log_context.stage = current.name if current else None, name
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
