"""One run of the restore body: VCF's phases in order, and the roll-back when one fails.

See ``service.py`` for the protocol in short, and docs/design/restore-protocol.md in full.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sddc_backup.archive.extract import SafeExtractor
from sddc_backup.archive.pipelined import PipelinedSink
from sddc_backup.domain.backup_config import BackupConfiguration, BackupLocation
from sddc_backup.domain.clock import Clock
from sddc_backup.domain.errors import InvalidInputError, SddcBackupError
from sddc_backup.domain.restore import (
    EXTRACT,
    POST_RESTORE,
    RESTORE_CONFIGURATION,
    RESTORE_DATABASE,
    RESTORE_SYSTEM_CONFIGURATION,
    START_SERVICES,
    STOP_SERVICES,
    UNQUIESCE,
    RestoreJournal,
)
from sddc_backup.domain.storage import ObjectInfo, Storage
from sddc_backup.persistence.catalog import BackupCatalog
from sddc_backup.persistence.own_settings_store import OwnSettingsStore
from sddc_backup.services.appliance import ApplianceLayout
from sddc_backup.services.archive_read import CheckedArchive, check_archive, from_async
from sddc_backup.services.components.postgres import MEMBER as DUMP_MEMBER
from sddc_backup.services.components.sqlite import restore_copy
from sddc_backup.services.own_settings import OwnSettings, read_own_settings
from sddc_backup.services.restore import files
from sddc_backup.services.restore.loader import DumpLoader, LoadingSink
from sddc_backup.services.restore.plan import StagedFile, plan_files
from sddc_backup.services.restore.source import BackupFileRef, local_chunks
from sddc_backup.services.restore.swaps import Swaps
from sddc_backup.tasks.controller import TaskController


class RestoreFailedError(SddcBackupError):
    error_code = "RESTORE_FAILED"


@dataclass(frozen=True)
class RestoreSetup:
    """What a restore of this appliance needs, supplied by the composition root."""

    fqdn: str
    layout: ApplianceLayout
    staging_root: Path
    allowed_dirs: Sequence[Path]
    swaps: Swaps
    own_settings: OwnSettingsStore
    configuration: Callable[[], Awaitable[BackupConfiguration]]
    open_storage: Callable[[BackupLocation], Awaitable[Storage]]
    keep_users: tuple[str, ...]
    catalog: BackupCatalog


class RestoreRun:
    """One run of the restore body."""

    def __init__(
        self, setup: RestoreSetup, ctrl: TaskController, clock: Clock, passphrase: bytes, ref: BackupFileRef
    ) -> None:
        self.setup, self.ctrl, self.clock, self.passphrase, self.ref = setup, ctrl, clock, passphrase, ref
        self.staging = setup.staging_root / ctrl.task_id
        self.journal = RestoreJournal(restore_id=ctrl.task_id, staging=str(self.staging))
        self.staged: list[StagedFile] = []
        self.committed = False
        self.phase = ""
        self.stored: ObjectInfo | None = None  # the file on the location, for a restore by name
        self.loader: DumpLoader | None = None  # loads the database dump while the rest extracts

    async def execute(self) -> None:
        try:
            await self._phases()
        except asyncio.CancelledError:
            if self.loader is not None:
                self.loader.stop()  # the service is stopping: no psql may go on loading behind it
            raise  # the next start finishes the roll-back from the journal
        except BaseException as exc:
            # The stored commit record decides, not a flag: the commit may have reached the state
            # store even though its acknowledgement was lost.
            try:
                if self.loader is not None:
                    await asyncio.to_thread(self.loader.stop)
                if self.committed or await self.setup.own_settings.committed(self.journal.restore_id):
                    raise
                await self.setup.swaps.undo(self.journal)
                self.setup.swaps.forget(self.journal)
            except Exception as undo_failure:
                if undo_failure is exc:
                    raise
                raise _not_rolled_back(exc, undo_failure, self.phase) from exc
            raise _rolled_back(exc, self.phase) from exc

    async def _enter(self, phase: str) -> None:
        self.phase = phase
        await self.ctrl.subtask(phase)

    async def _phases(self) -> None:
        swaps = self.setup.swaps
        # Before the first step, so that the next start rolls back a crash at any step, and the task
        # says so, instead of ending as a bare "interrupted".
        self.journal.services_stopped = bool(swaps.commands.stop)
        swaps.journal_file.save(self.journal)
        await self._enter(STOP_SERVICES)
        await self.ctrl.stage("Quiesce the system", "Pause scheduled and automatic backups")
        swaps.quiesce.pause(self.journal.restore_id)
        files.remove(self.staging)
        await self.ctrl.stage("Stop the services")
        await swaps.commands.run_stop()

        own = await self._extract_phase()
        await self.ctrl.stage("Stage the files beside the live ones")
        await asyncio.to_thread(self._place_staged)

        await self._enter(RESTORE_CONFIGURATION)
        for item in self.staged:
            if item.swap.had_live or item.swap.staged is not None:
                await self.ctrl.stage(f"Swap {item.swap.target}")
                await asyncio.to_thread(files.apply, item.swap)

        await self._enter(RESTORE_DATABASE)
        if swaps.database is not None and self.journal.database is not None and self.loader is not None:
            # It started when the dump came out of the archive; here it ends, and the archive is
            # known to be intact, so the new database may be swapped in.
            await self.ctrl.stage("Load the dump into a new database")
            await asyncio.to_thread(self.loader.wait)
            await self.ctrl.stage("Swap the databases")
            await asyncio.to_thread(swaps.database.apply, self.journal.database)
        else:
            await self.ctrl.stage("No database to restore", "This appliance protects no PostgreSQL database")

        await self._enter(START_SERVICES)
        await self.ctrl.stage("Start and check the services")
        await swaps.commands.run_start()

        await self._enter(RESTORE_SYSTEM_CONFIGURATION)
        await self.ctrl.stage("Restore the backup configuration and the users")
        await self.setup.own_settings.replace(
            own.configuration, own.users, self.setup.keep_users, self.ctrl.task_id, self.clock.now()
        )
        self.committed = True

        await self._enter(POST_RESTORE)
        await self.ctrl.stage("Remove the replaced copies and the staging files")
        await swaps.finish(self.journal)
        await self._enter(UNQUIESCE)
        await self.ctrl.stage("Resume scheduled and automatic backups")
        swaps.forget(self.journal)  # last: a crash before this is finished at the next start

    async def _extract_phase(self) -> OwnSettings:
        """ExtractSDDCManagerBackup up to the staging: the backup read, checked and planned."""
        swaps = self.setup.swaps
        await self._enter(EXTRACT)
        detail = f"Decrypt, verify and extract {self.ref.text}"
        if swaps.database is not None:
            detail += ", loading its database dump into a new database as it arrives"
        await self.ctrl.stage("Decrypt and verify the backup", detail)
        if swaps.database is not None:
            self.journal.database = await asyncio.to_thread(swaps.database.plan, self.ctrl.task_id)
            swaps.journal_file.save(self.journal)  # names the new database before it is created
            self.loader = DumpLoader(swaps.database, self.journal.database)
        checked = await self._extract()
        await self._record_verified(checked)
        await self.ctrl.stage("Check the backup against this appliance")
        own = await asyncio.to_thread(read_own_settings, self.staging)
        self.staged = await asyncio.to_thread(plan_files, self.setup.layout, self.staging, self.ctrl.task_id)
        self.journal.paths = [s.swap for s in self.staged]
        swaps.journal_file.save(self.journal)  # before anything is created outside the staging directory
        return own

    async def _extract(self) -> CheckedArchive:
        """Decrypt, check and extract the whole backup into staging, reporting bytes read."""
        self.staging.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        allowed = tuple(str(p) for p in self.setup.layout.paths)

        def sink() -> PipelinedSink:
            extractor = SafeExtractor(self.staging, allowed, keep_owner=True)
            if self.loader is None:
                return PipelinedSink(extractor)
            return PipelinedSink(LoadingSink(extractor, self.staging, DUMP_MEMBER, self.loader))

        if self.ref.path is not None:
            total = self.ref.path.stat().st_size
            return await check_archive(
                local_chunks(self.ref.path), self.passphrase, sink, lambda n: self.ctrl.progress(n, total)
            )
        assert self.ref.name is not None
        config = await self.setup.configuration()
        if config.location is None:
            raise InvalidInputError("No backup location is configured.", error_code="BACKUP_NOT_CONFIGURED")
        storage = await self.setup.open_storage(config.location)
        try:
            stored = self.stored = await storage.stat(self.ref.name)
            chunks = from_async(aiter(storage.get(self.ref.name)), asyncio.get_running_loop())
            return await check_archive(
                chunks, self.passphrase, sink, lambda n: self.ctrl.progress(n, stored.size)
            )
        finally:
            await storage.close()

    async def _record_verified(self, checked: CheckedArchive) -> None:
        """The whole file was just checked against its manifest: say so in the catalog, if this is a
        file that the catalog knows on the configured location (by name, with the same digest)."""
        config = await self.setup.configuration()
        if checked.report.legacy or config.location is None or self.stored is None:
            return  # a copy on this server: the file on the location was not the one read
        await self.setup.catalog.mark_verified(
            config.location.catalog_key,
            self.stored.name,
            checked.sha256,
            self.stored.modified,
            self.clock.now(),
        )

    def _place_staged(self) -> None:
        for item in self.staged:
            if item.extracted is None:
                continue
            if item.kind == "sqlite":
                assert item.swap.staged is not None
                restore_copy(item.extracted, Path(item.swap.target), Path(item.swap.staged))
            else:
                files.place_staged(item.extracted, item.swap)


def _rolled_back(exc: BaseException, phase: str) -> SddcBackupError:
    """The failure as the task reports it: its own code, the phase, and that nothing was changed."""
    error = exc if isinstance(exc, SddcBackupError) else RestoreFailedError(f"The restore failed: {exc}")
    error.message = f"{error.message} The restore failed in {phase} and was rolled back."
    error.remediation = (
        f"{error.remediation} The appliance is as it was before the restore; nothing needs undoing."
    )
    error.context = {**error.context, "phase": phase}
    return error


class RestoreRollbackFailedError(SddcBackupError):
    error_code = "RESTORE_ROLLBACK_FAILED"


def _not_rolled_back(exc: BaseException, undo_failure: Exception, phase: str) -> SddcBackupError:
    cause = exc.message if isinstance(exc, SddcBackupError) else str(exc)
    return RestoreRollbackFailedError(
        f"The restore failed in {phase} ({cause}), and putting the appliance back failed too: {undo_failure}",
        remediation="Fix the cause of the second failure (a stopped PostgreSQL server, a full disk), then "
        "restart sddc-backup: it finishes the roll-back from the restore journal at start-up.",
        context={"phase": phase},
    )
