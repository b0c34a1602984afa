"""The backup catalog: what this service wrote to each location, and when each file's content was
last verified (every member against the manifest, after decryption)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sddc_backup.persistence.tables import BackupRow


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    size: int
    sha256: str
    created: datetime
    modified: datetime  # the stored file's modification time, as the location reports it
    task_id: str | None
    verified: datetime | None


class BackupCatalog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(self, location: str, entry: CatalogEntry) -> None:
        """Add (or replace) the record of ``entry.name`` on ``location``."""
        async with self._sessions() as session, session.begin():
            row = await session.get(BackupRow, (location, entry.name))
            if row is None:
                row = BackupRow(location=location, name=entry.name)
                session.add(row)
            row.size, row.sha256, row.created_at = entry.size, entry.sha256, entry.created
            row.modified_at = entry.modified
            row.task_id, row.verified_at = entry.task_id, entry.verified

    async def mark_verified(
        self, location: str, name: str, sha256: str, modified: datetime, when: datetime
    ) -> bool:
        """Record a successful full check of the file whose digest is ``sha256`` (and modification time
        ``modified``); ``False`` when the catalog has no such file (or a different one of that name)."""
        async with self._sessions() as session, session.begin():
            row = await session.get(BackupRow, (location, name))
            if row is None or row.sha256 != sha256:
                return False
            row.verified_at, row.modified_at = when, modified
            return True

    async def mark_unverified(self, location: str, name: str) -> None:
        """A check of the file failed: it must no longer show as verified."""
        async with self._sessions() as session, session.begin():
            row = await session.get(BackupRow, (location, name))
            if row is not None:
                row.verified_at = None

    async def entries(self, location: str) -> dict[str, CatalogEntry]:
        async with self._sessions() as session:
            rows = await session.scalars(select(BackupRow).where(BackupRow.location == location))
            return {
                r.name: CatalogEntry(
                    r.name, r.size, r.sha256, r.created_at, r.modified_at, r.task_id, r.verified_at
                )
                for r in rows
            }

    async def forget(self, location: str, name: str) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.get(BackupRow, (location, name))
            if row is not None:
                await session.delete(row)
