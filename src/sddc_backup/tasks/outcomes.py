"""How a task's run ends: the error record of an exception, and the end it gives the task."""

from __future__ import annotations

from datetime import datetime

from sddc_backup.domain.errors import SddcBackupError
from sddc_backup.domain.tasks import ErrorRecord, Task, TaskStatus


def error_record(error: SddcBackupError) -> ErrorRecord:
    return ErrorRecord(
        error_code=error.error_code,
        message=error.message,
        remediation=error.remediation,
        arguments=list(error.arguments),
        context=dict(error.context),
    )


def end_task(task: Task, status: TaskStatus, error: ErrorRecord | None, now: datetime) -> None:
    if status is TaskStatus.SUCCESSFUL:
        task.succeed(now)
    elif status is TaskStatus.CANCELLED and error is not None:
        task.cancel(error, now)
    else:
        task.fail(error or interrupted(task), now)


def interrupted(task: Task) -> ErrorRecord:
    again = f"retry it with PATCH /v1/tasks/{task.id}" if task.is_retryable_type else "start it again"
    return ErrorRecord(
        error_code="TASK_INTERRUPTED",
        message="The service stopped while this task was running.",
        remediation=f"Check the state it acted on, then {again}.",
    )
