"""The backup configuration use case: read it, and change it through a task, as the appliance does.

A change is checked when the request arrives (a 400 names every broken rule), and again inside the
task, against the configuration as it then stands, together with the location itself, before anything
is saved. A configuration that fails either check is not saved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from sddc_backup.domain.backup_config import (
    BackupConfiguration,
    ConfigurationSpec,
    spec_from_dict,
    spec_to_dict,
)
from sddc_backup.domain.clock import Clock
from sddc_backup.domain.config_rules import resolve_configuration
from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.domain.passphrase import PassphrasePolicy
from sddc_backup.domain.restore import TASK_TYPE as RESTORE_TYPE
from sddc_backup.domain.tasks import Resource, Task
from sddc_backup.domain.users import Permission
from sddc_backup.persistence.config_store import BackupConfigurationStore
from sddc_backup.services.audit import audit
from sddc_backup.services.exclusive import CONFIGURE_TYPE, busy_code
from sddc_backup.services.locations import Check, CheckStatus, LocationAccess, first_error
from sddc_backup.tasks.controller import TaskController
from sddc_backup.tasks.engine import TaskEngine
from sddc_backup.tasks.kinds import TaskKind

TASK_TYPE = CONFIGURE_TYPE
PASSPHRASE_CHECK = "The passphrase meets the passphrase policy"  # noqa: S105 - a check name
SUBTASKS = (
    ("Validate backup location", "Check that the backup location can receive backups"),
    ("Save backup configuration", "Store the backup configuration"),
)


class BackupConfigurationService:
    def __init__(
        self,
        store: BackupConfigurationStore,
        engine: TaskEngine,
        clock: Clock,
        policy: PassphrasePolicy,
        fqdn: str,
        locations: LocationAccess,
    ) -> None:
        self._store = store
        self._engine = engine
        self._clock = clock
        self._policy = policy
        self._fqdn = fqdn
        self._apply_lock = asyncio.Lock()
        self._locations = locations

    def task_kind(self) -> TaskKind:
        return TaskKind(
            type=TASK_TYPE,
            name="Configure backup settings",
            body=self._apply,
            subtasks=SUBTASKS,
            cancellable=False,  # a half-applied configuration helps nobody; it is quick anyway
            permission=Permission.ADMINISTER,
            exclusive_with=(RESTORE_TYPE,),  # a restore sets the configuration when it commits
            busy_code=busy_code(TASK_TYPE),
        )

    async def get(self) -> BackupConfiguration:
        return await self._store.get()

    async def change(self, spec: ConfigurationSpec, *, partial: bool) -> Task:
        """Check ``spec`` against the rules (``ConfigurationRuleError`` names each one it breaks) and
        start the task that applies it."""
        resolve_configuration(spec, await self._store.get(), self._policy, partial=partial)
        if self._engine.is_running((RESTORE_TYPE,)):
            # The restore replaces the configuration when it commits; a change now would be lost.
            raise InvalidInputError(
                "A restore is running; it sets the backup configuration from the backup.",
                error_code="RESTORE_IN_PROGRESS",
                remediation="Wait for the restore to end, then change the configuration.",
            )
        name = "Edit backup configuration" if partial else "Configure backup settings"
        task = await self._engine.submit(
            TASK_TYPE,
            {"spec": spec_to_dict(spec), "partial": partial},
            name=name,
            resources=[Resource(resource_id=self._fqdn, type="SDDC_MANAGER", fqdn=self._fqdn)],
        )
        parts = ",".join(p for p in ("locations", "schedules", "passphrase") if getattr(spec, p) is not None)
        audit("configuration.change", "backup-configuration", "started", task_id=task.id, parts=parts)
        return task

    async def validate(self, spec: ConfigurationSpec) -> list[Check]:
        """Run every check on ``spec`` merged into the stored configuration, saving nothing."""
        wanted = resolve_configuration(spec, await self._store.get(), self._policy, partial=True)
        checks = await self._locations.check(wanted.location) if wanted.location is not None else []
        if spec.passphrase is not None:  # the rules above passed, so it complies
            checks.append(Check(PASSPHRASE_CHECK, CheckStatus.SUCCEEDED, detail=self._policy.describe()))
        return checks

    async def _apply(self, ctrl: TaskController, params: Mapping[str, object]) -> None:
        spec, partial = params["spec"], params["partial"]
        assert isinstance(spec, dict) and isinstance(partial, bool)
        # One change at a time, each merged into the configuration as it stands when it runs: two
        # partial edits in flight both land, and a retried old task edits today's configuration.
        async with self._apply_lock:
            await ctrl.subtask(SUBTASKS[0][0])
            await ctrl.stage("Check backup location")
            current = await self._store.get()
            wanted = resolve_configuration(spec_from_dict(spec), current, self._policy, partial=partial)
            if wanted.location is not None:
                error = first_error(await self._locations.check(wanted.location))
                if error is not None:
                    raise error
            await ctrl.subtask(SUBTASKS[1][0])
            await ctrl.stage("Save backup configuration")
            await self._store.put(wanted, self._clock.now())
            if wanted.location is not None:
                await ctrl.stage("Remove stale temporary files")
                await self._locations.remove_stale_uploads(wanted.location, self._clock.now())
