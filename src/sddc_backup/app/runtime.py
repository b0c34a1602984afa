"""The composition root: builds the whole service from ``Settings``.

Everything that holds a resource (the database engine) is opened here and closed by ``Runtime.close``.
Local commands (``users``) and the server both start from a ``Runtime``.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sddc_backup.api.deps import ApiServices
from sddc_backup.app.settings import Settings
from sddc_backup.domain.backup_config import BackupConfiguration
from sddc_backup.domain.clock import Clock, SystemClock
from sddc_backup.domain.faults import FaultPlan
from sddc_backup.domain.storage import Storage
from sddc_backup.domain.tasks import Task
from sddc_backup.domain.throttle import LoginThrottle
from sddc_backup.domain.users import ADMIN_USERNAME
from sddc_backup.persistence.catalog import BackupCatalog
from sddc_backup.persistence.config_store import BackupConfigurationStore
from sddc_backup.persistence.database import Database
from sddc_backup.persistence.key_files import read_or_create_key
from sddc_backup.persistence.own_settings_store import OwnSettingsStore
from sddc_backup.persistence.secret_box import SecretBox
from sddc_backup.persistence.settings_store import SettingsStore
from sddc_backup.persistence.task_store import TaskStore
from sddc_backup.persistence.users import RefreshTokenStore, UserStore
from sddc_backup.services.appliance import ApplianceLayout
from sddc_backup.services.auth import Authenticator
from sddc_backup.services.backups import BackupPlan, BackupService
from sddc_backup.services.configuration import BackupConfigurationService
from sddc_backup.services.heap import trim_heap
from sddc_backup.services.locations import LocationAccess
from sddc_backup.services.metrics import ServiceMetrics
from sddc_backup.services.own_settings import own_settings_files
from sddc_backup.services.quiesce import Quiesce
from sddc_backup.services.readiness import Readiness
from sddc_backup.services.restore.commands import ServiceCommands
from sddc_backup.services.restore.database import DatabaseSwapper
from sddc_backup.services.restore.journal import JournalFile
from sddc_backup.services.restore.recovery import RecoveredRestore, recover_restore
from sddc_backup.services.restore.run import RestoreSetup
from sddc_backup.services.restore.service import RestoreService
from sddc_backup.services.restore.swaps import Swaps
from sddc_backup.services.retention import RetentionService
from sddc_backup.services.scheduler import Scheduler
from sddc_backup.services.users import UserAdmin
from sddc_backup.services.verification import VerificationService
from sddc_backup.tasks.engine import TaskEngine

_M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> None:
    """Let glibc keep at most ``MALLOC_ARENAS`` heaps, for all threads.

    By default every thread that allocates gets a heap of its own (up to eight per CPU). A backup or
    restore moves large buffers between several threads, and each heap keeps what it once held: the
    peak and the resting size of the service grow with the number of threads. Call it before any
    thread starts. ``MALLOC_ARENA_MAX`` in the environment, when set, wins.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    with suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def freeze_startup_objects() -> None:
    """Leave what exists once the service has started (modules, the application, its routes:
    over a hundred thousand objects that live as long as the process) out of every later garbage
    collection.

    Each full collection walked them all, a pause of tens of milliseconds in the event loop, and
    under a steady flow of requests those pauses made up most of the slowest answers.
    """
    gc.collect()
    gc.freeze()


def _give_back_freed_memory(_finished: Task) -> None:
    """What a finished task freed goes back to the system: glibc keeps it otherwise, and the resting
    size of the service would grow with every backup and restore."""
    trim_heap()


def prepare_data_dir(data_dir: Path) -> Path:
    """Create the data directory, readable by its owner only (it holds keys and the state store)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    return data_dir


async def _location_storage(locations: LocationAccess, config: BackupConfiguration) -> Storage:
    assert config.location is not None  # the backup task checks that a location is configured
    return await locations.open(config.location)


def _restore_service(
    settings: Settings,
    clock: Clock,
    engine: TaskEngine,
    layout: ApplianceLayout,
    configuration_store: BackupConfigurationStore,
    locations: LocationAccess,
    database: Database,
    box: SecretBox,
    catalog: BackupCatalog,
    quiesce: Quiesce,
) -> RestoreService:
    data_dir = settings.data_dir
    (data_dir / "restore").mkdir(mode=0o700, exist_ok=True)
    commands = ServiceCommands(
        stop=settings.services_stop,
        start=settings.services_start,
        check=settings.services_check,
        timeout=settings.services_timeout_seconds,
    )
    swaps = Swaps(
        JournalFile(data_dir / "restore-journal.json"),
        DatabaseSwapper(layout.postgres_dsn) if layout.postgres_dsn else None,
        commands,
        quiesce,
    )
    return RestoreService(
        engine,
        clock,
        RestoreSetup(
            fqdn=settings.fqdn,
            layout=layout,
            staging_root=data_dir / "restore-staging",
            allowed_dirs=settings.allowed_restore_dirs,
            swaps=swaps,
            own_settings=OwnSettingsStore(database.sessions, box),
            configuration=configuration_store.get,
            open_storage=locations.open,
            keep_users=(ADMIN_USERNAME,),
            catalog=catalog,
        ),
    )


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    database: Database
    users: UserAdmin
    engine: TaskEngine
    api: ApiServices
    configuration_store: BackupConfigurationStore
    user_store: UserStore
    layout: ApplianceLayout
    restore_swaps: Swaps
    own_settings: OwnSettingsStore
    scheduler: Scheduler
    metrics: ServiceMetrics
    _scheduler_task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        clock = clock or SystemClock()
        data_dir = prepare_data_dir(settings.data_dir)
        database = Database.open(settings.state_store_url)
        await database.bring_up_to_date()
        box = SecretBox.from_key_file(data_dir / "secret.key")
        user_store = UserStore(database.sessions)
        engine = TaskEngine(TaskStore(database.sessions, box), clock, FaultPlan.parse(settings.faults))
        metrics = ServiceMetrics(engine)
        engine.on_finished(metrics.task_ended)
        client_keys = tuple(str(k) for k in settings.sftp_client_keys)
        locations = LocationAccess(client_keys)
        configuration_store = BackupConfigurationStore(SettingsStore(database.sessions), box)
        configuration = BackupConfigurationService(
            configuration_store,
            engine,
            clock,
            settings.passphrase_policy,
            settings.fqdn,
            locations,
        )
        engine.register(configuration.task_kind())
        auth = Authenticator(
            user_store,
            RefreshTokenStore(database.sessions),
            clock,
            read_or_create_key(data_dir / "token-signing.key"),
            access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            throttle=LoginThrottle(
                max_failures=settings.login_max_failures,
                lockout=timedelta(seconds=settings.login_lockout_seconds),
            ),
        )
        catalog = BackupCatalog(database.sessions)
        quiesce = Quiesce()
        layout = ApplianceLayout(
            paths=tuple(settings.paths),
            postgres_dsn=settings.postgres_dsn.get_secret_value() if settings.postgres_dsn else None,
            sqlite_paths=tuple(settings.sqlite_paths),
            scratch=data_dir / "scratch",
        )
        backups = BackupService(
            engine,
            clock,
            configuration_store.get,
            BackupPlan(
                fqdn=settings.fqdn,
                level=settings.archive_compression_level,
                own_settings=lambda: own_settings_files(configuration_store, user_store),
                layout=layout,
                client_keys=client_keys,
                protected_paths=tuple(settings.paths),
                open_storage=lambda config: _location_storage(locations, config),
                catalog=catalog,
                quiesce=quiesce,
            ),
        )
        engine.register(backups.task_kind())
        restores = _restore_service(
            settings, clock, engine, layout, configuration_store, locations, database, box, catalog, quiesce
        )
        engine.register(restores.task_kind())
        scheduler = Scheduler(
            clock,
            configuration_store.get,
            backups,
            engine,
            restores.swaps.quiesce,
            SettingsStore(database.sessions),
            state_change_delay=settings.state_change_delay_seconds,
        )
        verifications = VerificationService(engine, clock, configuration_store.get, locations.open, catalog)
        engine.register(verifications.task_kind())
        retention = RetentionService(
            engine, clock, configuration_store.get, locations.open, catalog, settings.fqdn
        )
        engine.register(retention.task_kind())
        engine.on_finished(_give_back_freed_memory)
        api = ApiServices(
            auth=auth,
            configuration=configuration,
            backups=backups,
            restores=restores,
            verifications=verifications,
            retention=retention,
            locations=locations,
            catalog=catalog,
            engine=engine,
            readiness=Readiness(database.ping),
        )
        return cls(
            settings,
            clock,
            database,
            UserAdmin(user_store, clock),
            engine,
            api,
            configuration_store,
            user_store,
            layout,
            restores.swaps,
            restores.own_settings,
            scheduler,
            metrics,
        )

    async def recover(self) -> tuple[RecoveredRestore | None, list[Task]]:
        """Finish or roll back an interrupted restore, then resolve every other unfinished task."""
        restore = await recover_restore(self.restore_swaps, self.own_settings, self.engine)
        return restore, await self.engine.recover()

    def start_scheduler(self) -> None:
        """Run scheduled backups (and backups after changes) in the background until ``close``."""
        self._scheduler_task = asyncio.get_running_loop().create_task(self.scheduler.run())

    async def close(self) -> None:
        if self._scheduler_task is not None:
            self._scheduler_task.cancel()
            with suppress(asyncio.CancelledError):
                await self._scheduler_task
        await self.engine.shutdown()
        await self.database.close()
