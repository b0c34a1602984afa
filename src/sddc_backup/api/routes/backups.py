"""``POST /v1/backups/tasks``: take a backup now; follow it with ``GET /v1/tasks/{id}``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field

from sddc_backup.api.deps import Operator, Services
from sddc_backup.api.responses import vcf_json
from sddc_backup.api.schemas.base import VcfModel
from sddc_backup.api.schemas.errors import Error, error_responses
from sddc_backup.api.schemas.tasks import Resource, Task

router = APIRouter(prefix="/v1/backups", tags=["Backups"])


class BackupResource(VcfModel):
    resource_type: str


class BackupSpec(VcfModel):
    elements: list[BackupResource] = Field(default_factory=list)


class BackupTask(VcfModel):
    id: str
    name: str
    status: str
    resources: list[Resource] = Field(default_factory=list)
    errors: list[Error] = Field(default_factory=list)


class VerificationSpec(VcfModel):
    file_name: str = Field(description="a fileName from GET /v1/backups")


@router.post(
    "/verifications", status_code=202, response_model=Task, responses=error_responses(400, 401, 403, 429, 500)
)
async def verify_backup(spec: VerificationSpec, services: Services, _: Operator) -> JSONResponse:
    """Our extension: read a backup back from the location and check it completely (decryption, every
    member against the manifest, the file against its sidecar). Follow it with ``GET /v1/tasks/{id}``;
    ``GET /v1/backups`` then shows ``manifestVerified``."""
    return vcf_json(Task.of(await services.verifications.start(spec.file_name)), 202)


@router.post(
    "/retention", status_code=202, response_model=Task, responses=error_responses(400, 401, 403, 429, 500)
)
async def apply_retention(services: Services, _: Operator) -> JSONResponse:
    """Our extension: apply the retention policy now. Each deletion is a stage of the task;
    ``GET /v1/backups`` shows beforehand what the policy keeps and why."""
    return vcf_json(Task.of(await services.retention.start()), 202)


@router.post(
    "/tasks", status_code=202, response_model=BackupTask, responses=error_responses(400, 401, 403, 429, 500)
)
async def start_backup(spec: BackupSpec, services: Services, _: Operator) -> JSONResponse:
    """Back up SDDC_MANAGER to the configured location; 400 when not configured or when a backup or
    restore is already running (``BACKUP_IN_PROGRESS``)."""
    task = await services.backups.start([e.resource_type for e in spec.elements])
    full = Task.of(task)
    body = BackupTask(
        id=full.id, name=full.name, status=full.status, resources=full.resources, errors=full.errors
    )
    return vcf_json(body, 202)
