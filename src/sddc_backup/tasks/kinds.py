"""What the engine runs and where it keeps tasks: ``TaskKind`` (registered by ``app``) and the
``TaskRepository`` port (``persistence.task_store``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from sddc_backup.domain.tasks import Task
from sddc_backup.domain.users import Permission
from sddc_backup.persistence.task_store import TaskQuery
from sddc_backup.tasks.controller import TaskController

TaskBody = Callable[[TaskController, Mapping[str, object]], Awaitable[None]]


@dataclass(frozen=True)
class TaskKind:
    """A registered kind of task: its VCF ``type``, display name, planned subtasks and body."""

    type: str
    name: str
    body: TaskBody
    subtasks: tuple[tuple[str, str], ...] = ()
    cancellable: bool = True
    retryable: bool = True
    permission: Permission = Permission.OPERATE  # what a caller needs to retry it
    exclusive_with: tuple[str, ...] = ()  # task types that may not run at the same time
    busy_code: str = "OPERATION_IN_PROGRESS"  # the errorCode of what it blocks while it runs


class TaskRepository(Protocol):
    async def save(self, task: Task) -> None: ...
    async def get(self, task_id: str) -> Task | None: ...
    async def find(self, query: TaskQuery) -> list[Task]: ...
    async def unfinished(self) -> list[Task]: ...
