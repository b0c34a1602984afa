"""``/v1/tasks``: list, read, retry (PATCH) and cancel (DELETE) tasks."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from sddc_backup.api.deps import Operator, Reader, Services
from sddc_backup.api.responses import empty, vcf_json
from sddc_backup.api.schemas.errors import error_responses
from sddc_backup.api.schemas.tasks import PageMetadata, PageOfTask, Task
from sddc_backup.domain.errors import InvalidInputError, PermissionDeniedError
from sddc_backup.domain.tasks import TaskStatus
from sddc_backup.domain.users import role_allows
from sddc_backup.persistence.task_store import ORDERABLE, TaskQuery

router = APIRouter(prefix="/v1/tasks", tags=["Tasks"])
LIST_ERRORS = error_responses(400, 401, 429, 500)
ERRORS_409 = error_responses(401, 403, 404, 409, 429, 500)
MAX_PAGE_SIZE = 100


def _bad(name: str, message: str, remediation: str) -> InvalidInputError:
    return InvalidInputError(f"{name}: {message}", remediation=remediation, context={"field": name})


def _statuses(text: str | None) -> tuple[TaskStatus, ...] | None:
    """Parse ``taskStatus``: comma-separated, any case, 'In Progress' == IN_PROGRESS."""
    if not text:
        return None
    found = []
    for part in text.split(","):
        try:
            found.append(TaskStatus(part.strip().upper().replace(" ", "_")))
        except ValueError:
            raise _bad(
                "taskStatus", f"'{part}' is not a task status", "Use " + ", ".join(TaskStatus) + "."
            ) from None
    return tuple(found)


@router.get("", response_model=PageOfTask, responses=LIST_ERRORS)
async def list_tasks(
    services: Services,
    _: Reader,
    limit: Annotated[int | None, Query(ge=1, description="at most this many tasks, newest first")] = None,
    task_status: Annotated[str | None, Query(alias="taskStatus")] = None,
    task_type: Annotated[str | None, Query(alias="taskType")] = None,
    resource_id: Annotated[str | None, Query(alias="resourceId")] = None,
    resource_type: Annotated[str | None, Query(alias="resourceType")] = None,
    completed_after: Annotated[int | None, Query(alias="completedAfter", description="epoch ms")] = None,
    page_number: Annotated[int, Query(alias="pageNumber", ge=0, description="0-based")] = 0,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=MAX_PAGE_SIZE)] = MAX_PAGE_SIZE,
    order_direction: Annotated[str, Query(alias="orderDirection", description="ASC or DESC")] = "DESC",
    order_by: Annotated[str, Query(alias="orderBy")] = "creationTimestamp",
    task_name: Annotated[str | None, Query(alias="taskName", description="substring")] = None,
    do_live_refresh: Annotated[bool, Query(alias="doLiveRefresh")] = False,
) -> JSONResponse:
    """Tasks, newest first, with the appliance's filters and paging (``doLiveRefresh`` is always on)."""
    if order_direction.upper() not in ("ASC", "DESC"):
        raise _bad("orderDirection", f"'{order_direction}' is not a direction", "Use ASC or DESC.")
    if order_by not in ORDERABLE:
        raise _bad("orderBy", f"'{order_by}' is not orderable", "Use " + ", ".join(ORDERABLE) + ".")
    after = None
    if completed_after is not None:
        try:
            after = datetime.fromtimestamp(completed_after / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise _bad("completedAfter", "is out of range", "Use milliseconds since 1970.") from None
    query = TaskQuery(
        statuses=_statuses(task_status),
        type=task_type,
        name_contains=task_name,
        resource_id=resource_id,
        resource_type=resource_type,
        completed_after=after,
        newest_first=order_direction.upper() == "DESC",
        order_by=order_by,
    )
    tasks = await services.engine.find(query)
    if limit is not None:
        tasks = tasks[:limit]
    page = tasks[page_number * page_size : (page_number + 1) * page_size]
    meta = PageMetadata(
        page_number=page_number,
        page_size=page_size,
        total_elements=len(tasks),
        total_pages=math.ceil(len(tasks) / page_size),
    )
    return vcf_json(PageOfTask(elements=[Task.of(t) for t in page], page_metadata=meta))


# PowerVCF asks for /v1/tasks/ with a trailing slash.
router.add_api_route("/", list_tasks, methods=["GET"], include_in_schema=False)


@router.get("/{task_id}", response_model=Task, responses=error_responses(401, 404, 429, 500))
async def get_task(task_id: str, services: Services, _: Reader) -> JSONResponse:
    return vcf_json(Task.of(await services.engine.get(task_id)))


@router.patch("/{task_id}", responses=ERRORS_409)
async def retry_task(task_id: str, services: Services, principal: Operator) -> Response:
    """Retry a FAILED task under the same id; 409 when the task is not a failed, retryable one."""
    task = await services.engine.get(task_id)
    needed = services.engine.permission_for(task.type)
    if not role_allows(principal.role, needed):
        raise PermissionDeniedError(f"Retrying a {task.type} task needs the {needed.value} permission.")
    await services.engine.retry(task_id)
    return empty(200)


@router.delete("/{task_id}", responses=ERRORS_409)
async def cancel_task(task_id: str, services: Services, _: Operator) -> Response:
    """Cancel an IN_PROGRESS, cancellable task; 409 otherwise."""
    await services.engine.cancel(task_id)
    return empty(200)
