"""The service's Prometheus metrics, in a registry of its own, rendered for ``GET /metrics``.

Task metrics come from the state store, so that they are the same after a restart: the first scrape
reads every stored task once, and from then on the engine reports each run that ends (``task_ended``,
an ``on_finished`` listener, SKIPPED records included), so a scrape reads only the unfinished tasks
from the store. Runs are kept by task id and attempt, so the same run seen twice counts once, and a
failure that a retry later turns into a success still counts as a failure while the process runs. The
store keeps only the last run of a task: after a restart, failures that were retried are not counted
again. The HTTP request histogram lives in memory and starts from zero at each start, as usual.

Names, types and labels are listed in docs/observability.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from sddc_backup.domain.tasks import Task, TaskStatus
from sddc_backup.persistence.task_store import TaskQuery
from sddc_backup.services.task_metrics import PREFIX, TaskOutcome, task_families

# The classic text format, which every Prometheus version reads (the names need no UTF-8 escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"


class TaskSource(Protocol):
    async def find(self, query: TaskQuery) -> list[Task]: ...


class _TaskCollector(Collector):
    """Yields the task families from the runs seen so far and the ``running`` tasks set just before."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, int], TaskOutcome] = {}
        self.running: list[Task] = []

    def add(self, outcome: TaskOutcome) -> None:
        self.runs[(outcome.task_id, outcome.attempt)] = outcome

    def latest(self) -> list[TaskOutcome]:
        newest: dict[str, TaskOutcome] = {}
        for run in self.runs.values():
            if run.task_id not in newest or run.attempt > newest[run.task_id].attempt:
                newest[run.task_id] = run
        return list(newest.values())

    def collect(self) -> Iterable[Metric]:
        return task_families(list(self.runs.values()), self.latest(), self.running)


class ServiceMetrics:
    def __init__(self, tasks: TaskSource) -> None:
        self._tasks = tasks
        self._seeded = False
        self._seed_lock = asyncio.Lock()
        self.registry = CollectorRegistry(auto_describe=False)  # never the process-wide default
        self._tally = _TaskCollector()
        self.registry.register(self._tally)
        ProcessCollector(registry=self.registry)
        self._requests = Histogram(
            PREFIX + "http_request_duration_seconds",
            "Time to answer API requests, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )

    def task_ended(self, task: Task) -> None:
        """Count a run that ended (a task engine listener: cheap, never raises)."""
        if task.status.is_terminal:
            self._tally.add(TaskOutcome.of(task))

    def observe_request(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """Record one answered request. ``route`` is the matched route's template (``None`` when
        none matched); methods outside the HTTP standard ones count as ``OTHER``."""
        self._requests.labels(
            method if method in METHODS else "OTHER", route or UNMATCHED_ROUTE, str(status)
        ).observe(seconds)

    async def exposition(self) -> bytes:
        """The metrics in the Prometheus text format (``CONTENT_TYPE``)."""
        await self._seed()
        running = await self._tasks.find(TaskQuery(statuses=(TaskStatus.PENDING, TaskStatus.IN_PROGRESS)))
        # No await between setting ``running`` and rendering: concurrent scrapes cannot mix.
        self._tally.running = running
        return generate_latest(self.registry)

    async def _seed(self) -> None:
        async with self._seed_lock:
            if self._seeded:
                return
            for task in await self._tasks.find(TaskQuery(newest_first=False)):
                self.task_ended(task)
            self._seeded = True
