"""The task engine: submit, run, cancel, retry, and recover after a stop.

The engine is the only writer of task state. It persists every transition (start, subtask, stage, end)
before the change is visible through the API, and keeps running tasks in memory so that polls see their
live progress. Bodies are registered by ``app`` as ``TaskKind`` values; the engine never imports them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sddc_backup.domain.clock import Clock
from sddc_backup.domain.errors import ConflictError, InternalError, NotFoundError, SddcBackupError
from sddc_backup.domain.faults import FaultPlan
from sddc_backup.domain.tasks import ErrorRecord, Resource, SubTask, Task, TaskStatus
from sddc_backup.domain.users import Permission
from sddc_backup.persistence.task_store import TaskQuery
from sddc_backup.tasks.controller import EngineController, TaskCancelledError, bind_task_log_context
from sddc_backup.tasks.kinds import TaskKind, TaskRepository
from sddc_backup.tasks.outcomes import end_task, error_record, interrupted

log = logging.getLogger(__name__)

CANCEL_WAIT_SECONDS = 10.0


class TaskEngine:
    def __init__(self, store: TaskRepository, clock: Clock, faults: FaultPlan | None = None) -> None:
        self._store = store
        self._clock = clock
        self._faults = faults or FaultPlan()
        self._kinds: dict[str, TaskKind] = {}
        self._running: dict[str, tuple[EngineController, asyncio.Task[None]]] = {}
        self._starting: dict[str, str] = {}  # id -> type, claimed before the first await
        self._listeners: list[Callable[[Task], None]] = []

    def on_finished(self, listener: Callable[[Task], None]) -> None:
        """Call ``listener`` with every task that ends in this process, once it is stored: each run of a
        body, and each SKIPPED record (``record_skipped``). Not with the tasks that ``recover`` and
        ``conclude`` resolve at start-up. The listener must not block or raise."""
        self._listeners.append(listener)

    def register(self, kind: TaskKind) -> None:
        self._kinds[kind.type] = kind

    # -- queries -------------------------------------------------------------------------------------

    async def get(self, task_id: str) -> Task:
        """The task, live if it runs in this process; raises ``NotFoundError``."""
        running = self._running.get(task_id)
        if running is not None:
            return running[0].task
        task = await self._store.get(task_id)
        if task is None:
            raise NotFoundError(f"Task {task_id} not found.", error_code="TASK_NOT_FOUND")
        return task

    async def find(self, query: TaskQuery) -> list[Task]:
        found = await self._store.find(query)
        return [self._running[t.id][0].task if t.id in self._running else t for t in found]

    def is_running(self, types: Sequence[str]) -> bool:
        """Whether a task of one of ``types`` is running (or starting) in this process."""
        return self.running_type(types) is not None

    def running_type(self, types: Sequence[str]) -> str | None:
        """The type of a running (or starting) task among ``types``, or ``None``."""
        running = [c.task.type for c, _ in self._running.values()]
        return next((t for t in [*running, *self._starting.values()] if t in types), None)

    def permission_for(self, task_type: str) -> Permission:
        """What a caller needs to retry tasks of ``task_type``; ADMINISTER for a type no longer known."""
        kind = self._kinds.get(task_type)
        return kind.permission if kind else Permission.ADMINISTER

    # -- commands ------------------------------------------------------------------------------------

    async def submit(
        self,
        task_type: str,
        params: Mapping[str, object],
        *,
        name: str | None = None,
        resources: Sequence[Resource] = (),
        task_id: str | None = None,
    ) -> Task:
        """Create a task of a registered kind, persist it IN_PROGRESS, and start its body."""
        kind = self._kind(task_type)
        task = Task(
            id=task_id or str(uuid.uuid4()),
            name=name or kind.name,
            type=kind.type,
            status=TaskStatus.PENDING,
            created=self._clock.now(),
            is_cancellable=kind.cancellable,
            is_retryable_type=kind.retryable,
            subtasks=[SubTask(name=n, description=d) for n, d in kind.subtasks],
            resources=list(resources),
            params=dict(params),
        )
        await self._launch(task, kind)
        return task

    async def cancel(self, task_id: str) -> Task:
        """Ask a running, cancellable task to stop, and wait a little for it to end CANCELLED."""
        task = await self.get(task_id)
        running = self._running.get(task_id)
        if running is None or task.status is not TaskStatus.IN_PROGRESS:
            raise ConflictError(
                "Only a IN_PROGRESS task can be cancelled.",
                error_code="TASK_NOT_CANCELLABLE",
                context={"taskId": task_id, "status": task.status.value},
            )
        if not task.is_cancellable:
            raise ConflictError(
                f"Task {task_id} cannot be cancelled: it must run to its end to stay consistent.",
                error_code="TASK_NOT_CANCELLABLE",
                remediation="Wait for the task to end.",
            )
        controller, runner = running
        controller.cancel_requested = True
        runner.cancel()
        await asyncio.wait({runner}, timeout=CANCEL_WAIT_SECONDS)
        return task

    async def retry(self, task_id: str) -> Task:
        """Run a FAILED, retryable task again under the same id."""
        task = await self.get(task_id)
        kind = self._kinds.get(task.type)
        if not task.is_retryable or task_id in self._running or task_id in self._starting or kind is None:
            raise ConflictError(
                "Only a failed Task can be retried.",
                error_code="TASK_NOT_RETRYABLE",
                context={"taskId": task_id, "status": task.status.value},
            )
        running = self.running_type(kind.exclusive_with)
        if running is not None:
            raise ConflictError(
                f"Task {task_id} cannot be retried while a task of type {running} is running.",
                error_code=self._kind(running).busy_code,
                remediation="Wait for the running task to end, then retry.",
            )
        await self._launch(task, kind)
        return task

    async def recover(self) -> list[Task]:
        """Resolve tasks that a previous process left unfinished: each ends FAILED, with the reason."""
        recovered = []
        for task in await self._store.unfinished():
            task.fail(interrupted(task), self._clock.now())
            await self._save(task)
            log.warning(
                "task %s (%s) was interrupted by a stop and is now FAILED",
                task.id,
                task.type,
                extra={"fields": {"task_id": task.id, "task_type": task.type}},
            )
            recovered.append(task)
        return recovered

    async def record_skipped(
        self,
        task_type: str,
        reason: ErrorRecord,
        *,
        name: str | None = None,
        resources: Sequence[Resource] = (),
    ) -> Task:
        """Store a task of ``task_type`` that was not run (SKIPPED), with the reason, for the record."""
        kind = self._kind(task_type)
        task = Task(
            id=str(uuid.uuid4()),
            name=name or kind.name,
            type=kind.type,
            status=TaskStatus.PENDING,
            created=self._clock.now(),
            is_cancellable=False,
            is_retryable_type=False,
            subtasks=[SubTask(name=n, description=d) for n, d in kind.subtasks],
            resources=list(resources),
        )
        task.skip(reason, self._clock.now())
        await self._save(task)
        log.info(
            "task %s (%s) skipped: %s",
            task.id,
            task.type,
            reason.message,
            extra={"fields": {"task_id": task.id, "task_type": task.type}},
        )
        self._notify(task)
        return task

    async def unfinished(self, task_type: str) -> list[Task]:
        """Stored tasks of ``task_type`` still PENDING or IN_PROGRESS that no run here owns."""
        found = await self._store.unfinished()
        return [t for t in found if t.type == task_type and t.id not in self._running]

    async def conclude(self, task_id: str, error: ErrorRecord | None, note: str) -> Task | None:
        """End a task that no run in this process owns, after its work was finished (``error`` is
        ``None``) or undone at start-up; ``None`` when there is no such task."""
        if task_id in self._running or task_id in self._starting:
            return None
        task = await self._store.get(task_id)
        if task is None:
            return None
        task.conclude_after_restart(error, note, self._clock.now())
        await self._save(task)
        return task

    async def shutdown(self) -> None:
        """Stop every running body; their tasks end FAILED and retryable, as after a crash."""
        runners = [runner for _, runner in self._running.values()]
        for runner in runners:
            runner.cancel()
        if runners:
            await asyncio.wait(runners, timeout=CANCEL_WAIT_SECONDS)

    # -- running -------------------------------------------------------------------------------------

    def _kind(self, task_type: str) -> TaskKind:
        kind = self._kinds.get(task_type)
        if kind is None:
            raise InternalError(f"no task body is registered for type {task_type}")
        return kind

    async def _launch(self, task: Task, kind: TaskKind) -> None:
        # Claimed before the first await, so that two retries arriving together start one run.
        self._starting[task.id] = task.type
        try:
            task.start(self._clock.now())
            await self._save(task)
            controller = EngineController(task, self._save, self._clock, self._faults)
            runner = asyncio.get_running_loop().create_task(self._run(kind, controller))
            self._running[task.id] = (controller, runner)
        finally:
            self._starting.pop(task.id, None)

    async def _run(self, kind: TaskKind, controller: EngineController) -> None:
        task = controller.task
        bind_task_log_context(controller.log_context)  # this runner's own context: the body's logs say so
        log.info("task %s (%s) started, attempt %d", task.id, task.type, task.attempts)
        status, error = TaskStatus.SUCCESSFUL, None
        try:
            await kind.body(controller, task.params)
        except asyncio.CancelledError:
            if controller.cancel_requested:
                status, error = (
                    TaskStatus.CANCELLED,
                    error_record(TaskCancelledError("Cancelled on request.")),
                )
            else:
                status, error = TaskStatus.FAILED, interrupted(task)
        except TaskCancelledError as exc:
            status, error = TaskStatus.CANCELLED, error_record(exc)
        except SddcBackupError as exc:
            status, error = TaskStatus.FAILED, error_record(exc)
        except Exception:
            token = secrets.token_hex(4).upper()
            log.exception("task %s (%s) failed unexpectedly [referenceToken=%s]", task.id, task.type, token)
            error = error_record(InternalError("The task failed unexpectedly."))
            error.reference_token = token
            status = TaskStatus.FAILED
        # Shielded: a shutdown that cancels this coroutine must not lose the final state.
        await asyncio.shield(controller.transition(lambda t: end_task(t, status, error, self._now())))
        self._running.pop(task.id, None)
        log.info("task %s (%s) ended %s", task.id, task.type, status.value)
        self._notify(controller.task)

    def _notify(self, task: Task) -> None:
        for listener in self._listeners:
            try:
                listener(task)
            except Exception:
                log.exception("a listener failed on the end of task %s", task.id)

    def _now(self) -> datetime:
        return self._clock.now()

    async def _save(self, task: Task) -> None:
        await self._store.save(task)
