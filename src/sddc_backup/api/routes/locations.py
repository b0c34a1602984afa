"""Backup locations: validating a configuration without saving it, looking up an SFTP server's
fingerprint, and listing the backups on the configured location (our extension)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from sddc_backup.api.deps import Operator, Reader, Services
from sddc_backup.api.responses import vcf_json
from sddc_backup.api.schemas.configuration import BackupConfigurationSpec
from sddc_backup.api.schemas.errors import Error, error_responses
from sddc_backup.api.schemas.locations import (
    Backup,
    BackupLocationFingerprint,
    BackupRetention,
    HostKey,
    PageOfBackup,
    Validation,
    ValidationCheck,
)
from sddc_backup.api.schemas.tasks import PageMetadata
from sddc_backup.domain.clock import to_vcf_timestamp
from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.services import inventory
from sddc_backup.services.locations import CheckStatus, host_keys

router = APIRouter(tags=["Backup locations"])
ERRORS = error_responses(400, 401, 403, 429, 500)


@router.post(
    "/v1/system/backup-configuration/validations",
    status_code=202,
    response_model=Validation,
    responses=ERRORS,
)
async def validate_backup_configuration(
    spec: BackupConfigurationSpec, services: Services, _: Operator
) -> JSONResponse:
    """Run every check on the spec (merged into the stored configuration) and save nothing."""
    checks = await services.configuration.validate(spec.to_domain())
    failed = any(c.status is CheckStatus.FAILED and c.severity == "ERROR" for c in checks)
    body = Validation(
        id=str(uuid.uuid4()),
        description="Validate backup configuration",
        execution_status="COMPLETED",
        result_status="FAILED" if failed else "SUCCEEDED",
        validation_checks=[
            ValidationCheck(
                description=c.description,
                severity=c.severity,
                result_status=c.status.value,
                error_response=Error.of(c.error) if c.error else None,
                detail=c.detail or None,
            )
            for c in checks
        ],
    )
    return vcf_json(body, 202)


@router.get(
    "/v1/system/backup-configuration/backup-locations",
    response_model=BackupLocationFingerprint,
    responses=ERRORS,
)
async def get_backup_location_fingerprint(
    _: Reader,
    server_ip: Annotated[str | None, Query(alias="serverIp", description="IP address or FQDN")] = None,
    server_ip_upper: Annotated[str | None, Query(alias="serverIP", include_in_schema=False)] = None,
    port: Annotated[str, Query(description="SSH port")] = "22",
) -> JSONResponse:
    """The SFTP server's host-key fingerprint (ECDSA first) and every key it offers. Only the SSH key
    exchange takes place: no user name or password is sent."""
    server = server_ip or server_ip_upper
    if not server:
        raise InvalidInputError(
            "serverIp is required.", error_code="MISSING_REQUIRED_FIELD", remediation="Add ?serverIp=HOST."
        )
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InvalidInputError(
            f"port: {port!r} is not a TCP port.", error_code="INVALID_PORT", remediation="Use 1 to 65535."
        )
    keys = await host_keys(server, int(port))
    body = BackupLocationFingerprint(
        server=server,
        port=int(port),
        ssh_fingerprint=keys[0][1] if keys else None,
        host_keys=[HostKey(key_type=t, ssh_fingerprint=f) for t, f in keys],
    )
    return vcf_json(body)


@router.get("/v1/backups", response_model=PageOfBackup, responses=ERRORS)
async def list_backups(
    services: Services,
    _: Reader,
    retention: Annotated[
        str | None, Query(description="'preview': the retention view (also shown without it)")
    ] = None,
) -> JSONResponse:
    """Our extension: the backup files on the configured location, newest first, with whether each
    was checked completely and whether the retention policy keeps it (nothing is deleted here)."""
    if retention not in (None, "preview"):
        raise InvalidInputError(
            f"retention={retention!r} is not supported.",
            remediation="Use retention=preview, or leave it out: the listing shows the retention view.",
            context={"field": "retention"},
        )
    config = await services.configuration.get()
    listing = await inventory.list_backups(config.location, services.locations.open, services.catalog)
    plan = services.retention.preview(config, listing)
    kept = {
        name: BackupRetention(keep=bool(why) or plan.policy is None, reasons=sorted(why))
        for name, why in plan.reasons.items()
    }
    elements = [
        Backup(
            file_name=b.name,
            size=b.size,
            creation_timestamp=to_vcf_timestamp(b.created) if b.created else None,
            modification_timestamp=to_vcf_timestamp(b.modified),
            sha256=b.sha256,
            manifest_verified=b.verified is not None,
            verification_timestamp=to_vcf_timestamp(b.verified) if b.verified else None,
            retention=kept.get(b.name),
        )
        for b in listing.files
    ]
    pages = 1 if elements else 0
    meta = PageMetadata(
        page_number=0, page_size=len(elements), total_elements=len(elements), total_pages=pages
    )
    return vcf_json(PageOfBackup(elements=elements, page_metadata=meta))
