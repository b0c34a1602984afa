"""``Validation`` / ``ValidationCheck`` (VCF), the fingerprint lookup's ``BackupLocation``, and our
backup inventory (an extension: the appliance has no API to list backups)."""

from __future__ import annotations

from pydantic import Field

from sddc_backup.api.schemas.base import VcfModel
from sddc_backup.api.schemas.errors import Error
from sddc_backup.api.schemas.tasks import PageMetadata


class ValidationCheck(VcfModel):
    description: str
    severity: str
    result_status: str
    error_response: Error | None = None
    detail: str | None = Field(None, description="our extension: what the check found")


class Validation(VcfModel):
    id: str
    description: str
    execution_status: str
    result_status: str
    validation_checks: list[ValidationCheck]


class HostKey(VcfModel):
    key_type: str
    ssh_fingerprint: str


class BackupLocationFingerprint(VcfModel):
    """A ``BackupLocation`` with the server's fingerprint (ECDSA first), and every key it offers."""

    server: str
    port: int
    protocol: str = "SFTP"
    ssh_fingerprint: str | None = None
    host_keys: list[HostKey] = Field(default_factory=list, description="our extension")


class BackupRetention(VcfModel):
    keep: bool
    reasons: list[str] = Field(
        default_factory=list,
        description="MOST_RECENT, HOURLY, DAILY, NEWEST_SUCCESSFUL or PROTECTED; none: it goes next",
    )


class Backup(VcfModel):
    file_name: str
    size: int
    creation_timestamp: str | None = None
    modification_timestamp: str
    sha256: str | None = Field(None, description="from the .sha256 sidecar, when there is one")
    manifest_verified: bool = Field(
        False, description="the file was decrypted and every member checked against its manifest"
    )
    verification_timestamp: str | None = Field(None, description="when that check last passed")
    retention: BackupRetention | None = Field(
        None, description="for this appliance's backups: whether the retention policy keeps it, and why"
    )


class PageOfBackup(VcfModel):
    elements: list[Backup]
    page_metadata: PageMetadata
