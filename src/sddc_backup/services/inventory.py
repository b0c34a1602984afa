"""The backups on the configured location: our extension, since the appliance cannot list them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sddc_backup.archive.manifest import parse_archive_name
from sddc_backup.domain.backup_config import BackupLocation
from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.domain.storage import ObjectInfo, Storage
from sddc_backup.persistence.catalog import BackupCatalog, CatalogEntry
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
    verified: datetime | None = None  # the last full check of this very file (see ``_verified``)


def not_configured() -> InvalidInputError:
    return InvalidInputError(
        "No backup location is configured.",
        error_code="BACKUP_LOCATION_NOT_CONFIGURED",
        remediation="Configure one with PATCH /v1/system/backup-configuration.",
    )


@dataclass(frozen=True)
class Listing:
    """One read of the location and the catalog: the backup files, and what they were made from
    (so that the retention view needs no second listing)."""

    files: list[BackupFile]
    objects: list[ObjectInfo]
    known: dict[str, CatalogEntry]


async def list_backups(
    location: BackupLocation | None,
    opener: Callable[[BackupLocation], Awaitable[Storage]],
    catalog: BackupCatalog,
) -> Listing:
    """Backup files (by our naming pattern), newest first, each with its sidecar digest if present
    and the time of its last full check."""
    if location is None:
        raise not_configured()
    storage = await opener(location)
    try:
        objects = await storage.list_objects()
        found = await _files(storage, objects)
    finally:
        await storage.close()
    known = await catalog.entries(location.catalog_key)
    files = [replace(b, verified=_verified(b, known.get(b.name))) for b in found]
    return Listing(files, objects, known)


def _verified(found: BackupFile, entry: CatalogEntry | None) -> datetime | None:
    """When the file was last decrypted and checked member by member against its manifest, provided
    it is still that file: the same size and modification time (as the location reports them, so
    that the two clocks need not agree), and the sidecar still names the digest that was checked."""
    if entry is None or entry.verified is None:
        return None
    if (entry.size, entry.sha256, entry.modified) != (found.size, found.sha256, found.modified):
        return None
    return entry.verified


async def _files(storage: Storage, objects: list[ObjectInfo]) -> list[BackupFile]:
    names = {o.name for o in objects}
    found = []
    for obj in objects:
        created = parse_archive_name(obj.name)
        if created is None:
            continue
        digest = await sidecar_digest(storage, obj.name) if obj.name + SIDECAR in names else None
        found.append(BackupFile(obj.name, obj.size, created, obj.modified, digest))
    return sorted(found, key=lambda b: (b.created or b.modified, b.name), reverse=True)


async def sidecar_digest(storage: Storage, name: str) -> str | None:
    """The digest that ``<name>.sha256`` names for ``name``; ``None`` without a usable sidecar."""
    try:
        data = b"".join([c async for c in storage.get(name + SIDECAR, 0, MAX_SIDECAR)])
    except ObjectNotFoundError:
        return None  # removed since the listing (retention at work)
    text = data.decode(errors="replace")
    digest, _, listed = text.strip().partition("  ")
    return digest if len(digest) == 64 and listed == name else None
