"""The connection to the state store and its migrations.

``Database.open`` accepts the URL forms operators write (``sqlite:///path``, ``postgresql://…``) and
picks the async driver for them. ``migrate`` brings the schema to the newest alembic revision; it is
safe to run at every start. ``bring_up_to_date`` does the same for the server without loading alembic
into it: it reads the schema's revision, and only when that is not ``HEAD_REVISION`` runs ``migrate``
in a child process. Alembic, with the templating and highlighting libraries it loads, would otherwise
stay in the server's memory for good (about 10 MB) after a few milliseconds of use.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from sddc_backup.domain.errors import InternalError, InvalidInputError

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD_REVISION = "0002"  # the newest revision in MIGRATIONS (a test holds the two together)
_MIGRATE_MODULE = "sddc_backup.persistence.migrate"

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
        """Runs alembic's upgrade to the newest revision in this process."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade_to_head)

    async def revision(self) -> str | None:
        """The schema's alembic revision; None for a store that has no schema yet."""
        async with self.engine.connect() as conn:
            if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
                return None
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()

    async def bring_up_to_date(self) -> None:
        """Brings the schema to ``HEAD_REVISION``: nothing to do at most starts; otherwise ``migrate``
        in a child process, given the URL on its standard input (never in its arguments, which any
        local user can read)."""
        if await self.revision() == HEAD_REVISION:
            return
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            _MIGRATE_MODULE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        url = self.engine.url.render_as_string(hide_password=False)
        _, err = await child.communicate(url.encode())
        if child.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines() or ["no output"]
            raise InternalError(
                f"Upgrading the state store's schema failed (exit status {child.returncode}): {lines[-1]}",
                error_code="STATE_STORE_MIGRATION_FAILED",
                remediation="Check that the state store is reachable and writable by this service, then "
                "start it again: the upgrade goes on from the revision the store is at.",
            )

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
    from alembic import command  # here, not at the top: the server does not load alembic at all
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
