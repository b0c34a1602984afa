"""Verifying a stored backup (our extension): read it back from the location, decrypt it, check every
member against the manifest and the file against its ``.sha256`` sidecar, and record the check in the
catalog, where ``GET /v1/backups`` shows it as ``manifestVerified``. Nothing is written anywhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import nullcontext

from sddc_backup.archive.errors import CorruptArchiveError, ManifestMismatchError, UnsafeMemberError
from sddc_backup.archive.manifest import parse_archive_name
from sddc_backup.archive.reader import DiscardingSink
from sddc_backup.domain.backup_config import BackupConfiguration, BackupLocation
from sddc_backup.domain.clock import Clock
from sddc_backup.domain.errors import InvalidInputError, SddcBackupError
from sddc_backup.domain.storage import Storage
from sddc_backup.domain.tasks import Resource, Task
from sddc_backup.persistence.catalog import BackupCatalog, CatalogEntry
from sddc_backup.services.archive_read import check_archive, from_async
from sddc_backup.services.audit import audit
from sddc_backup.services.inventory import sidecar_digest
from sddc_backup.storage.errors import IntegrityError, ObjectNotFoundError
from sddc_backup.tasks.controller import TaskController
from sddc_backup.tasks.engine import TaskEngine
from sddc_backup.tasks.kinds import TaskKind

TASK_TYPE = "SDDC_MANAGER_BACKUP_VERIFICATION"
# Failures that say the file itself is damaged (and so no longer verified).
DAMAGED = (CorruptArchiveError, ManifestMismatchError, UnsafeMemberError, IntegrityError)
SUBTASK = ("Verify backup", "Download, decrypt and check every member against the manifest")


class VerificationService:
    def __init__(
        self,
        engine: TaskEngine,
        clock: Clock,
        configuration: Callable[[], Awaitable[BackupConfiguration]],
        open_storage: Callable[[BackupLocation], Awaitable[Storage]],
        catalog: BackupCatalog,
    ) -> None:
        self._engine, self._clock, self._configuration = engine, clock, configuration
        self._open, self._catalog = open_storage, catalog

    def task_kind(self) -> TaskKind:
        return TaskKind(type=TASK_TYPE, name="Verify backup", body=self._run, subtasks=(SUBTASK,))

    async def start(self, file_name: str) -> Task:
        """Start verifying ``file_name`` on the configured location; 400 when it is not there."""
        config = await self._configuration()
        if config.location is None or config.passphrase is None:
            raise InvalidInputError(
                "Backups are not configured: there is no location to read from, or no passphrase.",
                error_code="BACKUP_NOT_CONFIGURED",
                remediation="Configure them with PATCH /v1/system/backup-configuration.",
            )
        if parse_archive_name(file_name) is None:
            raise InvalidInputError(
                f"{file_name!r} is not the name of a backup file.",
                error_code="INVALID_BACKUP_FILE_NAME",
                remediation="Use a fileName from GET /v1/backups (vcf-backup-<host>-<time>.tar.gz).",
                context={"field": "fileName"},
            )
        storage = await self._open(config.location)
        try:
            await storage.stat(file_name)
        except ObjectNotFoundError:
            raise InvalidInputError(
                f"The backup file {file_name} does not exist on the backup location.",
                error_code="BACKUP_FILE_NOT_FOUND",
                remediation="Check the name: GET /v1/backups lists the backups on the location.",
                context={"field": "fileName"},
            ) from None
        finally:
            await storage.close()
        return await self._engine.submit(
            TASK_TYPE, {"fileName": file_name}, resources=[Resource(resource_id=file_name, type="BACKUP")]
        )

    async def _run(self, ctrl: TaskController, params: Mapping[str, object]) -> None:
        name = str(params["fileName"])
        config = await self._configuration()
        if config.location is None or config.passphrase is None:
            raise InvalidInputError("Backups are no longer configured.", error_code="BACKUP_NOT_CONFIGURED")
        await ctrl.subtask(SUBTASK[0])
        try:
            await self._check(ctrl, config.location, config.passphrase.encode(), name)
        except SddcBackupError as exc:
            audit("backup.verify", name, "failure", task_id=ctrl.task_id, error_code=exc.error_code)
            if isinstance(exc, DAMAGED):  # not a lost connection, nor a passphrase changed since
                await self._catalog.mark_unverified(config.location.catalog_key, name)
            raise
        audit("backup.verify", name, "success", task_id=ctrl.task_id)

    async def _check(
        self, ctrl: TaskController, location: BackupLocation, passphrase: bytes, name: str
    ) -> None:
        storage = await self._open(location)
        try:
            await ctrl.stage("Decrypt and check every member", f"Read {name} back and check it")
            stored = await storage.stat(name)
            chunks = from_async(aiter(storage.get(name)), asyncio.get_running_loop())
            checked = await check_archive(
                chunks,
                passphrase,
                lambda: nullcontext(DiscardingSink()),
                lambda n: ctrl.progress(n, stored.size),
            )
            await ctrl.stage("Compare with the checksum sidecar")
            listed = await sidecar_digest(storage, name)
        finally:
            await storage.close()
        if listed is not None and listed != checked.sha256:
            raise IntegrityError(
                f"{name} does not match its .sha256 sidecar: the file was changed after it was written.",
                error_code="BACKUP_CHECKSUM_MISMATCH",
                remediation="Do not restore from this file. Take a new backup, and check the backup "
                "server's storage.",
            )
        if checked.report.legacy:
            await ctrl.stage("No manifest: checked as far as the archive's structure allows")
            return
        await ctrl.stage("Record the check in the catalog")
        key, now = location.catalog_key, self._clock.now()
        if not await self._catalog.mark_verified(key, name, checked.sha256, stored.modified, now):
            # Written by another installation (or before the catalog existed): known from now on.
            created = parse_archive_name(name) or now
            entry = CatalogEntry(name, checked.size, checked.sha256, created, stored.modified, None, now)
            await self._catalog.record(key, entry)
