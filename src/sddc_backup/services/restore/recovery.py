"""At start-up: finish or roll back a restore that a crash interrupted, and say which on its task."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sddc_backup.domain.errors import SddcBackupError
from sddc_backup.domain.restore import TASK_TYPE
from sddc_backup.domain.tasks import ErrorRecord
from sddc_backup.persistence.own_settings_store import OwnSettingsStore
from sddc_backup.services.restore.swaps import Swaps
from sddc_backup.tasks.engine import TaskEngine

log = logging.getLogger(__name__)
FINISHED_NOTE = "Finished when the service started again"


@dataclass(frozen=True)
class RecoveredRestore:
    restore_id: str
    outcome: str  # "finished" or "rolled back"


async def recover_restore(
    swaps: Swaps, own_settings: OwnSettingsStore, engine: TaskEngine
) -> RecoveredRestore | None:
    """Read the journal; when the restore had committed, finish it, otherwise put everything back.

    Runs before the engine resolves other unfinished tasks, so that the restore task ends with what
    actually happened instead of a bare "interrupted". Raises (and keeps the journal) when the state
    cannot be finished or put back: the service must not start on a half-restored appliance.
    """
    try:
        return await _recover(swaps, own_settings, engine)
    except SddcBackupError:
        raise
    except Exception as exc:
        raise SddcBackupError(
            f"An interrupted restore could not be finished or rolled back: {exc}",
            error_code="RESTORE_RECOVERY_FAILED",
            remediation="Fix the cause (a stopped PostgreSQL server, a full disk, a permission), then "
            "start sddc-backup again; the restore journal is kept until this succeeds.",
        ) from exc


async def _recover(
    swaps: Swaps, own_settings: OwnSettingsStore, engine: TaskEngine
) -> RecoveredRestore | None:
    journal = swaps.journal_file.load()
    if journal is None:
        return await _committed_without_journal(own_settings, engine)
    swaps.quiesce.pause(journal.restore_id)
    if await own_settings.committed(journal.restore_id):
        await swaps.finish(journal)
        if journal.services_stopped:
            await swaps.commands.run_start()
        await engine.conclude(journal.restore_id, None, FINISHED_NOTE)
        swaps.forget(journal)  # last: until here, a failure leaves the journal for the next start
        log.warning("restore %s had committed before the service stopped: finished it", journal.restore_id)
        return RecoveredRestore(journal.restore_id, "finished")
    await swaps.undo(journal)
    error = ErrorRecord(
        error_code="RESTORE_ROLLED_BACK",
        message="The service stopped while this restore was running, before it had committed; "
        "at the next start every part it had replaced was put back.",
        remediation="The appliance is as it was before the restore. Start the restore again.",
    )
    await engine.conclude(journal.restore_id, error, "")
    swaps.forget(journal)
    log.warning("restore %s was interrupted before its commit: rolled it back", journal.restore_id)
    return RecoveredRestore(journal.restore_id, "rolled back")


async def _committed_without_journal(
    own_settings: OwnSettingsStore, engine: TaskEngine
) -> RecoveredRestore | None:
    """A restore that ended (journal removed) in the moment before its success was stored."""
    for task in await engine.unfinished(TASK_TYPE):
        if await own_settings.committed(task.id):
            await engine.conclude(task.id, None, FINISHED_NOTE)
            return RecoveredRestore(task.id, "finished")
    return None
