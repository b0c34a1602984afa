"""The restore's commit (own settings, users, commit record in one transaction) and the backup catalog,
on SQLite and on a real PostgreSQL cluster."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from sddc_backup.domain.backup_config import (
    BackupConfiguration,
    BackupLocation,
    BackupSchedule,
    Frequency,
    LocationProtocol,
    RetentionPolicy,
)
from sddc_backup.domain.users import Role, User
from sddc_backup.persistence.catalog import BackupCatalog, CatalogEntry
from sddc_backup.persistence.config_store import BackupConfigurationStore
from sddc_backup.persistence.database import Database
from sddc_backup.persistence.own_settings_store import COMMIT_KEY, OwnSettingsStore
from sddc_backup.persistence.secret_box import SecretBox
from sddc_backup.persistence.settings_store import SettingsStore
from sddc_backup.persistence.users import RefreshTokenStore, UserStore
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 27, 8, 0, 0, 123456, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
ADMIN = "admin@local"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        url = cluster.create_database(f"restore_{uuid.uuid4().hex[:10]}")
    db = Database.open(url)
    await db.migrate()
    yield db
    await db.close()


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.from_key_file(tmp_path / "secret.key")


LIVE_CONFIG = BackupConfiguration(
    location=BackupLocation(LocationProtocol.SFTP, "/live", "live.test", 22, "svc", "Live!pw-1"),
    passphrase="Live!passphrase-1",
)
RESTORED_CONFIG = BackupConfiguration(
    location=BackupLocation(
        LocationProtocol.SFTP, "/backups", "sftp.test", 2222, "backup", "Restored!pw-2", "SHA256:" + "y" * 43
    ),
    schedule=BackupSchedule(Frequency.HOURLY, True, False, (), None, 15, RetentionPolicy(5, 1, 7)),
    passphrase="Restored!passphrase-2",
)


def user(name: str, role: Role, minutes: int = 0) -> User:
    return User(name, role, NOW - timedelta(days=30, minutes=minutes))


class Appliance:
    """The service's own settings as a restore finds them: a configuration, three users, their tokens."""

    def __init__(self, database: Database, box: SecretBox) -> None:
        self.settings = SettingsStore(database.sessions)
        self.config = BackupConfigurationStore(self.settings, box)
        self.users = UserStore(database.sessions)
        self.tokens = RefreshTokenStore(database.sessions)
        self.own = OwnSettingsStore(database.sessions, box)

    async def populate(self) -> None:
        await self.config.put(LIVE_CONFIG, NOW)
        for name, role, password_hash in [
            (ADMIN, Role.ADMIN, "hash-admin-live"),
            ("alice@local", Role.OPERATOR, "hash-alice-live"),
            ("bob@local", Role.VIEWER, "hash-bob-live"),
        ]:
            assert await self.users.add(user(name, role), password_hash)
            await self.tokens.add(f"token-{name}", name, NOW, LATER + timedelta(days=1))

    async def state(self) -> tuple[object, ...]:
        return (
            await self.config.get(),
            await self.users.export(),
            {
                t: await self.tokens.owner(t, NOW)
                for t in ("token-admin@local", "token-alice@local", "token-bob@local")
            },
            await self.settings.get(COMMIT_KEY),
        )


@pytest.fixture
async def appliance(database: Database, box: SecretBox) -> Appliance:
    found = Appliance(database, box)
    await found.populate()
    return found


BACKUP_USERS = [
    (user(ADMIN, Role.VIEWER, 5), "hash-admin-from-backup"),
    (user("alice@local", Role.VIEWER, 6), "hash-alice-from-backup"),
    (user("carol@local", Role.OPERATOR, 7), "hash-carol-from-backup"),
]


async def test_replace_keeps_the_named_users_replaces_the_others_and_commits(appliance: Appliance) -> None:
    assert not await appliance.own.committed("restore-1")
    await appliance.own.replace(RESTORED_CONFIG, BACKUP_USERS, (ADMIN,), "restore-1", LATER)

    assert await appliance.config.get() == RESTORED_CONFIG
    assert await appliance.users.export() == [
        (user(ADMIN, Role.ADMIN), "hash-admin-live"),  # kept as it was, not the backup's
        (user("alice@local", Role.VIEWER, 6), "hash-alice-from-backup"),
        (user("carol@local", Role.OPERATOR, 7), "hash-carol-from-backup"),
    ]
    assert await appliance.tokens.owner("token-admin@local", NOW) == ADMIN
    assert await appliance.tokens.owner("token-alice@local", NOW) is None
    assert await appliance.tokens.owner("token-bob@local", NOW) is None
    assert await appliance.own.committed("restore-1")
    assert not await appliance.own.committed("restore-2")
    assert await appliance.settings.get(COMMIT_KEY) == {
        "restoreId": "restore-1",
        "committedAt": LATER.isoformat(),
    }


async def test_the_restored_configuration_is_stored_sealed(appliance: Appliance) -> None:
    await appliance.own.replace(RESTORED_CONFIG, BACKUP_USERS, (ADMIN,), "restore-1", LATER)
    raw = str(await appliance.settings.get("backup_configuration"))
    assert "Restored!pw-2" not in raw and "Restored!passphrase-2" not in raw
    assert "sftp.test" in raw


async def test_a_failure_inside_the_transaction_changes_nothing(appliance: Appliance) -> None:
    before = await appliance.state()
    twice = [*BACKUP_USERS, (user("carol@local", Role.VIEWER), "hash-carol-again")]
    with pytest.raises(IntegrityError):  # raised by the last statements, after the deletes ran
        await appliance.own.replace(RESTORED_CONFIG, twice, (ADMIN,), "restore-1", LATER)
    assert await appliance.state() == before
    assert not await appliance.own.committed("restore-1")


async def test_a_later_restore_replaces_the_commit_record(appliance: Appliance) -> None:
    await appliance.own.replace(RESTORED_CONFIG, BACKUP_USERS, (ADMIN,), "restore-1", LATER)
    await appliance.own.replace(LIVE_CONFIG, BACKUP_USERS[:1], (ADMIN,), "restore-2", LATER + timedelta(1))
    assert not await appliance.own.committed("restore-1")
    assert await appliance.own.committed("restore-2")
    assert await appliance.config.get() == LIVE_CONFIG
    assert [u.username for u in await appliance.users.list()] == [ADMIN]


async def test_without_users_to_keep_every_user_and_session_is_the_backups(appliance: Appliance) -> None:
    await appliance.own.replace(RESTORED_CONFIG, BACKUP_USERS[1:], (), "restore-1", LATER)
    assert [u.username for u in await appliance.users.list()] == ["alice@local", "carol@local"]
    assert await appliance.tokens.owner("token-admin@local", NOW) is None


# -- the backup catalog -------------------------------------------------------------------------------

LOCATION = "SFTP://backup@sftp.test:22/backups"
OTHER = "LOCAL:///var/backups"


def entry(name: str, **changes: object) -> CatalogEntry:
    found = CatalogEntry(
        name=name,
        size=123_456_789_012,
        sha256="a" * 64,
        created=NOW,
        modified=NOW + timedelta(seconds=3),
        task_id="task-1",
        verified=None,
    )
    return replace(found, **changes)  # type: ignore[arg-type]


@pytest.fixture
def catalog(database: Database) -> BackupCatalog:
    return BackupCatalog(database.sessions)


async def test_record_adds_and_replaces_per_location(catalog: BackupCatalog) -> None:
    assert await catalog.entries(LOCATION) == {}
    await catalog.record(LOCATION, entry("b1.tar.gz"))
    await catalog.record(LOCATION, entry("b2.tar.gz", task_id=None, verified=LATER))
    await catalog.record(OTHER, entry("b1.tar.gz", size=1))
    assert await catalog.entries(LOCATION) == {
        "b1.tar.gz": entry("b1.tar.gz"),
        "b2.tar.gz": entry("b2.tar.gz", task_id=None, verified=LATER),
    }
    await catalog.record(LOCATION, entry("b1.tar.gz", sha256="b" * 64, size=7))
    assert (await catalog.entries(LOCATION))["b1.tar.gz"] == entry("b1.tar.gz", sha256="b" * 64, size=7)
    assert await catalog.entries(OTHER) == {"b1.tar.gz": entry("b1.tar.gz", size=1)}


async def test_mark_verified_needs_the_same_digest(catalog: BackupCatalog) -> None:
    await catalog.record(LOCATION, entry("b1.tar.gz"))
    touched = NOW + timedelta(minutes=5)
    assert not await catalog.mark_verified(LOCATION, "b1.tar.gz", "c" * 64, touched, LATER)
    assert not await catalog.mark_verified(LOCATION, "missing.tar.gz", "a" * 64, touched, LATER)
    assert not await catalog.mark_verified(OTHER, "b1.tar.gz", "a" * 64, touched, LATER)
    assert await catalog.entries(LOCATION) == {"b1.tar.gz": entry("b1.tar.gz")}
    assert await catalog.mark_verified(LOCATION, "b1.tar.gz", "a" * 64, touched, LATER)
    assert await catalog.entries(LOCATION) == {
        "b1.tar.gz": entry("b1.tar.gz", modified=touched, verified=LATER)
    }


async def test_mark_unverified_and_forget(catalog: BackupCatalog) -> None:
    await catalog.record(LOCATION, entry("b1.tar.gz", verified=LATER))
    await catalog.record(OTHER, entry("b1.tar.gz", verified=LATER))
    await catalog.mark_unverified(LOCATION, "b1.tar.gz")
    await catalog.mark_unverified(LOCATION, "missing.tar.gz")
    assert (await catalog.entries(LOCATION))["b1.tar.gz"].verified is None
    assert (await catalog.entries(OTHER))["b1.tar.gz"].verified == LATER
    await catalog.forget(LOCATION, "b1.tar.gz")
    await catalog.forget(LOCATION, "b1.tar.gz")
    assert await catalog.entries(LOCATION) == {}
    assert list(await catalog.entries(OTHER)) == ["b1.tar.gz"]
