"""The restore task: ``POST /v1/restores/tasks``, in VCF's phases, all or nothing.

The whole archive is decrypted, verified and extracted into staging before anything live is touched.
Then each part is swapped in by rename, keeping what it replaces. The restore commits in one
transaction of the state store (the service's own settings, with the commit record); before that,
any failure puts every swapped part back, and after it, only clean-up is left. The journal in the
data directory lets the next start do either after a crash. See docs/design/restore-protocol.md.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from sddc_backup.domain.clock import Clock
from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.domain.restore import (
    OPERATION_NAME,
    PHASES,
    TASK_TYPE,
)
from sddc_backup.domain.tasks import Resource, Task
from sddc_backup.domain.users import Permission
from sddc_backup.persistence.own_settings_store import OwnSettingsStore
from sddc_backup.services.audit import audit
from sddc_backup.services.exclusive import CONFIGURE_TYPE, EXCLUSIVE_TYPES, busy_code, busy_error
from sddc_backup.services.restore.run import RestoreFailedError, RestoreRun, RestoreSetup
from sddc_backup.services.restore.source import BackupFileRef, resolve
from sddc_backup.services.restore.swaps import Swaps
from sddc_backup.tasks.controller import TaskController
from sddc_backup.tasks.engine import TaskEngine
from sddc_backup.tasks.kinds import TaskKind


def unresolved_restore() -> InvalidInputError:
    return InvalidInputError(
        "An earlier restore has not been finished or rolled back (its journal is still there).",
        error_code="RESTORE_RECOVERY_PENDING",
        remediation="Restart sddc-backup: at start-up it finishes or rolls back that restore. If that "
        "fails, the start-up error says what to fix first.",
    )


class RestoreService:
    def __init__(self, engine: TaskEngine, clock: Clock, setup: RestoreSetup) -> None:
        self._engine, self._clock, self._setup = engine, clock, setup
        # Passphrases live in memory only, never in the task store: a restore cannot be retried.
        self._passphrases: dict[str, bytes] = {}

    @property
    def swaps(self) -> Swaps:
        return self._setup.swaps

    @property
    def own_settings(self) -> OwnSettingsStore:
        return self._setup.own_settings

    def task_kind(self) -> TaskKind:
        return TaskKind(
            type=TASK_TYPE,
            name=OPERATION_NAME,
            body=self._run,
            subtasks=PHASES,
            cancellable=False,
            retryable=False,
            permission=Permission.ADMINISTER,
            exclusive_with=EXCLUSIVE_TYPES,
            busy_code=busy_code(TASK_TYPE),
        )

    async def start(self, resource_types: Sequence[str], backup_file: str, passphrase: str) -> Task:
        """Check the request and start the restore; 400 for a file that cannot be restored."""
        if not resource_types or any(t != "SDDC_MANAGER" for t in resource_types):
            raise InvalidInputError(
                "Only the resource type SDDC_MANAGER can be restored here.",
                error_code="INVALID_RESTORE_RESOURCE",
                remediation='Send "elements":[{"resourceType":"SDDC_MANAGER"}].',
            )
        if not passphrase:
            raise InvalidInputError(
                "encryption.passphrase is required.",
                error_code="PASSPHRASE_REQUIRED",
                remediation="Give the passphrase the backup was encrypted with.",
                context={"field": "encryption.passphrase"},
            )
        self._refuse_if_busy()
        if self._setup.swaps.journal_file.path.exists():
            raise unresolved_restore()
        config = await self._setup.configuration()
        ref = await resolve(backup_file, self._setup.allowed_dirs, config.location, self._setup.open_storage)
        self._refuse_if_busy()  # again: the checks above waited, and something may have started
        resource = Resource(resource_id=self._setup.fqdn, type="SDDC_MANAGER", fqdn=self._setup.fqdn)
        params = {"backupFile": ref.text, "path": str(ref.path) if ref.path else None, "name": ref.name}
        task_id = str(uuid.uuid4())
        self._passphrases[task_id] = passphrase.encode()
        try:
            task = await self._engine.submit(TASK_TYPE, params, resources=[resource], task_id=task_id)
        except BaseException:
            self._passphrases.pop(task_id, None)
            raise
        audit("restore.start", ref.text, "started", task_id=task_id)
        return task

    def _refuse_if_busy(self) -> None:
        # A configuration change that lands after the commit would undo part of the restore.
        running = self._engine.running_type((*EXCLUSIVE_TYPES, CONFIGURE_TYPE))
        if running is not None:
            raise busy_error(running)

    async def _run(self, ctrl: TaskController, params: Mapping[str, object]) -> None:
        passphrase = self._passphrases.pop(ctrl.task_id, None)
        if passphrase is None:
            raise RestoreFailedError(
                "The restore's passphrase is no longer known (the service restarted).",
                remediation="Start the restore again with POST /v1/restores/tasks.",
            )
        run = RestoreRun(self._setup, ctrl, self._clock, passphrase, _ref(params))
        outcome = "failure"
        try:
            await run.execute()
            outcome = "success"
        except asyncio.CancelledError:
            outcome = "interrupted"  # the service stops; its next start finishes or rolls it back
            raise
        finally:
            audit("restore.end", run.ref.text, outcome, task_id=ctrl.task_id)


def _ref(params: Mapping[str, object]) -> BackupFileRef:
    path, name = params.get("path"), params.get("name")
    return BackupFileRef(
        str(params["backupFile"]), path=Path(str(path)) if path else None, name=str(name) if name else None
    )
