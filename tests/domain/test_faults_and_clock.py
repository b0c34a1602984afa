"""Fault plans parsed from the SDDC_BACKUP_FAULTS setting, and the VCF timestamp format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sddc_backup.domain.clock import SystemClock, to_vcf_timestamp
from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.domain.faults import FaultAction, FaultPlan


def test_a_fault_plan_maps_each_point_to_its_action() -> None:
    plan = FaultPlan.parse('{"CONFIGURE_BACKUP:Check backup location": "hang", "BACKUP:Upload": "fail"}')
    assert plan.action_at("CONFIGURE_BACKUP:Check backup location") is FaultAction.HANG
    assert plan.action_at("BACKUP:Upload") is FaultAction.FAIL
    assert plan.action_at("BACKUP:Archive") is None
    assert plan.actions == {
        "CONFIGURE_BACKUP:Check backup location": FaultAction.HANG,
        "BACKUP:Upload": FaultAction.FAIL,
    }


@pytest.mark.parametrize("text", [pytest.param("", id="empty"), pytest.param(" \n\t", id="blank")])
def test_an_empty_setting_is_the_empty_plan(text: str) -> None:
    plan = FaultPlan.parse(text)
    assert plan == FaultPlan()
    assert plan.actions == {}
    assert plan.action_at("BACKUP:Upload") is None


def test_an_empty_json_object_is_the_empty_plan() -> None:
    assert FaultPlan.parse("{}").actions == {}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("hang", id="not-json"),
        pytest.param('{"BACKUP:Upload": "hang"', id="truncated-json"),
        pytest.param('["BACKUP:Upload", "hang"]', id="a-list"),
        pytest.param('"hang"', id="a-string"),
        pytest.param("null", id="null"),
        pytest.param("42", id="a-number"),
        pytest.param('{"BACKUP:Upload": "explode"}', id="unknown-action"),
        pytest.param('{"BACKUP:Upload": "HANG"}', id="action-in-upper-case"),
        pytest.param('{"BACKUP:Upload": 1}', id="action-not-a-string"),
        pytest.param('{"BACKUP:Upload": null}', id="action-null"),
    ],
)
def test_a_setting_that_is_not_a_fault_plan_is_refused_as_an_invalid_setting(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        FaultPlan.parse(text)
    assert caught.value.error_code == "INVALID_SETTING"
    assert "SDDC_BACKUP_FAULTS" in caught.value.message
    assert "JSON object" in caught.value.remediation
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        pytest.param(
            datetime(2025, 11, 18, 15, 11, 34, 795_000, tzinfo=UTC), "2025-11-18T15:11:34.795Z", id="utc"
        ),
        pytest.param(
            datetime(2025, 11, 18, 15, 11, 34, tzinfo=UTC), "2025-11-18T15:11:34.000Z", id="whole-second"
        ),
        pytest.param(
            datetime(2025, 1, 2, 3, 4, 5, 7_000, tzinfo=UTC), "2025-01-02T03:04:05.007Z", id="zero-padded"
        ),
        pytest.param(
            datetime(2025, 11, 18, 15, 11, 34, 795_999, tzinfo=UTC),
            "2025-11-18T15:11:34.795Z",
            id="truncated-ms",
        ),
        pytest.param(
            datetime(2025, 11, 18, 17, 11, 34, 795_000, tzinfo=timezone(timedelta(hours=2))),
            "2025-11-18T15:11:34.795Z",
            id="plus-two-hours",
        ),
        pytest.param(
            datetime(2025, 11, 18, 21, 30, 0, 0, tzinfo=timezone(timedelta(hours=-5))),
            "2025-11-19T02:30:00.000Z",
            id="minus-five-hours-crosses-midnight",
        ),
        pytest.param(
            datetime(2026, 1, 1, 5, 29, 59, 1_000, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2025-12-31T23:59:59.001Z",
            id="half-hour-offset-crosses-the-year",
        ),
    ],
)
def test_vcf_timestamps_are_utc_with_milliseconds_and_a_z(moment: datetime, expected: str) -> None:
    assert to_vcf_timestamp(moment) == expected


def test_the_system_clock_gives_an_aware_utc_time() -> None:
    now = SystemClock().now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
    assert to_vcf_timestamp(now).endswith("Z")
