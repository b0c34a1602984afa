"""``GET /metrics`` on the real server: each metric after a backup, a restore, failures, a skipped
scheduled run, and after restarts (task metrics come from the state store, so they survive)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.observability.recording import RecordedRun
from tests.support.http import Api, assert_vcf_error
from tests.support.server import ServerProcess

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TASK_METRICS = re.compile(r"sddc_backup_(?!http_)")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def task_samples(found: Samples) -> Samples:
    return {k: v for k, v in found.items() if TASK_METRICS.match(k[0])}


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def stage_progress(task: dict[str, Any], stage_name: str) -> int:
    stages = [s for sub in task["subTasks"] for s in sub.get("stages", []) if s["name"] == stage_name]
    return int(stages[0]["progress"]["completed"])


def run_seconds(task: dict[str, Any]) -> float:
    started = min(timestamp(s["creationTimestamp"]) for s in task["subTasks"] if s.get("creationTimestamp"))
    return timestamp(task["completionTimestamp"]) - started


def test_before_any_task_the_gauges_are_zero(recorded_run: RecordedRun) -> None:
    found = samples(recorded_run.scrapes["start"])
    assert value(found, "sddc_backup_last_successful_backup_timestamp_seconds") == 0
    assert value(found, "sddc_backup_uploaded_bytes_total") == 0
    assert not [k for k in found if k[0] in ("sddc_backup_tasks", "sddc_backup_task_failures_total")]


def test_a_successful_backup_sets_the_timestamp_duration_size_and_uploaded_bytes(
    recorded_run: RecordedRun,
) -> None:
    found = samples(recorded_run.scrapes["after backup"])
    backup = recorded_run.tasks["backup"]
    last = value(found, "sddc_backup_last_successful_backup_timestamp_seconds")
    assert last == pytest.approx(timestamp(backup["completionTimestamp"]), abs=0.01)
    assert value(found, "sddc_backup_backup_duration_seconds_count", status="SUCCESSFUL") == 1
    duration = value(found, "sddc_backup_backup_duration_seconds_sum", status="SUCCESSFUL")
    assert duration == pytest.approx(run_seconds(backup), abs=0.01)
    uploaded = stage_progress(backup, "Upload the archive")
    stored = [p for p in recorded_run.directory.iterdir() if p.name.endswith(".tar.gz")]
    assert [p.stat().st_size for p in stored] == [uploaded] and uploaded > 0
    assert value(found, "sddc_backup_backup_size_bytes_count") == 1
    assert value(found, "sddc_backup_backup_size_bytes_sum") == uploaded
    assert value(found, "sddc_backup_backup_size_bytes_bucket", le="+Inf") == 1
    assert value(found, "sddc_backup_uploaded_bytes_total") == uploaded
    assert value(found, "sddc_backup_tasks", type="CONFIGURE_BACKUP", status="SUCCESSFUL") == 1
    assert value(found, "sddc_backup_tasks", type="SDDC_MANAGER_BACKUP", status="SUCCESSFUL") == 1
    assert not [k for k in found if k[0] == "sddc_backup_task_failures_total"]


def test_a_restore_sets_its_duration_and_bytes_read_and_a_failed_one_counts_as_a_failure(
    recorded_run: RecordedRun,
) -> None:
    restored = samples(recorded_run.scrapes["after restore"])
    restore = recorded_run.tasks["restore"]
    read = stage_progress(restore, "Decrypt and verify the backup")
    assert read == stage_progress(recorded_run.tasks["backup"], "Upload the archive")
    assert value(restored, "sddc_backup_restore_duration_seconds_count", status="SUCCESSFUL") == 1
    duration = value(restored, "sddc_backup_restore_duration_seconds_sum", status="SUCCESSFUL")
    assert duration == pytest.approx(run_seconds(restore), abs=0.01)
    assert value(restored, "sddc_backup_restore_read_bytes_sum") == read
    assert value(restored, "sddc_backup_tasks", type="SDDC_MANAGER_RESTORE", status="SUCCESSFUL") == 1
    kind = "SDDC_MANAGER_BACKUP_VERIFICATION"
    assert value(restored, "sddc_backup_tasks", type=kind, status="SUCCESSFUL") == 1

    failed = samples(recorded_run.scrapes["after failed restore"])
    code = recorded_run.tasks["failed restore"]["errors"][0]["errorCode"]
    assert value(failed, "sddc_backup_task_failures_total", type="SDDC_MANAGER_RESTORE", error_code=code) == 1
    assert value(failed, "sddc_backup_restore_duration_seconds_count", status="FAILED") == 1
    assert value(failed, "sddc_backup_restore_read_bytes_count") == 1  # successful restores only
    assert value(failed, "sddc_backup_tasks", type="SDDC_MANAGER_RESTORE", status="FAILED") == 1


def test_a_failed_backup_counts_by_error_code_and_leaves_the_last_success_alone(
    recorded_run: RecordedRun,
) -> None:
    before = samples(recorded_run.scrapes["after restart"])
    found = samples(recorded_run.scrapes["after failed backup"])
    assert recorded_run.tasks["failed backup"]["errors"][0]["errorCode"] == "INJECTED_FAULT"
    failures = value(
        found, "sddc_backup_task_failures_total", type="SDDC_MANAGER_BACKUP", error_code="INJECTED_FAULT"
    )
    assert failures == 1
    assert value(found, "sddc_backup_backup_duration_seconds_count", status="FAILED") == 1
    assert value(found, "sddc_backup_tasks", type="SDDC_MANAGER_BACKUP", status="FAILED") == 1
    for unchanged in (
        "sddc_backup_last_successful_backup_timestamp_seconds",
        "sddc_backup_uploaded_bytes_total",
    ):
        assert value(found, unchanged) == value(before, unchanged) > 0


def test_a_skipped_scheduled_run_is_counted_by_its_reason(recorded_run: RecordedRun) -> None:
    found = samples(recorded_run.scrapes["after skipped run"])
    reason = recorded_run.tasks["skipped"]["errors"][0]["errorCode"]
    assert reason == "BACKUP_IN_PROGRESS"
    assert value(found, "sddc_backup_scheduled_runs_skipped_total", reason=reason) == 1
    assert value(found, "sddc_backup_tasks", type="SDDC_MANAGER_BACKUP", status="SKIPPED") == 1
    assert value(found, "sddc_backup_tasks", type="SDDC_MANAGER_BACKUP", status="CANCELLED") == 1
    assert value(found, "sddc_backup_backup_duration_seconds_count", status="CANCELLED") == 1
    assert value(found, "sddc_backup_tasks", type="CONFIGURE_BACKUP", status="SUCCESSFUL") == 2


@pytest.mark.parametrize(
    ("before", "after"),
    [("after failed restore", "after restart"), ("after skipped run", "after second restart")],
)
def test_task_metrics_are_the_same_after_a_restart(
    recorded_run: RecordedRun, before: str, after: str
) -> None:
    expected = task_samples(samples(recorded_run.scrapes[before]))
    assert len(expected) > 20
    assert task_samples(samples(recorded_run.scrapes[after])) == expected


def test_request_latency_is_labelled_by_route_template_method_and_status(recorded_run: RecordedRun) -> None:
    found = samples(recorded_run.scrapes["after backup"])
    name = "sddc_backup_http_request_duration_seconds_count"
    labels = [dict(k[1]) for k in found if k[0] == name]
    assert {"method": "GET", "route": "/v1/tasks/{task_id}", "status": "200"} in labels
    assert {"method": "POST", "route": "/v1/tokens", "status": "401"} in labels
    assert {"method": "GET", "route": "/v1/vcf-services", "status": "401"} in labels
    assert not [lab for lab in labels if UUID.search(lab["route"])]


def test_metrics_need_credentials_and_accept_any_role(server: ServerProcess) -> None:
    api = Api(server)
    assert_vcf_error(api.request("GET", "/metrics"), 401, "Unauthenticated")
    assert_vcf_error(api.request("GET", "/metrics", auth=("viewer@local", "wrong-password")), 401)
    viewer = api.request("GET", "/metrics", auth=("viewer@local", "Viewer!pass-1"))
    assert viewer.status_code == 200
    assert viewer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "sddc_backup_tasks" in viewer.text
