"""The backup task: ``POST /v1/backups/tasks``, as the appliance does it, and more carefully.

The archive streams straight to the configured location (no local copy), written and sent by a child
process so that the API keeps its own CPU (``archive_upload``). After the upload the stored
file is checked (its size, and the digest of what was sent against the writer's own), the ``.sha256``
sidecar is written, and only then is the task SUCCESSFUL. A failed or cancelled backup leaves nothing
that looks like a finished backup: the upload is atomic, and a stored file that fails its check is
deleted. One backup or restore runs at a time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sddc_backup.archive.manifest import archive_name, base_name, sidecar_text
from sddc_backup.domain.backup_config import BackupConfiguration
from sddc_backup.domain.clock import Clock
from sddc_backup.domain.errors import InvalidInputError, SddcBackupError
from sddc_backup.domain.storage import Storage
from sddc_backup.domain.tasks import Resource, Task
from sddc_backup.persistence.catalog import BackupCatalog, CatalogEntry
from sddc_backup.services.appliance import ApplianceLayout
from sddc_backup.services.archive_upload import UploadJob, upload_archive
from sddc_backup.services.archives import metadata_for
from sddc_backup.services.audit import audit
from sddc_backup.services.exclusive import BACKUP_TYPE, EXCLUSIVE_TYPES, busy_code, busy_error
from sddc_backup.services.locations import STALE_AFTER
from sddc_backup.services.quiesce import Quiesce
from sddc_backup.services.retention import apply_retention
from sddc_backup.storage.errors import IntegrityError, ObjectNotFoundError, StorageError
from sddc_backup.storage.store import BytesSource
from sddc_backup.tasks.controller import TaskController
from sddc_backup.tasks.engine import TaskEngine
from sddc_backup.tasks.kinds import TaskKind

TASK_TYPE = BACKUP_TYPE
SUBTASKS = (
    ("Prepare backup", "Check the configuration and collect the service's settings"),
    ("Back up SDDC Manager", "Archive, compress, encrypt and upload the appliance's state"),
    ("Verify backup", "Check the stored file, write its checksum, and record it in the catalog"),
    ("Apply the retention policy", "Delete the backups that no retention rule keeps"),
)
TRIGGERS = {"MANUAL": "", "SCHEDULED": " (scheduled)", "STATE_CHANGE": " (after a change)"}


class RetentionFailedError(SddcBackupError):
    error_code = "RETENTION_FAILED"


@dataclass(frozen=True)
class BackupPlan:
    """What a backup of this appliance needs, supplied by the composition root."""

    fqdn: str
    level: int
    own_settings: Callable[[], Awaitable[dict[str, bytes]]]
    layout: ApplianceLayout  # what the archive holds; plain data, handed to the upload's process
    client_keys: tuple[str, ...]  # the SFTP client keys the upload's process logs in with
    protected_paths: Sequence[Path]
    open_storage: Callable[[BackupConfiguration], Awaitable[Storage]]
    catalog: BackupCatalog
    quiesce: Quiesce


class BackupService:
    def __init__(
        self,
        engine: TaskEngine,
        clock: Clock,
        configuration: Callable[[], Awaitable[BackupConfiguration]],
        plan: BackupPlan,
    ) -> None:
        self._engine, self._clock, self._configuration, self._plan = engine, clock, configuration, plan

    @property
    def resource(self) -> Resource:
        """The appliance that this service backs up, as a VCF ``Resource``."""
        return Resource(resource_id=self._plan.fqdn, type="SDDC_MANAGER", fqdn=self._plan.fqdn)

    def task_kind(self) -> TaskKind:
        return TaskKind(
            type=TASK_TYPE,
            name="SDDC Manager backup",
            body=self._run,
            subtasks=SUBTASKS,
            exclusive_with=EXCLUSIVE_TYPES,
            busy_code=busy_code(TASK_TYPE),
        )

    async def start(self, resource_types: Sequence[str], trigger: str = "MANUAL") -> Task:
        """Start a backup of ``SDDC_MANAGER``; 400 when it is not configured or another runs.

        ``trigger`` (``MANUAL``, ``SCHEDULED``, ``STATE_CHANGE``) is shown in the task's name."""
        if not resource_types or any(t != "SDDC_MANAGER" for t in resource_types):
            raise InvalidInputError(
                "Only the resource type SDDC_MANAGER can be backed up here.",
                error_code="INVALID_BACKUP_RESOURCE",
                remediation='Send {"elements":[{"resourceType":"SDDC_MANAGER"}]}.',
            )
        config = await self._configuration()
        if not config.is_configured:
            raise InvalidInputError(
                "Backups are not configured: a backup location and a passphrase are needed.",
                error_code="BACKUP_NOT_CONFIGURED",
                remediation="Configure them with PATCH /v1/system/backup-configuration.",
            )
        running = self._engine.running_type(EXCLUSIVE_TYPES)
        if running is not None:
            raise busy_error(running)
        self._refuse_if_unresolved()
        name = f"SDDC Manager backup{TRIGGERS[trigger]}"
        task = await self._engine.submit(
            TASK_TYPE, {"trigger": trigger}, name=name, resources=[self.resource]
        )
        audit("backup.start", self._plan.fqdn, "started", task_id=task.id, trigger=trigger)
        return task

    def _refuse_if_unresolved(self) -> None:
        if self._plan.quiesce.paused:
            raise InvalidInputError(
                "A restore has not been finished or rolled back: the appliance may be half restored.",
                error_code="RESTORE_RECOVERY_PENDING",
                remediation="Restart sddc-backup: at start-up it finishes or rolls back that restore.",
            )

    async def _run(self, ctrl: TaskController, params: Mapping[str, object]) -> None:
        self._refuse_if_unresolved()  # also for a retry, which does not pass through start()
        await ctrl.subtask(SUBTASKS[0][0])
        await ctrl.stage("Read the backup configuration")
        config = await self._configuration()
        if not config.is_configured or config.passphrase is None:
            raise InvalidInputError(
                "Backups are no longer configured.",
                error_code="BACKUP_NOT_CONFIGURED",
                remediation="Configure a location and a passphrase, then start the backup again.",
            )
        await ctrl.stage("Collect the service's settings")
        own = await self._plan.own_settings()
        storage = await self._plan.open_storage(config)
        try:
            created = await _unused_time(storage, self._plan.fqdn, self._clock.now())
            name = archive_name(self._plan.fqdn, created)
            preview = self._plan.layout.components(own, created.timestamp())  # for the metadata; cheap
            assert config.location is not None  # is_configured
            job = UploadJob(
                name,
                base_name(name),
                metadata_for(self._plan.fqdn, created, preview, self._plan.protected_paths),
                self._plan.layout,
                own,
                config.passphrase.encode(),
                config.location,
                self._plan.client_keys,
                mtime=created.timestamp(),
                level=self._plan.level,
            )
            await ctrl.stage("Remove stale temporary files")
            with suppress(StorageError):  # best effort: temporaries are hidden from listings anyway
                await storage.remove_stale_temporaries(created - STALE_AFTER)
            await ctrl.subtask(SUBTASKS[1][0])
            await ctrl.stage("Upload the archive", f"Stream {name} to the backup location")
            uploaded = await upload_archive(job, lambda sent: ctrl.progress(sent, None))
            result = uploaded.result
            await ctrl.subtask(SUBTASKS[2][0])
            await ctrl.stage("Check the stored file")
            await _check_stored(storage, name, uploaded.size)
            await ctrl.stage("Write the checksum sidecar")
            await storage.put(name + ".sha256", BytesSource(sidecar_text(name, result.sha256).encode()))
            await ctrl.stage("Record the backup in the catalog")
            info = result.info
            entry = CatalogEntry(name, info.size, result.sha256, created, info.modified, ctrl.task_id, None)
            await self._plan.catalog.record(config.location.catalog_key, entry)
            await ctrl.subtask(SUBTASKS[3][0])
            try:
                await apply_retention(
                    ctrl, storage, config, self._plan.fqdn, self._plan.catalog, self._clock.now(), {name}
                )
            except Exception as exc:
                message, remediation = (
                    (exc.message, exc.remediation)
                    if isinstance(exc, SddcBackupError)
                    else (str(exc), "Check the service log.")
                )
                raise RetentionFailedError(
                    f"The backup {name} was written and checked, but applying the retention policy "
                    f"failed: {message}",
                    remediation=f"{remediation} The new backup is safe; the next backup applies the "
                    "policy again.",
                ) from exc
        finally:
            await storage.close()


async def _unused_time(storage: Storage, fqdn: str, now: datetime) -> datetime:
    """``now``, or the first later second whose file name is free: names have a resolution of one
    second, and a backup must never replace the one taken just before it."""
    moment = now.replace(microsecond=0)
    while True:
        try:
            await storage.stat(archive_name(fqdn, moment))
        except ObjectNotFoundError:
            return moment
        moment += timedelta(seconds=1)


async def _check_stored(storage: Storage, name: str, size: int) -> None:
    """The stored file must be the whole archive the writer produced (the upload has already checked
    it against what was sent, and hashed it); a file that fails is deleted, so that nothing
    incomplete looks like a backup."""
    stored = await storage.stat(name)
    if stored.size != size:
        with suppress(StorageError):
            await storage.delete(name)
        raise IntegrityError(f"{name} on the backup location is not the archive that was written.")
