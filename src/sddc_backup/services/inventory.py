"""The backups on the configured location: our extension, since the appliance cannot list them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sddc_backup.archive.manifest import parse_archive_name
from sddc_backup.domain.backup_config import BackupLocation
from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.domain.storage import Storage
from sddc_backup.storage.errors import ObjectNotFoundError

SIDECAR = ".sha256"
MAX_SIDECAR = 4096


@dataclass(frozen=True)
class BackupFile:
    name: str
    size: int
    created: datetime | None
    modified: datetime
    sha256: str | None


def not_configured() -> InvalidInputError:
    return InvalidInputError(
        "No backup location is configured.",
        error_code="BACKUP_LOCATION_NOT_CONFIGURED",
        remediation="Configure one with PATCH /v1/system/backup-configuration.",
    )


async def list_backups(
    location: BackupLocation | None, opener: Callable[[BackupLocation], Awaitable[Storage]]
) -> list[BackupFile]:
    """Backup files (by our naming pattern), newest first, each with its sidecar digest if present."""
    if location is None:
        raise not_configured()
    storage = await opener(location)
    try:
        return await _list(storage)
    finally:
        await storage.close()


async def _list(storage: Storage) -> list[BackupFile]:
    objects = await storage.list_objects()
    names = {o.name for o in objects}
    found = []
    for obj in objects:
        created = parse_archive_name(obj.name)
        if created is None:
            continue
        digest = await _sidecar(storage, obj.name) if obj.name + SIDECAR in names else None
        found.append(BackupFile(obj.name, obj.size, created, obj.modified, digest))
    return sorted(found, key=lambda b: (b.created or b.modified, b.name), reverse=True)


async def _sidecar(storage: Storage, name: str) -> str | None:
    try:
        data = b"".join([c async for c in storage.get(name + SIDECAR, 0, MAX_SIDECAR)])
    except ObjectNotFoundError:
        return None  # removed since the listing (retention at work)
    text = data.decode(errors="replace")
    digest, _, listed = text.strip().partition("  ")
    return digest if len(digest) == 64 and listed == name else None
