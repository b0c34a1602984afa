"""Bringing the state store's schema up to date: alembic runs in a child process, and only when the
schema is not at the newest revision, so that the server never loads it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from sddc_backup.domain.errors import InternalError
from sddc_backup.persistence import database as database_module
from sddc_backup.persistence.database import HEAD_REVISION, MIGRATIONS, Database
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]

# Brings a new store up to date twice, then prints its revision and whether alembic was loaded.
PROGRAM = """
import asyncio, sys
from sddc_backup.persistence.database import Database

async def main():
    db = Database.open(sys.argv[1])
    await db.bring_up_to_date()
    await db.bring_up_to_date()
    print(await db.revision(), "alembic" in sys.modules)
    await db.close()

asyncio.run(main())
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a state store with no schema yet."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"store_{uuid.uuid4().hex[:10]}")


def test_head_revision_is_the_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_a_new_store_is_brought_to_the_newest_revision_without_alembic_in_the_caller(new_store: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, new_store],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [HEAD_REVISION, "False"]


async def test_a_store_at_the_newest_revision_starts_no_child(
    new_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database.open(new_store)
    try:
        assert await db.revision() is None
        await db.bring_up_to_date()
        assert await db.revision() == HEAD_REVISION

        async def no_child(*args: object, **kwargs: object) -> None:
            raise AssertionError("a child was started for a store already at the newest revision")

        monkeypatch.setattr(database_module.asyncio, "create_subprocess_exec", no_child)
        await db.bring_up_to_date()
    finally:
        await db.close()


async def test_a_store_from_a_newer_release_is_refused_with_the_reason(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        await db.bring_up_to_date()
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(InternalError) as caught:
            await db.bring_up_to_date()
        assert caught.value.error_code == "STATE_STORE_MIGRATION_FAILED"
        assert "9999" in str(caught.value)
        assert await db.revision() == "9999"  # nothing was changed
    finally:
        await db.close()
