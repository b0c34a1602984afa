"""``/v1/system/backup-configuration``: read the configuration, and set (PUT) or edit (PATCH) it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from sddc_backup.api.deps import Admin, Reader, Services
from sddc_backup.api.responses import vcf_json
from sddc_backup.api.schemas.configuration import BackupConfiguration, BackupConfigurationSpec
from sddc_backup.api.schemas.errors import error_responses
from sddc_backup.api.schemas.tasks import Task

router = APIRouter(prefix="/v1/system/backup-configuration", tags=["Backup configuration"])
ERRORS = error_responses(400, 401, 403, 429, 500)


@router.get("", response_model=BackupConfiguration, responses=error_responses(401, 429, 500))
async def get_backup_configuration(services: Services, _: Reader) -> JSONResponse:
    """The configuration; a set password or passphrase shows as a mask, never in clear."""
    return vcf_json(BackupConfiguration.of(await services.configuration.get()))


@router.put("", response_model=Task, responses=ERRORS)
async def set_backup_configuration(
    spec: BackupConfigurationSpec, services: Services, _: Admin
) -> JSONResponse:
    """Replace the configuration. Fields left out are reset, except the passphrase, which is kept."""
    task = await services.configuration.change(spec.to_domain(), partial=False)
    return vcf_json(Task.of(task), 200)


@router.patch("", status_code=202, response_model=Task, responses=ERRORS)
async def update_backup_configuration(
    spec: BackupConfigurationSpec, services: Services, _: Admin
) -> JSONResponse:
    """Edit the configuration: a full spec replaces it, a partial one changes only the fields it names."""
    task = await services.configuration.change(spec.to_domain(), partial=True)
    return vcf_json(Task.of(task), 202)
