"""The server's log over a full run: one JSON object per line with the standard fields, task lines
with their task, and an audit line for each audited action."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.observability.recording import VIEWER, RecordedRun
from tests.support.http import Api
from tests.support.server import ADMIN, ServerProcess

FIELDS = {"ts", "level", "logger", "message"}
AUDIT_FIELDS = {"audit", "actor", "action", "target", "outcome"}


def events(run: RecordedRun) -> list[dict[str, Any]]:
    lines = [line for line in run.server.output().splitlines() if line.strip()]
    # The test harness marks each start with its own line; everything else is the server's.
    return [json.loads(line) for line in lines if not line.startswith("--- start ")]


def audits(run: RecordedRun, action: str) -> list[dict[str, Any]]:
    return [e for e in events(run) if e.get("audit") is True and e["action"] == action]


def test_every_line_is_a_json_event_with_the_standard_fields(recorded_run: RecordedRun) -> None:
    found = events(recorded_run)
    assert len(found) > 100
    for event in found:
        assert set(event) >= FIELDS, event
        assert event["ts"].endswith("Z") and event["level"] in (
            "DEBUG",
            "INFO",
            "WARNING",
            "ERROR",
            "CRITICAL",
        )
    loggers = {e["logger"] for e in found}
    assert {"uvicorn.access", "uvicorn.error", "sddc_backup.tasks.engine", "sddc_backup.audit"} <= loggers
    access = next(e for e in found if e["logger"] == "uvicorn.access")
    assert {"client", "method", "path", "status"} <= set(access)
    assert any("Application startup complete" in e["message"] for e in found)


def test_lines_logged_inside_a_task_carry_its_id_and_step(recorded_run: RecordedRun) -> None:
    found = events(recorded_run)
    for step in ("configure", "backup", "verification", "restore", "failed backup"):
        task_id = recorded_run.tasks[step]["id"]
        engine = [e for e in found if e["logger"] == "sddc_backup.tasks.engine" and task_id in e["message"]]
        assert len(engine) >= 2, step  # started and ended
        assert all(e.get("task_id") == task_id for e in engine), engine
    restore_id = recorded_run.tasks["restore"]["id"]
    # Lines logged by the restore's own run (the audit line of its start names it too, from the request).
    inside = [e for e in found if e.get("task_type") == "SDDC_MANAGER_RESTORE" and e["task_id"] == restore_id]
    assert [e for e in inside if e["logger"] != "sddc_backup.tasks.engine"]
    assert {e.get("phase") for e in inside} >= {"UnquiesceSystem"}
    ended = next(e for e in inside if e.get("action") == "restore.end")
    assert ended["phase"] == "UnquiesceSystem" and ended["stage"] == "Resume scheduled and automatic backups"


@pytest.mark.parametrize(
    ("action", "outcome", "actor"),
    [
        ("login", "failure", ADMIN),
        ("login", "success", ADMIN),
        ("token.refresh", "success", ADMIN),
        ("token.revoke", "success", ADMIN),
        ("configuration.change", "started", ADMIN),
        ("backup.start", "started", ADMIN),
        ("backup.verify", "success", ADMIN),
        ("retention.delete", "success", ADMIN),
        ("restore.start", "started", ADMIN),
        ("restore.end", "success", ADMIN),
        ("restore.end", "failure", ADMIN),
        ("user.add", "success", "system"),
    ],
)
def test_audited_actions_have_an_audit_line(
    recorded_run: RecordedRun, action: str, outcome: str, actor: str
) -> None:
    found = [e for e in audits(recorded_run, action) if e["outcome"] == outcome]
    assert found, f"no {action} {outcome} in the audit log"
    assert all(set(e) >= AUDIT_FIELDS and e["logger"] == "sddc_backup.audit" for e in found), found
    assert actor in {e["actor"] for e in found}, found
    if action == "login":  # whoever tried to log in is the actor, whatever the outcome
        assert all(e["actor"] == e["target"] for e in found), found


def test_audit_lines_name_the_client_task_and_target(recorded_run: RecordedRun) -> None:
    failures = [e for e in audits(recorded_run, "login") if e["outcome"] == "failure"]
    assert len(failures) == 2 and all(e["client"] == "127.0.0.1" and e["target"] == ADMIN for e in failures)
    backup = recorded_run.tasks["backup"]["id"]
    assert next(e["task_id"] for e in audits(recorded_run, "backup.start")) == backup
    deleted = audits(recorded_run, "retention.delete")
    assert [e["target"] for e in deleted] == [recorded_run.deleted_by_retention]
    assert deleted[0]["task_id"] == backup
    change = audits(recorded_run, "configuration.change")[0]
    assert change["parts"] == "locations,schedules,passphrase"
    assert change["task_id"] == recorded_run.tasks["configure"]["id"]
    scheduled = [e for e in audits(recorded_run, "backup.start") if e.get("trigger") == "SCHEDULED"]
    assert scheduled == []  # the due run was skipped, not started


def test_a_local_users_command_writes_its_audit_line_to_stderr(recorded_run: RecordedRun) -> None:
    lines = [json.loads(line) for line in recorded_run.cli_stderr.splitlines() if line.strip()]
    added = [e for e in lines if e.get("action") == "user.add"]
    assert len(added) == 1, recorded_run.cli_stderr
    assert added[0]["target"] == VIEWER and added[0]["role"] == "VIEWER"
    assert added[0]["actor"].startswith("local:") and added[0]["audit"] is True


def test_the_text_format_keeps_one_line_per_event_with_the_fields_after_the_message(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")
    try:
        server.start(SDDC_BACKUP_LOG_FORMAT="TEXT")
        Api(server).token()
    finally:
        server.stop()
    lines = server.output().splitlines()
    assert any(" INFO sddc_backup.app.server: sddc-backup listening on https://" in line for line in lines)
    login = next(line for line in lines if " INFO sddc_backup.audit: " in line and "login" in line)
    assert login.endswith(
        f'audit=true actor="{ADMIN}" action="login" target="{ADMIN}" outcome="success" client="127.0.0.1"'
    )
    assert not [line for line in lines if line.startswith("{")]


def test_the_server_runs_on_uvloop(recorded_run: RecordedRun) -> None:
    """The event loop the benchmarks measured (ADR 0021), named in the log at every start."""
    ours = [e["message"] for e in events(recorded_run) if e["logger"] == "sddc_backup.app.server"]
    assert "event loop: uvloop" in ours
