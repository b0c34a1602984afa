"""The task model: what the engine persists and the API shows as a VCF ``Task``.

A task moves PENDING -> IN_PROGRESS -> one of SUCCESSFUL, FAILED, CANCELLED; a task that was never
run (a scheduled backup that could not start) is recorded SKIPPED. A FAILED task may be retried,
which takes it back to IN_PROGRESS under the same id. Subtasks and their stages move the same way, and
every transition is one of the methods below, so the rules live in one place. The methods are pure:
they take the time as an argument and change only the object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"  # never ran: a scheduled run that another operation was in the way of

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.SUCCESSFUL, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.SKIPPED)


class StepStatus(StrEnum):
    """Statuses of subtasks and stages (VCF has no CANCELLED here: a cancelled step is FAILED)."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class ResolutionStatus(StrEnum):
    RESOLVED = "RESOLVED"
    UNRESOLVED = "UNRESOLVED"


@dataclass
class ErrorRecord:
    """An error as stored on a task: the fields of a VCF ``Error`` that a task keeps."""

    error_code: str
    message: str
    remediation: str
    arguments: list[str] = field(default_factory=list)
    context: dict[str, str] = field(default_factory=dict)
    reference_token: str | None = None


@dataclass
class Progress:
    completed: int
    total: int | None
    unit: str = "bytes"


@dataclass
class Stage:
    name: str
    description: str
    status: StepStatus
    created: datetime
    completed: datetime | None = None
    errors: list[ErrorRecord] = field(default_factory=list)
    progress: Progress | None = None


@dataclass
class SubTask:
    name: str
    description: str
    status: StepStatus = StepStatus.PENDING
    created: datetime | None = None
    completed: datetime | None = None
    stages: list[Stage] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)

    def _finish(self, status: StepStatus, now: datetime, error: ErrorRecord | None = None) -> None:
        for stage in self.stages:
            if stage.status is StepStatus.IN_PROGRESS:
                stage.status = status
                stage.completed = now
                if error is not None:
                    stage.errors.append(error)
        self.status = status
        self.completed = now
        if error is not None:
            self.errors.append(error)


@dataclass
class Resource:
    resource_id: str
    type: str
    name: str | None = None
    fqdn: str | None = None


@dataclass
class Task:
    """One unit of background work. ``params`` is what a retry needs to run the body again."""

    id: str
    name: str
    type: str
    status: TaskStatus
    created: datetime
    is_cancellable: bool
    is_retryable_type: bool
    completed: datetime | None = None
    subtasks: list[SubTask] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    params: dict[str, object] = field(default_factory=dict)
    attempts: int = 0

    @property
    def is_retryable(self) -> bool:
        return self.is_retryable_type and self.status is TaskStatus.FAILED

    @property
    def resolution_status(self) -> ResolutionStatus | None:
        if self.status is TaskStatus.FAILED:
            return ResolutionStatus.UNRESOLVED
        if self.status.is_terminal:
            return ResolutionStatus.RESOLVED
        return None

    @property
    def progress(self) -> Progress | None:
        """The progress of the stage now running, if it reports any."""
        stage = self.current_stage
        return stage.progress if stage else None

    @property
    def current_subtask(self) -> SubTask | None:
        return next((s for s in self.subtasks if s.status is StepStatus.IN_PROGRESS), None)

    @property
    def current_stage(self) -> Stage | None:
        sub = self.current_subtask
        if sub is None:
            return None
        return next((s for s in reversed(sub.stages) if s.status is StepStatus.IN_PROGRESS), None)

    # -- transitions -------------------------------------------------------------------------------

    def start(self, now: datetime) -> None:
        """Begin (or, after a failure, begin again) running the body."""
        self.status = TaskStatus.IN_PROGRESS
        self.completed = None
        self.errors = []
        self.attempts += 1
        for sub in self.subtasks:
            sub.status, sub.created, sub.completed, sub.stages, sub.errors = (
                StepStatus.PENDING,
                None,
                None,
                [],
                [],
            )

    def begin_subtask(self, name: str, now: datetime) -> SubTask:
        """Finish the running subtask successfully and start ``name`` (added if it was not planned)."""
        current = self.current_subtask
        if current is not None:
            current._finish(StepStatus.SUCCESSFUL, now)
        sub = next((s for s in self.subtasks if s.name == name), None)
        if sub is None:
            sub = SubTask(name=name, description=name)
            self.subtasks.append(sub)
        sub.status = StepStatus.IN_PROGRESS
        sub.created = now
        sub.completed = None
        return sub

    def begin_stage(self, name: str, description: str, now: datetime) -> Stage:
        """Finish the running stage of the running subtask and start a new one."""
        sub = self.current_subtask or self.begin_subtask(self.name, now)
        for stage in sub.stages:
            if stage.status is StepStatus.IN_PROGRESS:
                stage.status = StepStatus.SUCCESSFUL
                stage.completed = now
        stage = Stage(name=name, description=description, status=StepStatus.IN_PROGRESS, created=now)
        sub.stages.append(stage)
        return stage

    def report_progress(self, completed: int, total: int | None, unit: str) -> None:
        stage = self.current_stage
        if stage is not None:
            stage.progress = Progress(completed=completed, total=total, unit=unit)

    def succeed(self, now: datetime) -> None:
        current = self.current_subtask
        if current is not None:
            current._finish(StepStatus.SUCCESSFUL, now)
        for sub in self.subtasks:
            if sub.status is StepStatus.PENDING:
                sub.status = StepStatus.SKIPPED
        self._end(TaskStatus.SUCCESSFUL, now)

    def fail(self, error: ErrorRecord, now: datetime) -> None:
        """End as FAILED; the error is recorded on the task and on the step that was running."""
        current = self.current_subtask
        if current is not None:
            current._finish(StepStatus.FAILED, now, error)
        self.errors.append(error)
        self._end(TaskStatus.FAILED, now)

    def cancel(self, error: ErrorRecord, now: datetime) -> None:
        current = self.current_subtask
        if current is not None:
            current._finish(StepStatus.FAILED, now, error)
        self.errors.append(error)
        self._end(TaskStatus.CANCELLED, now)

    def skip(self, reason: ErrorRecord, now: datetime) -> None:
        """End a task that never ran, saying why; every planned step is SKIPPED."""
        for sub in self.subtasks:
            sub.status = StepStatus.SKIPPED
        self.errors = [reason]
        self._end(TaskStatus.SKIPPED, now)

    def conclude_after_restart(self, error: ErrorRecord | None, note: str, now: datetime) -> None:
        """End a task whose work a later start of the service finished (``error`` is ``None``: it ends
        SUCCESSFUL, every unfinished step marked done with the ``note``) or undid (FAILED with only
        ``error``, which replaces what an earlier stop recorded)."""
        if error is None:
            for sub in self.subtasks:
                for stage in sub.stages:
                    if stage.status is StepStatus.IN_PROGRESS:
                        stage.status, stage.completed = StepStatus.SUCCESSFUL, now
                if sub.status is not StepStatus.SUCCESSFUL:
                    sub.stages.append(Stage(note, note, StepStatus.SUCCESSFUL, now, now))
                    sub.status, sub.completed, sub.errors = StepStatus.SUCCESSFUL, now, []
                    sub.created = sub.created or now
            self.errors = []
            self._end(TaskStatus.SUCCESSFUL, now)
            return
        current = self.current_subtask
        if current is not None:
            current._finish(StepStatus.FAILED, now, error)
        self.errors = [error]
        self._end(TaskStatus.FAILED, now)

    def _end(self, status: TaskStatus, now: datetime) -> None:
        self.status = status
        self.completed = now
