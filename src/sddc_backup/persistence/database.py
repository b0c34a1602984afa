"""The connection to the state store and its migrations.

``Database.open`` accepts the URL forms operators write (``sqlite:///path``, ``postgresql://…``) and
picks the async driver for them. ``migrate`` brings the schema to the newest alembic revision; it is
safe to run at every start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from sddc_backup.domain.errors import InvalidInputError

MIGRATIONS = Path(__file__).parent / "migrations"

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
}


def async_url(url: str) -> str:
    """``url`` with the async driver this service uses for its backend."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise InvalidInputError(
            f"the state store must be SQLite or PostgreSQL, not '{backend}'",
            error_code="INVALID_SETTING",
            remediation="Set SDDC_BACKUP_DATABASE_URL to sqlite:///PATH or postgresql://USER@HOST/DB.",
        )
    return parsed.set(drivername=_ASYNC_DRIVERS[backend]).render_as_string(hide_password=False)


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)

    @classmethod
    def open(cls, url: str) -> Database:
        full = async_url(url)
        if full.startswith("sqlite"):
            engine = create_async_engine(full, connect_args={"timeout": 30})
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            engine = create_async_engine(full, pool_pre_ping=True)
        return cls(engine)

    async def migrate(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade_to_head)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure means "not reachable" to a readiness probe
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (API polls) proceed while a task body writes; foreign keys are off by default.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _upgrade_to_head(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
