"""The task engine in process, on a real SQLite state store: outcomes, retry, cancel, recovery, and
that a step is visible only once it is stored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

import pytest

from sddc_backup.domain.clock import SystemClock
from sddc_backup.domain.errors import ConflictError, InvalidInputError, NotFoundError
from sddc_backup.domain.tasks import StepStatus, Task, TaskStatus
from sddc_backup.persistence.task_store import TaskQuery, TaskStore
from sddc_backup.tasks.controller import TaskController
from sddc_backup.tasks.engine import TaskEngine
from sddc_backup.tasks.kinds import TaskKind
from tests.async_support import sqlite_database, task_store

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def wait_end(engine: TaskEngine, task_id: str) -> Task:
    for _ in range(500):
        task = await engine.get(task_id)
        if task.status.is_terminal and task_id not in engine._running:
            return task
        await asyncio.sleep(0.01)
    raise AssertionError(f"task {task_id} did not end")


async def two_steps(ctrl: TaskController, params: Mapping[str, object]) -> None:
    await ctrl.subtask("first")
    await ctrl.stage("one")
    ctrl.progress(5, 10)
    await ctrl.subtask("second")
    await ctrl.stage("two")
    if params.get("fail"):
        raise InvalidInputError("it went wrong", error_code="BODY_FAILED", remediation="fix it")


def engine_with(store: TaskStore, *kinds: TaskKind) -> TaskEngine:
    engine = TaskEngine(store, SystemClock())
    for kind in kinds:
        engine.register(kind)
    return engine


STEPS = TaskKind("STEPS", "Two steps", two_steps, subtasks=(("first", "1"), ("second", "2")))


async def test_successful_body_is_stored_with_every_step_done(tmp_path: Path) -> None:
    async with sqlite_database(tmp_path) as db:
        store = task_store(db, tmp_path)
        engine = engine_with(store, STEPS)
        task = await engine.submit("STEPS", {})
        assert task.status is TaskStatus.IN_PROGRESS
        await wait_end(engine, task.id)
        stored = await store.get(task.id)
        assert stored is not None and stored.status is TaskStatus.SUCCESSFUL
        assert [s.status for s in stored.subtasks] == [StepStatus.SUCCESSFUL, StepStatus.SUCCESSFUL]
        assert stored.subtasks[0].stages[0].progress is not None
        assert stored.subtasks[0].stages[0].progress.completed == 5


async def test_failed_body_records_the_error_and_retries_under_the_same_id(tmp_path: Path) -> None:
    async with sqlite_database(tmp_path) as db:
        store = task_store(db, tmp_path)
        engine = engine_with(store, STEPS)
        task = await engine.submit("STEPS", {"fail": True})
        failed = await wait_end(engine, task.id)
        assert failed.status is TaskStatus.FAILED and failed.is_retryable
        assert failed.errors[0].error_code == "BODY_FAILED"
        assert failed.subtasks[1].status is StepStatus.FAILED
        assert failed.subtasks[1].stages[0].errors[0].error_code == "BODY_FAILED"
        await engine.retry(task.id)
        again = await wait_end(engine, task.id)
        assert again.attempts == 2 and again.status is TaskStatus.FAILED  # same params, same outcome
        assert len(again.errors) == 1


async def test_unexpected_exception_fails_with_a_logged_reference_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(ctrl: TaskController, params: Mapping[str, object]) -> None:
        raise ZeroDivisionError("boom")

    async with sqlite_database(tmp_path) as db:
        engine = engine_with(task_store(db, tmp_path), TaskKind("BROKEN", "Broken", broken))
        with caplog.at_level(logging.ERROR):
            task = await engine.submit("BROKEN", {})
            failed = await wait_end(engine, task.id)
        error = failed.errors[0]
        assert error.error_code == "INTERNAL_SERVER_ERROR"
        assert error.reference_token and error.reference_token in caplog.text
        assert "boom" not in error.message  # internals stay in the log


async def test_cancel_stops_the_body_runs_its_cleanup_and_ends_cancelled(tmp_path: Path) -> None:
    started, cleaned = asyncio.Event(), asyncio.Event()

    async def long(ctrl: TaskController, params: Mapping[str, object]) -> None:
        await ctrl.stage("waiting")
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.set()

    async with sqlite_database(tmp_path) as db:
        store = task_store(db, tmp_path)
        engine = engine_with(store, TaskKind("LONG", "Long", long))
        task = await engine.submit("LONG", {})
        await started.wait()
        await engine.cancel(task.id)
        assert cleaned.is_set()
        stored = await store.get(task.id)
        assert stored is not None and stored.status is TaskStatus.CANCELLED
        assert stored.errors[0].error_code == "TASK_CANCELLED"
        with pytest.raises(ConflictError):
            await engine.cancel(task.id)
        with pytest.raises(ConflictError):
            await engine.retry(task.id)


async def test_non_cancellable_task_refuses_cancel(tmp_path: Path) -> None:
    gate = asyncio.Event()

    async def waits(ctrl: TaskController, params: Mapping[str, object]) -> None:
        await gate.wait()

    async with sqlite_database(tmp_path) as db:
        engine = engine_with(task_store(db, tmp_path), TaskKind("W", "W", waits, cancellable=False))
        task = await engine.submit("W", {})
        with pytest.raises(ConflictError) as caught:
            await engine.cancel(task.id)
        assert caught.value.error_code == "TASK_NOT_CANCELLABLE"
        gate.set()
        assert (await wait_end(engine, task.id)).status is TaskStatus.SUCCESSFUL


async def test_unknown_task_is_not_found(tmp_path: Path) -> None:
    async with sqlite_database(tmp_path) as db:
        engine = engine_with(task_store(db, tmp_path))
        for action in (engine.get, engine.cancel, engine.retry):
            with pytest.raises(NotFoundError):
                await action("nope")


class SlowStore(TaskStore):
    """Holds every save until released, to observe what readers see while a step is being stored."""

    gate: asyncio.Event

    async def save(self, task: Task) -> None:
        await self.gate.wait()
        await super().save(task)


async def test_a_step_is_visible_only_after_it_is_stored(tmp_path: Path) -> None:
    async with sqlite_database(tmp_path) as db:
        base = task_store(db, tmp_path)
        store = SlowStore(db.sessions, base._box)
        store.gate = asyncio.Event()
        store.gate.set()
        engine = engine_with(store, STEPS)
        task = await engine.submit("STEPS", {})
        store.gate.clear()  # the body's first step now waits in save()
        await asyncio.sleep(0.05)
        live = await engine.get(task.id)
        assert live.current_subtask is None  # "first" is not shown before it is stored
        assert (await base.get(task.id)).current_subtask is None  # type: ignore[union-attr]
        store.gate.set()
        done = await wait_end(engine, task.id)
        assert done.status is TaskStatus.SUCCESSFUL


async def test_shutdown_fails_running_tasks_as_interrupted_and_retryable(tmp_path: Path) -> None:
    async def forever(ctrl: TaskController, params: Mapping[str, object]) -> None:
        await ctrl.stage("forever")
        await asyncio.Event().wait()

    async with sqlite_database(tmp_path) as db:
        store = task_store(db, tmp_path)
        engine = engine_with(store, TaskKind("F", "F", forever))
        task = await engine.submit("F", {})
        await asyncio.sleep(0.05)
        await engine.shutdown()
        stored = await store.get(task.id)
        assert stored is not None and stored.status is TaskStatus.FAILED
        assert stored.errors[0].error_code == "TASK_INTERRUPTED" and stored.is_retryable


async def test_recover_resolves_tasks_left_in_progress_by_a_dead_process(tmp_path: Path) -> None:
    async def never_finishes(ctrl: TaskController, params: Mapping[str, object]) -> None:
        await ctrl.stage("stuck")
        await asyncio.Event().wait()

    async with sqlite_database(tmp_path) as db:
        store = task_store(db, tmp_path)
        dead = engine_with(store, TaskKind("S", "S", never_finishes))
        task = await dead.submit("S", {"secret": "kept sealed"})
        await asyncio.sleep(0.05)
        # A new engine on the same store, as after a crash: the old one is simply abandoned.
        fresh = engine_with(store, TaskKind("S", "S", never_finishes))
        recovered = await fresh.recover()
        assert [t.id for t in recovered] == [task.id]
        stored = await store.get(task.id)
        assert stored is not None and stored.status is TaskStatus.FAILED
        assert stored.subtasks[0].stages[0].status is StepStatus.FAILED
        assert stored.params == {"secret": "kept sealed"}
        assert await fresh.find(TaskQuery(statuses=(TaskStatus.IN_PROGRESS,))) == []
        await dead.shutdown()


async def test_two_retries_arriving_together_start_one_run(tmp_path: Path) -> None:
    runs = 0

    async def counts(ctrl: TaskController, params: Mapping[str, object]) -> None:
        nonlocal runs
        runs += 1
        raise InvalidInputError("still wrong", error_code="BODY_FAILED")

    async with sqlite_database(tmp_path) as db:
        engine = engine_with(task_store(db, tmp_path), TaskKind("C", "C", counts))
        task = await engine.submit("C", {})
        await wait_end(engine, task.id)
        results = await asyncio.gather(engine.retry(task.id), engine.retry(task.id), return_exceptions=True)
        assert sum(isinstance(r, ConflictError) for r in results) == 1
        await wait_end(engine, task.id)
        assert runs == 2


async def test_a_task_of_a_type_no_longer_known_cannot_be_retried(tmp_path: Path) -> None:
    async with sqlite_database(tmp_path) as db:
        store = task_store(db, tmp_path)
        old = engine_with(store, STEPS)
        task = await old.submit("STEPS", {"fail": True})
        await wait_end(old, task.id)
        newer = engine_with(store)  # a later version without that kind
        with pytest.raises(ConflictError) as caught:
            await newer.retry(task.id)
        assert caught.value.error_code == "TASK_NOT_RETRYABLE"


async def test_a_retry_waits_its_turn_behind_an_exclusive_task(tmp_path: Path) -> None:
    gate = asyncio.Event()

    async def holds(ctrl: TaskController, params: Mapping[str, object]) -> None:
        await gate.wait()

    async def fails(ctrl: TaskController, params: Mapping[str, object]) -> None:
        raise InvalidInputError("failed", error_code="BODY_FAILED")

    async with sqlite_database(tmp_path) as db:
        engine = engine_with(
            task_store(db, tmp_path),
            TaskKind("HOLD", "Hold", holds, exclusive_with=("HOLD", "FAIL"), busy_code="HOLD_IN_PROGRESS"),
            TaskKind("FAIL", "Fail", fails, exclusive_with=("HOLD", "FAIL")),
        )
        failed = await engine.submit("FAIL", {})
        await wait_end(engine, failed.id)
        holding = await engine.submit("HOLD", {})
        assert engine.is_running(("HOLD",))
        with pytest.raises(ConflictError) as caught:
            await engine.retry(failed.id)
        assert caught.value.error_code == "HOLD_IN_PROGRESS"  # the running kind's own code
        gate.set()
        await wait_end(engine, holding.id)
        await engine.retry(failed.id)  # its turn now
        await wait_end(engine, failed.id)
