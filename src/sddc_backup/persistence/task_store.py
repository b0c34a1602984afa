"""Stored tasks. Columns hold what queries filter on; a JSON document holds subtasks, errors and
resources; the parameters a retry needs are sealed, because they can contain secrets."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sddc_backup.domain.errors import SddcBackupError
from sddc_backup.domain.tasks import (
    ErrorRecord,
    Progress,
    Resource,
    Stage,
    StepStatus,
    SubTask,
    Task,
    TaskStatus,
)
from sddc_backup.persistence.secret_box import SecretBox
from sddc_backup.persistence.tables import TaskRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskQuery:
    """Filters of ``GET /v1/tasks``; ``None`` means "any"."""

    statuses: tuple[TaskStatus, ...] | None = None
    type: str | None = None
    name_contains: str | None = None
    resource_id: str | None = None
    resource_type: str | None = None
    completed_after: datetime | None = None
    newest_first: bool = True
    order_by: str = "creationTimestamp"


_ORDER_COLUMNS = {
    "creationTimestamp": TaskRow.created_at,
    "completionTimestamp": TaskRow.completed_at,
    "name": TaskRow.name,
    "status": TaskRow.status,
    "type": TaskRow.type,
}
ORDERABLE = tuple(_ORDER_COLUMNS)


class TaskStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
        self._sessions = sessions
        self._box = box

    async def save(self, task: Task) -> None:
        """Insert or replace ``task``, in one transaction."""
        values = self._row_values(task)
        # An UPDATE first, and an INSERT only for a new task: a running task is saved at every step,
        # and one statement without a result is the fewest round trips to the database driver.
        async with self._sessions() as session, session.begin():
            updated = await session.execute(update(TaskRow).where(TaskRow.id == task.id).values(values))
            if cast(CursorResult[Any], updated).rowcount == 0:
                await session.execute(insert(TaskRow).values(id=task.id, **values))

    def _row_values(self, task: Task) -> dict[str, Any]:
        document = {
            "subtasks": [asdict(s) for s in task.subtasks],
            "errors": [asdict(e) for e in task.errors],
            "resources": [asdict(r) for r in task.resources],
        }
        return {
            "name": task.name,
            "type": task.type,
            "status": task.status.value,
            "created_at": task.created,
            "completed_at": task.completed,
            "is_cancellable": task.is_cancellable,
            "is_retryable_type": task.is_retryable_type,
            "attempts": task.attempts,
            # Through JSON text once, so that datetimes become ISO strings on every backend.
            "document": json.loads(json.dumps(document, default=_json_default)),
            "sealed_params": self._box.seal(json.dumps(task.params)),
        }

    async def get(self, task_id: str) -> Task | None:
        async with self._sessions() as session:
            row = await session.get(TaskRow, task_id)
            return None if row is None else self._task(row)

    async def find(self, query: TaskQuery) -> list[Task]:
        async with self._sessions() as session:
            rows = await session.scalars(_select(query))
            tasks = [self._task(r) for r in rows]
        if query.resource_id or query.resource_type:
            tasks = [t for t in tasks if _has_resource(t, query.resource_id, query.resource_type)]
        return tasks

    async def unfinished(self) -> list[Task]:
        return await self.find(TaskQuery(statuses=(TaskStatus.PENDING, TaskStatus.IN_PROGRESS)))

    def _task(self, row: TaskRow) -> Task:
        doc = row.document
        params, retryable = self._params(row)
        return Task(
            id=row.id,
            name=row.name,
            type=row.type,
            status=TaskStatus(row.status),
            created=row.created_at,
            completed=row.completed_at,
            is_cancellable=row.is_cancellable,
            is_retryable_type=retryable,
            attempts=row.attempts,
            subtasks=[_subtask(s) for s in doc.get("subtasks", [])],
            errors=[ErrorRecord(**e) for e in doc.get("errors", [])],
            resources=[Resource(**r) for r in doc.get("resources", [])],
            params=params,
        )

    def _params(self, row: TaskRow) -> tuple[dict[str, Any], bool]:
        """The retry parameters, and whether the task can still be retried.

        Parameters that cannot be unsealed (the data directory's key was replaced) do not hide the
        task: it stays readable, and only its retry is lost.
        """
        try:
            return json.loads(self._box.open(row.sealed_params)), row.is_retryable_type
        except (SddcBackupError, ValueError) as exc:
            log.warning("task %s cannot be retried: %s", row.id, exc)
            return {}, False


def _select(query: TaskQuery) -> Select[TaskRow]:
    stmt = select(TaskRow)
    if query.statuses is not None:
        stmt = stmt.where(TaskRow.status.in_([s.value for s in query.statuses]))
    if query.type:
        stmt = stmt.where(TaskRow.type == query.type)
    if query.name_contains:
        stmt = stmt.where(TaskRow.name.icontains(query.name_contains, autoescape=True))
    if query.completed_after is not None:
        stmt = stmt.where(
            TaskRow.completed_at > query.completed_after,
            TaskRow.status.in_([TaskStatus.SUCCESSFUL.value, TaskStatus.FAILED.value]),
        )
    column = _ORDER_COLUMNS.get(query.order_by, TaskRow.created_at)
    ordered = (column.desc() if query.newest_first else column.asc()).nulls_last()
    return stmt.order_by(ordered, TaskRow.id)


def _has_resource(task: Task, resource_id: str | None, resource_type: str | None) -> bool:
    return any(
        (resource_id is None or r.resource_id == resource_id)
        and (resource_type is None or r.type.upper() == resource_type.upper())
        for r in task.resources
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__}")


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _stage(raw: dict[str, Any]) -> Stage:
    progress = raw.get("progress")
    created = _time(raw["created"])
    assert created is not None  # a stage is created when it starts
    return Stage(
        name=raw["name"],
        description=raw["description"],
        status=StepStatus(raw["status"]),
        created=created,
        completed=_time(raw.get("completed")),
        errors=[ErrorRecord(**e) for e in raw.get("errors", [])],
        progress=Progress(**progress) if progress else None,
    )


def _subtask(raw: dict[str, Any]) -> SubTask:
    return SubTask(
        name=raw["name"],
        description=raw["description"],
        status=StepStatus(raw["status"]),
        created=_time(raw.get("created")),
        completed=_time(raw.get("completed")),
        stages=[_stage(s) for s in raw.get("stages", [])],
        errors=[ErrorRecord(**e) for e in raw.get("errors", [])],
    )
