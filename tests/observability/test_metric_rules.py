"""How task runs become metrics, in process: runs seen twice count once, a retried failure keeps
counting while the process runs, running tasks override their earlier runs, and SKIPPED records
reach the metrics through the engine's listener."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from sddc_backup.domain.clock import SystemClock
from sddc_backup.domain.tasks import ErrorRecord, Task, TaskStatus
from sddc_backup.persistence.task_store import TaskQuery
from sddc_backup.services.metrics import ServiceMetrics
from sddc_backup.tasks.controller import TaskController
from sddc_backup.tasks.engine import TaskEngine
from sddc_backup.tasks.kinds import TaskKind
from tests.async_support import sqlite_database, task_store

T0 = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class StoredTasks:
    """A task store's ``find``, over a list the test fills."""

    def __init__(self, *tasks: Task) -> None:
        self.tasks = list(tasks)

    async def find(self, query: TaskQuery) -> list[Task]:
        return [t for t in self.tasks if query.statuses is None or t.status in query.statuses]


def parse(raw: bytes) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(raw.decode())
        for s in family.samples
        if s.name.startswith("sddc_backup_")
    }


def scrape(metrics: ServiceMetrics) -> Samples:
    return parse(asyncio.run(metrics.exposition()))


def backup(task_id: str, uploaded: int) -> Task:
    task = Task(task_id, "SDDC Manager backup", "SDDC_MANAGER_BACKUP", TaskStatus.PENDING, T0, True, True)
    task.start(T0)
    task.begin_subtask("Back up SDDC Manager", T0 + timedelta(seconds=1))
    task.begin_stage("Upload the archive", "upload", T0 + timedelta(seconds=1))
    task.report_progress(uploaded, None, "bytes")
    return task


def failed(task: Task, code: str) -> Task:
    ended = copy.deepcopy(task)
    ended.fail(ErrorRecord(code, "it failed", "retry"), T0 + timedelta(seconds=11))
    return ended


def succeeded(task: Task) -> Task:
    ended = copy.deepcopy(task)
    ended.succeed(T0 + timedelta(seconds=31))
    return ended


def test_a_run_seen_in_the_store_and_as_it_ended_counts_once() -> None:
    done = succeeded(backup("a", 1000))
    metrics = ServiceMetrics(StoredTasks(done))
    metrics.task_ended(done)
    found = scrape(metrics)
    metrics.task_ended(done)
    assert scrape(metrics) == found
    assert found[("sddc_backup_backup_duration_seconds_count", frozenset({("status", "SUCCESSFUL")}))] == 1
    assert found[("sddc_backup_backup_duration_seconds_sum", frozenset({("status", "SUCCESSFUL")}))] == 30
    assert found[("sddc_backup_uploaded_bytes_total", frozenset())] == 1000
    assert (
        found[("sddc_backup_last_successful_backup_timestamp_seconds", frozenset())]
        == (T0 + timedelta(seconds=31)).timestamp()
    )


def test_a_retried_failure_still_counts_and_the_task_shows_its_last_status() -> None:
    first = failed(backup("a", 10), "UPLOAD_FAILED")
    store = StoredTasks(first)
    metrics = ServiceMetrics(store)
    assert (
        scrape(metrics)[
            ("sddc_backup_tasks", frozenset({("type", "SDDC_MANAGER_BACKUP"), ("status", "FAILED")}))
        ]
        == 1
    )
    retried = backup("a", 500)  # the same task, run again
    retried.attempts = 2
    store.tasks = [retried]
    running = scrape(metrics)
    assert (
        running[
            ("sddc_backup_tasks", frozenset({("type", "SDDC_MANAGER_BACKUP"), ("status", "IN_PROGRESS")}))
        ]
        == 1
    )
    assert (
        "sddc_backup_tasks",
        frozenset({("type", "SDDC_MANAGER_BACKUP"), ("status", "FAILED")}),
    ) not in running
    done = succeeded(retried)
    store.tasks = [done]
    metrics.task_ended(done)
    found = scrape(metrics)
    failures = (
        "sddc_backup_task_failures_total",
        frozenset({("type", "SDDC_MANAGER_BACKUP"), ("error_code", "UPLOAD_FAILED")}),
    )
    assert found[failures] == 1
    assert (
        found[("sddc_backup_tasks", frozenset({("type", "SDDC_MANAGER_BACKUP"), ("status", "SUCCESSFUL")}))]
        == 1
    )
    assert found[("sddc_backup_uploaded_bytes_total", frozenset())] == 510  # what both runs sent


async def nothing(ctrl: TaskController, params: Mapping[str, object]) -> None:
    await ctrl.stage("do nothing")


def test_skipped_records_reach_the_metrics_and_are_found_again_after_a_restart(tmp_path: Path) -> None:
    async def scenario() -> tuple[Samples, Samples]:
        async with sqlite_database(tmp_path) as db:
            engine = TaskEngine(task_store(db, tmp_path), SystemClock())
            engine.register(TaskKind("SDDC_MANAGER_BACKUP", "SDDC Manager backup", nothing))
            metrics = ServiceMetrics(engine)
            engine.on_finished(metrics.task_ended)
            await metrics.exposition()  # seeded before the record: only the listener can count it
            reason = ErrorRecord("BACKUP_IN_PROGRESS", "a backup is running", "nothing to do")
            await engine.record_skipped("SDDC_MANAGER_BACKUP", reason)
            live = parse(await metrics.exposition())
            restarted = parse(await ServiceMetrics(engine).exposition())
            return live, restarted

    live, restarted = asyncio.run(scenario())
    skipped = ("sddc_backup_scheduled_runs_skipped_total", frozenset({("reason", "BACKUP_IN_PROGRESS")}))
    assert live[skipped] == restarted[skipped] == 1
    assert ("sddc_backup_backup_duration_seconds_count", frozenset({("status", "SKIPPED")})) not in live
