"""An in-process state store on a real SQLite file, for tests of the engine and the stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sddc_backup.persistence.database import Database
from sddc_backup.persistence.secret_box import SecretBox
from sddc_backup.persistence.task_store import TaskStore


@asynccontextmanager
async def sqlite_database(directory: Path) -> AsyncIterator[Database]:
    db = Database.open(f"sqlite:///{directory / 'state.db'}")
    await db.migrate()
    try:
        yield db
    finally:
        await db.close()


def task_store(db: Database, directory: Path) -> TaskStore:
    return TaskStore(db.sessions, SecretBox.from_key_file(directory / "secret.key"))
