"""The state store on SQLite and on a real PostgreSQL cluster: migrations, sealed secrets, round trips."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, text

from sddc_backup.domain.backup_config import (
    BackupConfiguration,
    BackupLocation,
    BackupSchedule,
    Frequency,
    LocationProtocol,
    RetentionPolicy,
)
from sddc_backup.domain.errors import InternalError, InvalidInputError
from sddc_backup.domain.tasks import ErrorRecord, Resource, SubTask, Task, TaskStatus
from sddc_backup.persistence.config_store import BackupConfigurationStore
from sddc_backup.persistence.database import Database, async_url
from sddc_backup.persistence.secret_box import SecretBox
from sddc_backup.persistence.settings_store import SettingsStore
from sddc_backup.persistence.task_store import TaskQuery, TaskStore
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        url = cluster.create_database(f"store_{uuid.uuid4().hex[:10]}")
    db = Database.open(url)
    await db.migrate()
    await db.migrate()  # a second start finds the schema current
    yield db
    await db.close()


def test_urls_get_the_async_driver() -> None:
    assert async_url("sqlite:////var/lib/x.db") == "sqlite+aiosqlite:////var/lib/x.db"
    assert async_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert async_url("postgres://u@h:5433/db") == "postgresql+psycopg://u@h:5433/db"
    with pytest.raises(InvalidInputError):
        async_url("mysql://u@h/db")


def test_secret_box_round_trip_and_key_file(tmp_path: Path) -> None:
    box = SecretBox.from_key_file(tmp_path / "k")
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    first, second = box.seal("VMw@re1!"), box.seal("VMw@re1!")
    assert first != second and "VMw@re1!" not in first
    assert box.open(first) == "VMw@re1!"
    assert SecretBox.from_key_file(tmp_path / "k").open(second) == "VMw@re1!"
    with pytest.raises(InternalError) as caught:
        SecretBox.from_key_file(tmp_path / "other").open(first)
    assert caught.value.error_code == "SECRET_UNREADABLE"


async def test_schema_is_at_the_newest_revision(database: Database) -> None:
    async with database.engine.connect() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert version == "0002"


async def test_configuration_round_trips_with_sealed_secrets(database: Database, tmp_path: Path) -> None:
    box = SecretBox.from_key_file(tmp_path / "secret.key")
    settings = SettingsStore(database.sessions)
    store = BackupConfigurationStore(settings, box)
    assert await store.get() == BackupConfiguration()
    config = BackupConfiguration(
        location=BackupLocation(
            LocationProtocol.SFTP, "/backups", "sftp.test", 22, "svc", "S3cret!pw", "SHA256:" + "x" * 43
        ),
        schedule=BackupSchedule(Frequency.WEEKLY, True, True, ("MONDAY",), 2, 30, RetentionPolicy(10, 2, 15)),
        passphrase="VMw@re1!VMw@re1!",
    )
    await store.put(config, NOW)
    assert await store.get() == config
    raw = await settings.get("backup_configuration")
    assert raw is not None
    assert "S3cret!pw" not in str(raw) and "VMw@re1!VMw@re1!" not in str(raw)


def task(task_id: str, status: TaskStatus, created: datetime, **kw: object) -> Task:
    return Task(
        id=task_id,
        name=f"Task {task_id}",
        type=str(kw.get("type", "T")),
        status=status,
        created=created,
        completed=created + timedelta(seconds=1) if status.is_terminal else None,
        is_cancellable=True,
        is_retryable_type=True,
        subtasks=[SubTask("s", "d")],
        errors=[ErrorRecord("E", "m", "r", ["a"], {"k": "v"})] if status is TaskStatus.FAILED else [],
        resources=[Resource(str(kw.get("rid", "r1")), "SDDC_MANAGER")],
        params={"p": 1},
    )


async def test_task_store_round_trips_and_filters(database: Database, tmp_path: Path) -> None:
    store = TaskStore(database.sessions, SecretBox.from_key_file(tmp_path / "secret.key"))
    tasks = [
        task("a", TaskStatus.SUCCESSFUL, NOW),
        task("b", TaskStatus.FAILED, NOW + timedelta(minutes=1), type="U"),
        task("c", TaskStatus.IN_PROGRESS, NOW + timedelta(minutes=2), rid="r2"),
    ]
    for t in tasks:
        await store.save(t)
    assert await store.get("b") == tasks[1]
    ids = lambda q: [t.id for t in q]  # noqa: E731
    assert ids(await store.find(TaskQuery())) == ["c", "b", "a"]
    assert ids(await store.find(TaskQuery(newest_first=False))) == ["a", "b", "c"]
    assert ids(await store.find(TaskQuery(statuses=(TaskStatus.FAILED,)))) == ["b"]
    assert ids(await store.find(TaskQuery(type="U"))) == ["b"]
    assert ids(await store.find(TaskQuery(name_contains="Task c"))) == ["c"]
    assert ids(await store.find(TaskQuery(resource_id="r2"))) == ["c"]
    assert ids(await store.find(TaskQuery(completed_after=NOW))) == ["b", "a"]
    assert ids(await store.unfinished()) == ["c"]
    tasks[2].fail(ErrorRecord("X", "m", "r"), NOW + timedelta(minutes=3))
    await store.save(tasks[2])
    assert await store.unfinished() == []


async def test_saving_a_stored_task_is_one_statement(database: Database, tmp_path: Path) -> None:
    # A running task is saved at every step; each statement is a round trip to the driver.
    store = TaskStore(database.sessions, SecretBox.from_key_file(tmp_path / "secret.key"))
    running = task("a", TaskStatus.IN_PROGRESS, NOW)
    await store.save(running)
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement.split(maxsplit=1)[0].upper())

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        running.fail(ErrorRecord("X", "m", "r"), NOW + timedelta(minutes=1))
        await store.save(running)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)
    assert statements == ["UPDATE"]
    assert await store.get("a") == running


async def test_a_replaced_key_loses_the_secrets_but_not_the_configuration_or_tasks(
    database: Database, tmp_path: Path
) -> None:
    original = SecretBox.from_key_file(tmp_path / "secret.key")
    replaced = SecretBox.from_key_file(tmp_path / "other.key")
    settings = SettingsStore(database.sessions)
    config = BackupConfiguration(
        location=BackupLocation(LocationProtocol.SFTP, "/b", "h", 22, "u", "S3cret!pw"),
        passphrase="VMw@re1!VMw@re1!",
    )
    await BackupConfigurationStore(settings, original).put(config, NOW)
    failed = task("t", TaskStatus.FAILED, NOW)
    await TaskStore(database.sessions, original).save(failed)

    read = await BackupConfigurationStore(settings, replaced).get()
    assert read.location is not None and read.location.server == "h" and read.location.password is None
    assert read.passphrase is None and not read.is_configured  # set them again to recover
    stored = await TaskStore(database.sessions, replaced).get("t")
    assert stored is not None and stored.status is TaskStatus.FAILED
    assert stored.params == {} and not stored.is_retryable


def test_processes_creating_a_key_at_once_all_get_the_same_complete_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from sddc_backup.persistence.key_files import read_or_create_key

    path = tmp_path / "fresh" / "token-signing.key"
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: read_or_create_key(path), range(32)))
    assert len(set(keys)) == 1 and len(keys[0]) == 32
    assert sorted(p.name for p in path.parent.iterdir()) == ["token-signing.key"]
    assert path.stat().st_mode & 0o777 == 0o600
