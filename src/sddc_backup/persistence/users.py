"""Stored users and refresh tokens."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sddc_backup.domain.users import Role, User
from sddc_backup.persistence.tables import RefreshTokenRow, UserRow


def _user(row: UserRow) -> User:
    return User(username=row.username, role=Role(row.role), created=row.created_at)


def user_row(user: User, password_hash: str) -> UserRow:
    return UserRow(
        username=user.username, password_hash=password_hash, role=user.role.value, created_at=user.created
    )


class UserStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, username: str) -> tuple[User, str] | None:
        """The user and its password hash, or ``None``."""
        async with self._sessions() as session:
            row = await session.get(UserRow, username)
            return None if row is None else (_user(row), row.password_hash)

    async def list(self) -> list[User]:
        async with self._sessions() as session:
            rows = await session.scalars(select(UserRow).order_by(UserRow.username))
            return [_user(r) for r in rows]

    async def export(self) -> builtins.list[tuple[User, str]]:
        """Every user with its password hash, for the backup of the service's own settings."""
        async with self._sessions() as session:
            rows = await session.scalars(select(UserRow).order_by(UserRow.username))
            return [(_user(r), r.password_hash) for r in rows]

    async def count(self) -> int:
        return len(await self.list())

    async def add(self, user: User, password_hash: str) -> bool:
        """Insert ``user``; ``False`` if the name is taken."""
        async with self._sessions() as session, session.begin():
            if await session.get(UserRow, user.username) is not None:
                return False
            session.add(user_row(user, password_hash))
        return True

    async def set_password_hash(self, username: str, password_hash: str) -> bool:
        async with self._sessions() as session, session.begin():
            row = await session.get(UserRow, username)
            if row is None:
                return False
            row.password_hash = password_hash
            # A new password ends every session opened with the old one.
            await session.execute(delete(RefreshTokenRow).where(RefreshTokenRow.username == username))
        return True

    async def remove(self, username: str) -> bool:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(RefreshTokenRow).where(RefreshTokenRow.username == username))
            result = await session.execute(delete(UserRow).where(UserRow.username == username))
            return bool(result.rowcount)  # type: ignore[attr-defined]


class RefreshTokenStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, token_id: str, username: str, created: datetime, expires: datetime) -> None:
        async with self._sessions() as session, session.begin():
            session.add(
                RefreshTokenRow(id=token_id, username=username, created_at=created, expires_at=expires)
            )

    async def owner(self, token_id: str, now: datetime) -> str | None:
        """The user a live refresh token belongs to; ``None`` if unknown or expired."""
        async with self._sessions() as session:
            row = await session.get(RefreshTokenRow, token_id)
            if row is None or row.expires_at <= now:
                return None
            return row.username

    async def remove(self, token_id: str) -> bool:
        async with self._sessions() as session, session.begin():
            result = await session.execute(delete(RefreshTokenRow).where(RefreshTokenRow.id == token_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def purge_expired(self, now: datetime) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(RefreshTokenRow).where(RefreshTokenRow.expires_at <= now))
