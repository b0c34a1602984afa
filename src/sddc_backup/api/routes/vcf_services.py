"""``/v1/vcf-services``: the service's components and their status (recovery tooling waits on it)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from sddc_backup.api.deps import Reader, Services
from sddc_backup.api.responses import vcf_json
from sddc_backup.api.schemas.errors import error_responses
from sddc_backup.api.schemas.misc import PageOfVcfService, VcfService
from sddc_backup.api.schemas.tasks import PageMetadata

router = APIRouter(prefix="/v1/vcf-services", tags=["Services"])


@router.get("", response_model=PageOfVcfService, responses=error_responses(401, 429, 500))
async def list_vcf_services(services: Services, _: Reader) -> JSONResponse:
    """``OPERATIONS_MANAGER`` is UP as soon as the API accepts requests."""
    components = await services.readiness.components()
    elements = [VcfService(id=c.id, name=c.name, version=c.version, status=c.status) for c in components]
    meta = PageMetadata(page_number=0, page_size=len(elements), total_elements=len(elements), total_pages=1)
    return vcf_json(PageOfVcfService(elements=elements, page_metadata=meta))
