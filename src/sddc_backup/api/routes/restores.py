"""``/v1/restores/tasks``: restore the appliance from a backup file, and follow the restore.

Both bearer tokens and HTTP Basic with a local user are accepted (PowerVCF's restore cmdlets send
Basic). The task reports the restore-style statuses: ``Pending``, ``In Progress``, ``Successful``,
``Failed``.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field

from sddc_backup.api.deps import Admin, Reader, Services
from sddc_backup.api.responses import vcf_json
from sddc_backup.api.routes.backups import BackupResource
from sddc_backup.api.schemas.base import VcfModel
from sddc_backup.api.schemas.errors import error_responses
from sddc_backup.api.schemas.tasks import Task
from sddc_backup.domain.errors import NotFoundError
from sddc_backup.domain.restore import TASK_TYPE

router = APIRouter(prefix="/v1/restores", tags=["Restores"])


class Encryption(VcfModel):
    passphrase: str = Field(description="The passphrase the backup was encrypted with; never stored")


class RestoreSpec(VcfModel):
    elements: list[BackupResource] = Field(default_factory=list)
    backup_file: str = Field(
        description="An absolute path in an allowed directory (SDDC_BACKUP_RESTORE_DIRS), "
        "or the name of a file on the backup location"
    )
    encryption: Encryption


@router.post(
    "/tasks", status_code=202, response_model=Task, responses=error_responses(400, 401, 403, 429, 500)
)
async def start_restore(spec: RestoreSpec, services: Services, _: Admin) -> JSONResponse:
    """Restore SDDC_MANAGER from ``backupFile``; 400 for a file that cannot be restored, or when a
    backup or restore is already running. Poll the task at ``GET /v1/restores/tasks/{id}``."""
    task = await services.restores.start(
        [e.resource_type for e in spec.elements], spec.backup_file, spec.encryption.passphrase
    )
    return vcf_json(Task.of(task), 202)


@router.get("/tasks/{task_id}", response_model=Task, responses=error_responses(401, 404, 429, 500))
async def get_restore_task(task_id: str, services: Services, _: Reader) -> JSONResponse:
    task = await services.engine.get(task_id)
    if task.type != TASK_TYPE:
        raise NotFoundError(f"Restore task {task_id} not found.", error_code="TASK_NOT_FOUND")
    return vcf_json(Task.of(task))
