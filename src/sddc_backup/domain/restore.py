"""The restore's vocabulary: its phases, the statuses it reports, and the journal that lets it survive
a crash.

The journal records the plan of a running restore: what each swap puts where, and where the state it
replaces is kept. It holds no secrets. Whether a swap has happened is read from the state itself
(which of the names exist), so the journal only has to be written before anything outside the staging
directory is created, not after every step. See docs/design/restore-protocol.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sddc_backup.domain.tasks import StepStatus, TaskStatus

TASK_TYPE = "SDDC_MANAGER_RESTORE"
OPERATION_NAME = "SDDC Manager Restore Operation"

# VCF's restore phases, in execution order, with the descriptions its restore status file uses.
STOP_SERVICES = "StopSDDCManagerServices"
EXTRACT = "ExtractSDDCManagerBackup"
RESTORE_CONFIGURATION = "RestoreSDDCManagerConfiguration"
RESTORE_DATABASE = "RestoreSDDCManagerDatabase"
START_SERVICES = "StartSDDCManagerServices"
RESTORE_SYSTEM_CONFIGURATION = "RestoreSDDCSystemConfiguration"
POST_RESTORE = "PostRestoreRemediation"
UNQUIESCE = "UnquiesceSystem"
PHASES: tuple[tuple[str, str], ...] = (
    (STOP_SERVICES, "Stop all VCF SDDC Manager Services"),
    (EXTRACT, "Decrypt and Extract Backup and Validate SDDC Manager for Restore operation"),
    (RESTORE_CONFIGURATION, "Restore SDDC Manager Configuration files"),
    (RESTORE_DATABASE, "Restore SDDC Manager Database"),
    (START_SERVICES, "Start and Validate all VCF SDDC Manager Services"),
    (RESTORE_SYSTEM_CONFIGURATION, "Restore SDDC Manager System Configuration"),
    (POST_RESTORE, "Post Restore Remediation"),
    (UNQUIESCE, "Unquiesce the system after Restore operation"),
)

# What VCF's recovery tooling polls for on a restore task; other tasks keep the upper-case forms.
_LABELS = {
    "PENDING": "Pending",
    "IN_PROGRESS": "In Progress",
    "SUCCESSFUL": "Successful",
    "FAILED": "Failed",
    "CANCELLED": "Cancelled",
    "SKIPPED": "Skipped",
}


def restore_status_label(status: TaskStatus | StepStatus) -> str:
    """The restore-style spelling of a task or subtask status (``In Progress`` for ``IN_PROGRESS``)."""
    return _LABELS.get(status.value, status.value)


@dataclass
class PathSwap:
    """One file or directory of the appliance replaced by rename.

    ``staged`` is the new content, prepared next to ``target`` (same filesystem); ``None`` when nothing
    takes the target's place (a SQLite ``-wal`` file that must only be moved aside). ``old`` is where the
    replaced content is kept until the restore is committed. ``had_live`` says whether ``target``
    existed when the restore was planned.
    """

    target: str
    staged: str | None
    old: str
    had_live: bool


@dataclass
class DatabaseSwap:
    """The PostgreSQL database ``database``, replaced by ``new`` (loaded beside it) by renames; the
    replaced one is kept as ``old`` until the restore is committed."""

    database: str
    new: str
    old: str
    had_live: bool = True


@dataclass
class RestoreJournal:
    """The plan of the restore that is running, kept in the data directory until it has ended."""

    restore_id: str
    staging: str
    services_stopped: bool = False
    paths: list[PathSwap] = field(default_factory=list)
    database: DatabaseSwap | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"formatVersion": 1, **asdict(self)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RestoreJournal:
        """The inverse of ``to_dict``; raises ``ValueError`` for a document that is not a journal."""
        if not isinstance(raw, dict) or raw.get("formatVersion", 1) != 1:
            raise ValueError("not a restore journal: not a version 1 journal object")
        try:
            database = raw.get("database")
            return cls(
                restore_id=str(raw["restore_id"]),
                staging=str(raw["staging"]),
                services_stopped=bool(raw.get("services_stopped", False)),
                paths=[PathSwap(**p) for p in raw.get("paths", [])],
                database=None if database is None else DatabaseSwap(**database),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a restore journal: a field is missing or wrong ({exc})") from exc
