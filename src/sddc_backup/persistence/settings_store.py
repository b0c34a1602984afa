"""A small key-value store for the service's own settings (the backup configuration among them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sddc_backup.persistence.tables import SettingRow


class SettingsStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, key: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = await session.get(SettingRow, key)
            return None if row is None else dict(row.value)

    async def put(self, key: str, value: dict[str, Any], now: datetime) -> None:
        """Replace the value of ``key`` in one transaction."""
        async with self._sessions() as session, session.begin():
            await put_setting(session, key, value, now)


async def put_setting(session: AsyncSession, key: str, value: dict[str, Any], now: datetime) -> None:
    """Replace the value of ``key`` within the caller's transaction."""
    row = await session.get(SettingRow, key)
    if row is None:
        session.add(SettingRow(key=key, value=value, updated_at=now))
    else:
        row.value = value
        row.updated_at = now
