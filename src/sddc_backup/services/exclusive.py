"""Which operations exclude each other, and the 400 for one asked for while another runs."""

from __future__ import annotations

from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.domain.restore import TASK_TYPE as RESTORE_TYPE

BACKUP_TYPE = "SDDC_MANAGER_BACKUP"
CONFIGURE_TYPE = "CONFIGURE_BACKUP"
RETENTION_TYPE = "BACKUP_RETENTION"
# One at a time: a backup, a restore, or applying retention (which must not delete a file that a
# restore is reading, nor list a backup half written).
EXCLUSIVE_TYPES = (BACKUP_TYPE, RESTORE_TYPE, RETENTION_TYPE)

# The appliance's own codes for these are not documented; these are ours and stable, and each names
# what is running.
_RUNNING = {
    BACKUP_TYPE: ("A backup", "BACKUP_IN_PROGRESS"),
    RESTORE_TYPE: ("A restore", "RESTORE_IN_PROGRESS"),
    CONFIGURE_TYPE: ("A change of the backup configuration", "CONFIGURATION_CHANGE_IN_PROGRESS"),
    RETENTION_TYPE: ("Applying the retention policy", "RETENTION_IN_PROGRESS"),
}


def busy_code(running_type: str) -> str:
    return _RUNNING.get(running_type, ("", "OPERATION_IN_PROGRESS"))[1]


def busy_error(running_type: str) -> InvalidInputError:
    """400 for an operation asked for while one it excludes runs."""
    what = _RUNNING.get(running_type, ("Another operation", ""))[0]
    return InvalidInputError(
        f"{what} is already running; one backup or restore runs at a time.",
        error_code=busy_code(running_type),
        remediation="Wait for it to end (GET /v1/tasks?taskStatus=IN_PROGRESS), then try again.",
    )
