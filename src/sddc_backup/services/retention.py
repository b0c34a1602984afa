"""Applying the retention policy to the backup location: after every successful backup, and on request.

Only this appliance's backups take part: files named by our pattern for this FQDN, that the catalog
records or that have a ``.sha256`` sidecar. Anything else in the directory is never touched. A file
is deleted with its sidecar, only when no rule keeps it (``domain.retention``), and never the backup
that was just taken. Every deletion is a stage of the task that made it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from sddc_backup.archive.manifest import is_backup_of, parse_archive_name
from sddc_backup.domain.backup_config import BackupConfiguration, BackupLocation, RetentionPolicy
from sddc_backup.domain.clock import Clock
from sddc_backup.domain.retention import BackupRecord, Reason, retention_reasons, to_delete
from sddc_backup.domain.storage import ObjectInfo, Storage
from sddc_backup.domain.tasks import Task
from sddc_backup.persistence.catalog import BackupCatalog
from sddc_backup.services.audit import audit
from sddc_backup.services.exclusive import EXCLUSIVE_TYPES, RETENTION_TYPE, busy_code, busy_error
from sddc_backup.services.inventory import SIDECAR, Listing, not_configured
from sddc_backup.storage.errors import ObjectNotFoundError
from sddc_backup.tasks.controller import TaskController
from sddc_backup.tasks.engine import TaskEngine
from sddc_backup.tasks.kinds import TaskKind


@dataclass(frozen=True)
class RetentionPlan:
    """What the policy keeps (with its reasons) and what it deletes, among this appliance's backups."""

    policy: RetentionPolicy | None
    reasons: dict[str, set[Reason]]

    @property
    def deletions(self) -> list[str]:
        return to_delete(self.reasons) if self.policy is not None else []


def policy_of(config: BackupConfiguration) -> RetentionPolicy | None:
    return config.schedule.retention if config.schedule is not None else None


def ours(objects: Collection[ObjectInfo], fqdn: str, known: Collection[str]) -> list[BackupRecord]:
    """This appliance's backups among ``objects``: our name for this FQDN, and in the catalog or
    with a sidecar (so that a stranger's file that happens to look like ours is left alone)."""
    names = {o.name for o in objects}
    found = []
    for obj in objects:
        created = parse_archive_name(obj.name)
        if created is None or not is_backup_of(obj.name, fqdn):
            continue
        if obj.name in known or obj.name + SIDECAR in names:
            found.append(BackupRecord(obj.name, created))
    return found


def plan_retention(
    objects: Collection[ObjectInfo],
    known: Collection[str],
    config: BackupConfiguration,
    fqdn: str,
    now: datetime,
    protect: Collection[str] = (),
) -> RetentionPlan:
    """What the policy keeps among ``objects`` (a listing of the location; ``known``: the names the
    catalog records there)."""
    policy = policy_of(config)
    backups = ours(objects, fqdn, known)
    if policy is None:
        return RetentionPlan(None, {b.name: set() for b in backups})
    return RetentionPlan(policy, retention_reasons(backups, policy, now, protect))


async def apply_retention(
    ctrl: TaskController,
    storage: Storage,
    config: BackupConfiguration,
    fqdn: str,
    catalog: BackupCatalog,
    now: datetime,
    protect: Collection[str] = (),
) -> list[str]:
    """Delete what the policy does not keep, one stage per file; returns the names deleted."""
    await ctrl.stage("Work out what the retention policy keeps")
    assert config.location is not None
    known = await catalog.entries(config.location.catalog_key)
    plan = plan_retention(await storage.list_objects(), known, config, fqdn, now, protect)
    if plan.policy is None:
        await ctrl.stage("No retention policy: every backup is kept")
        return []
    for name in plan.deletions:
        await ctrl.stage(f"Delete {name}", f"Delete {name} and its checksum: no retention rule keeps it")
        # The sidecar first: a deletion cut short leaves an archive the catalog still knows, which the
        # next run deletes, instead of a sidecar that no rule would ever consider.
        for victim in (name + SIDECAR, name):
            # Already gone: deleted by hand, or a sidecar that was never written.
            with suppress(ObjectNotFoundError):
                await storage.delete(victim)
        await catalog.forget(config.location.catalog_key, name)
        audit("retention.delete", name, "success", task_id=ctrl.task_id)
    return plan.deletions


def reasons_json(plan: RetentionPlan) -> Mapping[str, list[str]]:
    return {name: sorted(r.value for r in why) for name, why in plan.reasons.items()}


TASK_TYPE = RETENTION_TYPE
SUBTASK = ("Apply the retention policy", "Delete the backups that no retention rule keeps")


class RetentionService:
    """``POST /v1/backups/retention`` (our extension): apply the policy now, as a task."""

    def __init__(
        self,
        engine: TaskEngine,
        clock: Clock,
        configuration: Callable[[], Awaitable[BackupConfiguration]],
        open_storage: Callable[[BackupLocation], Awaitable[Storage]],
        catalog: BackupCatalog,
        fqdn: str,
    ) -> None:
        self._engine, self._clock, self._configuration = engine, clock, configuration
        self._open, self._catalog, self._fqdn = open_storage, catalog, fqdn

    def task_kind(self) -> TaskKind:
        return TaskKind(
            type=TASK_TYPE,
            name="Apply the retention policy",
            body=self._run,
            subtasks=(SUBTASK,),
            exclusive_with=EXCLUSIVE_TYPES,
            busy_code=busy_code(TASK_TYPE),
        )

    async def start(self) -> Task:
        config = await self._configuration()
        if config.location is None:
            raise not_configured()
        running = self._engine.running_type(EXCLUSIVE_TYPES)
        if running is not None:
            raise busy_error(running)
        return await self._engine.submit(TASK_TYPE, {})

    def preview(self, config: BackupConfiguration, listing: Listing) -> RetentionPlan:
        """What the policy would keep and delete now, from a listing just made (nothing is deleted)."""
        return plan_retention(listing.objects, listing.known, config, self._fqdn, self._clock.now())

    async def _run(self, ctrl: TaskController, params: Mapping[str, object]) -> None:
        config = await self._configuration()
        if config.location is None:
            raise not_configured()
        await ctrl.subtask(SUBTASK[0])
        storage = await self._open(config.location)
        try:
            await apply_retention(ctrl, storage, config, self._fqdn, self._catalog, self._clock.now())
        finally:
            await storage.close()
