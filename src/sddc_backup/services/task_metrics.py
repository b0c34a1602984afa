"""What the metrics say about tasks, computed from what each run of a task ended as.

``TaskOutcome.of`` reduces a finished task to the few facts the metrics need; ``task_families`` turns
the outcomes (and the tasks running now) into Prometheus metric families. Both are pure: the caller
decides where the tasks come from (see ``services.metrics``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from sddc_backup.domain.restore import TASK_TYPE as RESTORE_TYPE
from sddc_backup.domain.tasks import Task, TaskStatus
from sddc_backup.services.exclusive import BACKUP_TYPE

PREFIX = "sddc_backup_"
UPLOAD_STAGE = "Upload the archive"  # its progress counts the archive's bytes as they are stored
RESTORE_READ_STAGE = "Decrypt and verify the backup"  # its progress counts the bytes read
RAN = (TaskStatus.SUCCESSFUL, TaskStatus.FAILED, TaskStatus.CANCELLED)
DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)
SIZE_BUCKETS = (1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12)


@dataclass(frozen=True)
class TaskOutcome:
    """How one run (``attempt``) of a task ended. ``seconds`` is ``None`` for a task that never ran
    (SKIPPED); ``transferred`` is the bytes a backup uploaded or a restore read."""

    task_id: str
    type: str
    status: TaskStatus
    attempt: int
    completed: datetime | None
    seconds: float | None
    error_code: str | None
    transferred: int | None

    @classmethod
    def of(cls, task: Task) -> TaskOutcome:
        return cls(
            task_id=task.id,
            type=task.type,
            status=task.status,
            attempt=task.attempts,
            completed=task.completed,
            seconds=_run_seconds(task),
            error_code=task.errors[0].error_code if task.errors else None,
            transferred=_transferred(task),
        )


def _run_seconds(task: Task) -> float | None:
    """From the start of the last run (its first step, else the task's creation) to the end."""
    if task.completed is None or task.status not in RAN:
        return None
    starts = [s.created for s in task.subtasks if s.created is not None]
    return max(0.0, (task.completed - min(starts, default=task.created)).total_seconds())


def _transferred(task: Task) -> int | None:
    stage_name = {BACKUP_TYPE: UPLOAD_STAGE, RESTORE_TYPE: RESTORE_READ_STAGE}.get(task.type)
    for sub in task.subtasks:
        for stage in sub.stages:
            if stage.name == stage_name and stage.progress is not None:
                return stage.progress.completed
    return None


def _histogram(
    name: str, doc: str, label: str, observed: dict[str, list[float]], buckets: Sequence[float]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label] if label else None)
    for value, samples in sorted(observed.items()):
        counts = [(repr(float(b)), float(sum(1 for s in samples if s <= b))) for b in buckets]
        counts.append(("+Inf", float(len(samples))))
        family.add_metric([value] if label else [], counts, sum_value=sum(samples))
    return family


def _durations(runs: Iterable[TaskOutcome], task_type: str) -> dict[str, list[float]]:
    observed: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        if run.type == task_type and run.seconds is not None:
            observed[run.status.value].append(run.seconds)
    return observed


def _sizes(runs: Iterable[TaskOutcome], task_type: str) -> dict[str, list[float]]:
    sizes = [
        float(r.transferred)
        for r in runs
        if r.type == task_type and r.status is TaskStatus.SUCCESSFUL and r.transferred is not None
    ]
    return {"": sizes} if sizes else {}


def _counted(
    family: CounterMetricFamily | GaugeMetricFamily, counts: Iterable[tuple[tuple[str, ...], int]]
) -> Metric:
    for labels, count in sorted(counts):
        family.add_metric(list(labels), count)
    return family


def _last_backup(runs: Iterable[TaskOutcome]) -> Metric:
    ended = [r.completed for r in runs if r.type == BACKUP_TYPE and r.status is TaskStatus.SUCCESSFUL]
    return GaugeMetricFamily(
        PREFIX + "last_successful_backup_timestamp_seconds",
        "When the newest successful backup ended (Unix time); 0 when there is none.",
        value=max((c.timestamp() for c in ended if c is not None), default=0.0),
    )


def _counters(runs: Collection[TaskOutcome]) -> list[Metric]:
    failures = Counter((r.type, r.error_code or "UNKNOWN") for r in runs if r.status is TaskStatus.FAILED)
    skipped = Counter(
        (r.error_code or "UNKNOWN",) for r in runs if r.type == BACKUP_TYPE and r.status is TaskStatus.SKIPPED
    )
    return [
        _counted(
            CounterMetricFamily(
                PREFIX + "task_failures",
                "Task runs that ended FAILED, by type and errorCode.",
                labels=["type", "error_code"],
            ),
            failures.items(),
        ),
        _counted(
            CounterMetricFamily(
                PREFIX + "scheduled_runs_skipped",
                "Scheduled backups that did not run, by the errorCode of the reason.",
                labels=["reason"],
            ),
            skipped.items(),
        ),
        CounterMetricFamily(
            PREFIX + "uploaded_bytes",
            "Bytes of backup archives sent to backup locations, by backups of any outcome.",
            value=sum(r.transferred or 0 for r in runs if r.type == BACKUP_TYPE),
        ),
    ]


def _task_counts(latest: Iterable[TaskOutcome], running: Collection[Task]) -> Metric:
    live = {t.id for t in running}
    counts = Counter((o.type, o.status.value) for o in latest if o.task_id not in live)
    counts.update((t.type, t.status.value) for t in running)
    doc = "Tasks in the state store, by type and status."
    return _counted(GaugeMetricFamily(PREFIX + "tasks", doc, labels=["type", "status"]), counts.items())


def task_families(
    runs: Collection[TaskOutcome], latest: Collection[TaskOutcome], running: Collection[Task]
) -> list[Metric]:
    """Every task metric. ``runs`` holds each known run of each task, ``latest`` the last run of
    each task, and ``running`` the tasks not finished now (they override their earlier runs)."""
    return [
        _last_backup(runs),
        _histogram(
            PREFIX + "backup_duration_seconds",
            "How long backups ran, by outcome.",
            "status",
            _durations(runs, BACKUP_TYPE),
            DURATION_BUCKETS,
        ),
        _histogram(
            PREFIX + "backup_size_bytes",
            "Size of the archives of successful backups.",
            "",
            _sizes(runs, BACKUP_TYPE),
            SIZE_BUCKETS,
        ),
        _histogram(
            PREFIX + "restore_duration_seconds",
            "How long restores ran, by outcome.",
            "status",
            _durations(runs, RESTORE_TYPE),
            DURATION_BUCKETS,
        ),
        _histogram(
            PREFIX + "restore_read_bytes",
            "Bytes of the backup file that successful restores read.",
            "",
            _sizes(runs, RESTORE_TYPE),
            SIZE_BUCKETS,
        ),
        *_counters(runs),
        _task_counts(latest, running),
    ]
