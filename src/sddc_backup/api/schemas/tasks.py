"""``Task``, ``SubTask``, ``Stage``, ``Resource``, ``PageOfTask``, and their conversion from the domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from sddc_backup.api.schemas.base import VcfModel
from sddc_backup.api.schemas.errors import Error
from sddc_backup.domain.clock import to_vcf_timestamp
from sddc_backup.domain.restore import TASK_TYPE as RESTORE_TASK_TYPE
from sddc_backup.domain.restore import restore_status_label
from sddc_backup.domain.tasks import (
    Progress,
)
from sddc_backup.domain.tasks import (
    Stage as DomainStage,
)
from sddc_backup.domain.tasks import (
    SubTask as DomainSubTask,
)
from sddc_backup.domain.tasks import (
    Task as DomainTask,
)


class TaskProgress(VcfModel):
    """Our extension: how far the running stage is. Clients that do not know it ignore it."""

    completed: int
    total: int | None = None
    unit: str

    @classmethod
    def of(cls, progress: Progress | None) -> TaskProgress | None:
        if progress is None:
            return None
        return cls(completed=progress.completed, total=progress.total, unit=progress.unit)


class Resource(VcfModel):
    resource_id: str
    type: str
    name: str | None = None
    fqdn: str | None = None


class Stage(VcfModel):
    name: str
    type: str | None = None
    description: str
    status: str
    creation_timestamp: str
    completion_timestamp: str | None = None
    errors: list[Error] = Field(default_factory=list)
    progress: TaskProgress | None = None

    @classmethod
    def of(cls, stage: DomainStage) -> Stage:
        return cls(
            name=stage.name,
            type=stage.name.upper().replace(" ", "_"),
            description=stage.description,
            status=stage.status.value,
            creation_timestamp=to_vcf_timestamp(stage.created),
            completion_timestamp=_ts(stage.completed),
            errors=[Error.of_record(e) for e in stage.errors],
            progress=TaskProgress.of(stage.progress),
        )


class SubTask(VcfModel):
    name: str
    type: str | None = None
    description: str
    status: str
    creation_timestamp: str | None = None
    completion_timestamp: str | None = None
    stages: list[Stage] = Field(default_factory=list)
    errors: list[Error] = Field(default_factory=list)

    @classmethod
    def of(cls, sub: DomainSubTask, restore_style: bool = False) -> SubTask:
        return cls(
            name=sub.name,
            type=sub.name.upper().replace(" ", "_"),
            description=sub.description,
            status=restore_status_label(sub.status) if restore_style else sub.status.value,
            creation_timestamp=_ts(sub.created),
            completion_timestamp=_ts(sub.completed),
            stages=[Stage.of(s) for s in sub.stages],
            errors=[Error.of_record(e) for e in sub.errors],
        )


class Task(VcfModel):
    id: str
    name: str
    type: str
    status: str
    creation_timestamp: str
    completion_timestamp: str | None = None
    sub_tasks: list[SubTask] = Field(default_factory=list)
    errors: list[Error] = Field(default_factory=list)
    resources: list[Resource] = Field(default_factory=list)
    resolution_status: str | None = None
    is_cancellable: bool
    is_retryable: bool
    progress: TaskProgress | None = None

    @classmethod
    def of(cls, task: DomainTask) -> Task:
        """The VCF view; a restore task and its phases use the restore-style status spellings."""
        restore_style = task.type == RESTORE_TASK_TYPE
        return cls(
            id=task.id,
            name=task.name,
            type=task.type,
            status=restore_status_label(task.status) if restore_style else task.status.value,
            creation_timestamp=to_vcf_timestamp(task.created),
            completion_timestamp=_ts(task.completed),
            sub_tasks=[SubTask.of(s, restore_style) for s in task.subtasks],
            errors=[Error.of_record(e) for e in task.errors],
            resources=[
                Resource(resource_id=r.resource_id, type=r.type, name=r.name, fqdn=r.fqdn)
                for r in task.resources
            ],
            resolution_status=task.resolution_status.value if task.resolution_status else None,
            is_cancellable=task.is_cancellable and not task.status.is_terminal,
            is_retryable=task.is_retryable,
            progress=TaskProgress.of(task.progress),
        )


class PageMetadata(VcfModel):
    page_number: int
    page_size: int
    total_elements: int
    total_pages: int


class PageOfTask(VcfModel):
    elements: list[Task]
    page_metadata: PageMetadata


def _ts(moment: datetime | None) -> str | None:
    return None if moment is None else to_vcf_timestamp(moment)
