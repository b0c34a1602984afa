"""Text views of the API's answers: rich tables and short summaries (the ``--json`` form is the
answer itself)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from sddc_backup.cli.client.progress import format_amount, normalized

RESULT_STYLES = {"SUCCEEDED": "green", "FAILED": "red", "SKIPPED": "dim"}


def tasks_table(tasks: list[dict[str, Any]]) -> Table:
    table = Table("id", "type", "name", "status", "created", "completed")
    for t in tasks:
        table.add_row(
            str(t.get("id", "")),
            str(t.get("type", "")),
            str(t.get("name", "")),
            str(t.get("status", "")),
            str(t.get("creationTimestamp", "")),
            str(t.get("completionTimestamp") or ""),
        )
    return table


def _yes(value: object) -> str:
    return "yes" if value else "no"


def backups_table(backups: list[dict[str, Any]]) -> Table:
    table = Table("file", "size", "created", "sha256", "verified", "retention")
    for b in backups:
        keep = b.get("retention")
        retention = ""
        if isinstance(keep, dict):
            retention = ("keep" if keep.get("keep") else "delete") + (
                f" ({', '.join(keep.get('reasons') or [])})" if keep.get("reasons") else ""
            )
        table.add_row(
            str(b.get("fileName", "")),
            format_amount(int(b.get("size") or 0)),
            str(b.get("creationTimestamp") or ""),
            str(b.get("sha256") or "")[:16],
            _yes(b.get("manifestVerified")),
            retention,
        )
    return table


def retention_table(backups: list[dict[str, Any]]) -> Table:
    table = Table("file", "created", "decision", "reasons")
    for b in backups:
        keep = b.get("retention")
        if not isinstance(keep, dict):
            continue  # not this appliance's backup: the policy never touches it
        table.add_row(
            str(b.get("fileName", "")),
            str(b.get("creationTimestamp") or ""),
            "keep" if keep.get("keep") else "delete",
            ", ".join(keep.get("reasons") or [])
            or ("no retention policy" if keep.get("keep") else "no rule keeps it"),
        )
    return table


def configuration_view(config: dict[str, Any]) -> RenderableType:
    table = Table.grid(padding=(0, 2))
    table.add_row("configured", _yes(config.get("isConfigured")))
    table.add_row("passphrase", "set" if config.get("encryption") else "not set")
    for loc in config.get("backupLocations") or []:
        where = str(loc.get("directoryPath", ""))
        if normalized(loc.get("protocol")) == "SFTP":
            where = f"sftp://{loc.get('username', '')}@{loc.get('server', '')}:{loc.get('port', 22)}{where}"
            table.add_row("host key", str(loc.get("sshFingerprint") or "not pinned"))
            table.add_row("password", "set" if loc.get("password") else "not set")
        table.add_row("location", f"{loc.get('protocol', '')} {where}")
    if not config.get("backupLocations"):
        table.add_row("location", "none")
    for schedule in config.get("backupSchedules") or []:
        table.add_row("schedule", _schedule_text(schedule))
        policy = schedule.get("retentionPolicy") or {}
        table.add_row(
            "retention",
            f"{policy.get('numberOfMostRecentBackups', '-')} most recent, "
            f"{policy.get('numberOfDaysOfHourlyBackups', '-')} days of hourly, "
            f"{policy.get('numberOfDaysOfDailyBackups', '-')} days of daily",
        )
    if not config.get("backupSchedules"):
        table.add_row("schedule", "none")
    return table


def _schedule_text(schedule: dict[str, Any]) -> str:
    minute = int(schedule.get("minuteOfHour") or 0)
    if normalized(schedule.get("frequency")) == "HOURLY":
        text = f"hourly at minute {minute:02d}"
    else:
        days = ", ".join(schedule.get("daysOfWeek") or [])
        text = f"weekly on {days} at {int(schedule.get('hourOfDay') or 0):02d}:{minute:02d} UTC"
    return text + ("" if schedule.get("takeScheduledBackups") else " (scheduled backups off)")


def validation_view(validation: dict[str, Any]) -> RenderableType:
    table = Table("check", "severity", "result", "detail")
    for check in validation.get("validationChecks") or []:
        result = str(check.get("resultStatus", ""))
        detail = str(check.get("detail") or "")
        error = check.get("errorResponse")
        if isinstance(error, dict):
            detail = f"{error.get('errorCode')}: {error.get('message')} {error.get('remediationMessage', '')}"
        table.add_row(
            str(check.get("description", "")),
            str(check.get("severity", "")),
            Text(result, style=RESULT_STYLES.get(result, "")),
            detail.strip(),
        )
    result = str(validation.get("resultStatus", ""))
    return Group(table, Text(f"validation {result}", style=RESULT_STYLES.get(result, "")))


def fingerprint_view(location: dict[str, Any]) -> RenderableType:
    table = Table("key type", "fingerprint")
    for key in location.get("hostKeys") or []:
        table.add_row(str(key.get("keyType", "")), str(key.get("sshFingerprint", "")))
    head = Text(
        f"{location.get('server')}:{location.get('port')} offers "
        f"{location.get('sshFingerprint') or 'no usable host key'} (pin this one: sshFingerprint)\n"
        "Confirm it with the server's administrator before configuring it."
    )
    return Group(head, table)
