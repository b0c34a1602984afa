"""The transitions of a Task, its subtasks and their stages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sddc_backup.domain.tasks import (
    ErrorRecord,
    Progress,
    ResolutionStatus,
    StepStatus,
    SubTask,
    Task,
    TaskStatus,
)

T0 = datetime(2025, 11, 18, 15, 11, 34, tzinfo=UTC)
T1, T2, T3, T4 = (T0 + timedelta(seconds=n) for n in range(1, 5))
BOOM = ErrorRecord(
    error_code="SFTP_UNREACHABLE", message="the server did not answer", remediation="Check it."
)


def make_task(*planned: str, retryable: bool = True) -> Task:
    return Task(
        id="task-1",
        name="Backup SDDC Manager",
        type="SDDC_MANAGER_BACKUP",
        status=TaskStatus.PENDING,
        created=T0,
        is_cancellable=True,
        is_retryable_type=retryable,
        subtasks=[SubTask(name=name, description=f"{name}.") for name in planned],
    )


def statuses(task: Task) -> list[StepStatus]:
    return [sub.status for sub in task.subtasks]


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        (TaskStatus.PENDING, False),
        (TaskStatus.IN_PROGRESS, False),
        (TaskStatus.SUCCESSFUL, True),
        (TaskStatus.FAILED, True),
        (TaskStatus.CANCELLED, True),
    ],
)
def test_only_successful_failed_and_cancelled_are_terminal(status: TaskStatus, terminal: bool) -> None:
    assert status.is_terminal is terminal


def test_a_new_task_is_pending_unresolved_and_not_retryable() -> None:
    task = make_task("Prepare")
    assert task.attempts == 0
    assert task.resolution_status is None
    assert task.is_retryable is False
    assert task.current_subtask is None
    assert task.progress is None


def test_start_puts_the_task_in_progress_and_counts_the_attempt() -> None:
    task = make_task("Prepare")
    task.start(T1)
    assert task.status is TaskStatus.IN_PROGRESS
    assert task.attempts == 1
    assert task.completed is None
    assert task.resolution_status is None


def test_starting_again_after_a_failure_resets_every_subtask() -> None:
    task = make_task("Prepare", "Upload")
    task.start(T0)
    task.begin_subtask("Prepare", T1)
    task.begin_stage("Archive", "Archive the data", T1)
    task.begin_subtask("Upload", T2)
    task.fail(BOOM, T3)
    task.start(T4)
    assert task.attempts == 2
    assert task.status is TaskStatus.IN_PROGRESS
    assert task.errors == []
    assert task.completed is None
    assert [s.name for s in task.subtasks] == ["Prepare", "Upload"]
    for sub in task.subtasks:
        assert (sub.status, sub.created, sub.completed, sub.stages, sub.errors) == (
            StepStatus.PENDING,
            None,
            None,
            [],
            [],
        )


def test_begin_subtask_finishes_the_running_one_successfully() -> None:
    task = make_task("Prepare", "Upload")
    task.start(T0)
    first = task.begin_subtask("Prepare", T1)
    stage = task.begin_stage("Archive", "Archive the data", T1)
    second = task.begin_subtask("Upload", T2)
    assert (first.status, first.created, first.completed) == (StepStatus.SUCCESSFUL, T1, T2)
    assert (stage.status, stage.completed) == (StepStatus.SUCCESSFUL, T2)
    assert (second.status, second.created) == (StepStatus.IN_PROGRESS, T2)
    assert task.current_subtask is second
    assert task.current_stage is None


def test_an_unplanned_subtask_is_appended() -> None:
    task = make_task("Prepare")
    task.start(T0)
    sub = task.begin_subtask("Verify", T1)
    assert [s.name for s in task.subtasks] == ["Prepare", "Verify"]
    assert (sub.description, sub.status) == ("Verify", StepStatus.IN_PROGRESS)
    assert task.subtasks[0].status is StepStatus.PENDING


def test_a_stage_without_a_running_subtask_opens_one_named_after_the_task() -> None:
    task = make_task()
    task.start(T0)
    stage = task.begin_stage("Archive", "Archive the data", T1)
    assert [s.name for s in task.subtasks] == ["Backup SDDC Manager"]
    assert task.current_subtask is task.subtasks[0]
    assert task.current_stage is stage
    assert (stage.name, stage.description, stage.created) == ("Archive", "Archive the data", T1)


def test_begin_stage_finishes_the_previous_stage_successfully() -> None:
    task = make_task("Prepare")
    task.start(T0)
    task.begin_subtask("Prepare", T0)
    first = task.begin_stage("Archive", "Archive the data", T1)
    second = task.begin_stage("Encrypt", "Encrypt the archive", T2)
    assert (first.status, first.completed) == (StepStatus.SUCCESSFUL, T2)
    assert (second.status, second.completed) == (StepStatus.IN_PROGRESS, None)
    assert task.subtasks[0].stages == [first, second]
    assert task.current_stage is second


def test_progress_lands_on_the_running_stage() -> None:
    task = make_task("Prepare")
    task.start(T0)
    task.begin_subtask("Prepare", T0)
    first = task.begin_stage("Archive", "Archive the data", T1)
    task.report_progress(512, 2048, "bytes")
    assert first.progress == Progress(completed=512, total=2048, unit="bytes")
    assert task.progress == Progress(512, 2048, "bytes")
    second = task.begin_stage("Upload", "Upload the archive", T2)
    assert task.progress is None
    task.report_progress(3, None, "files")
    assert second.progress == Progress(3, None, "files")
    assert first.progress == Progress(512, 2048, "bytes")


def test_progress_without_a_running_stage_is_ignored() -> None:
    task = make_task("Prepare")
    task.start(T0)
    task.begin_subtask("Prepare", T0)
    task.report_progress(1, 2, "bytes")
    assert task.progress is None
    assert task.subtasks[0].stages == []


def test_succeed_finishes_the_running_steps_and_skips_the_pending_ones() -> None:
    task = make_task("Prepare", "Upload", "Verify")
    task.start(T0)
    task.begin_subtask("Prepare", T1)
    stage = task.begin_stage("Archive", "Archive the data", T1)
    task.succeed(T2)
    assert statuses(task) == [StepStatus.SUCCESSFUL, StepStatus.SKIPPED, StepStatus.SKIPPED]
    assert (stage.status, stage.completed) == (StepStatus.SUCCESSFUL, T2)
    assert (task.status, task.completed) == (TaskStatus.SUCCESSFUL, T2)
    assert task.resolution_status is ResolutionStatus.RESOLVED
    assert task.is_retryable is False
    assert task.errors == []


@pytest.mark.parametrize("retryable", [True, False])
def test_fail_records_the_error_on_the_task_and_the_running_step(retryable: bool) -> None:
    task = make_task("Prepare", "Upload", retryable=retryable)
    task.start(T0)
    task.begin_subtask("Prepare", T1)
    done = task.begin_stage("Archive", "Archive the data", T1)
    running = task.begin_stage("Encrypt", "Encrypt the archive", T2)
    task.fail(BOOM, T3)
    prepare = task.subtasks[0]
    assert (prepare.status, prepare.completed, prepare.errors) == (StepStatus.FAILED, T3, [BOOM])
    assert (running.status, running.completed, running.errors) == (StepStatus.FAILED, T3, [BOOM])
    assert (done.status, done.errors) == (StepStatus.SUCCESSFUL, [])
    assert task.subtasks[1].status is StepStatus.PENDING
    assert (task.status, task.completed, task.errors) == (TaskStatus.FAILED, T3, [BOOM])
    assert task.resolution_status is ResolutionStatus.UNRESOLVED
    assert task.is_retryable is retryable
    assert task.current_subtask is None


def test_fail_before_any_subtask_records_the_error_on_the_task_only() -> None:
    task = make_task("Prepare")
    task.start(T0)
    task.fail(BOOM, T1)
    assert task.errors == [BOOM]
    assert task.subtasks[0].errors == []
    assert task.subtasks[0].status is StepStatus.PENDING


@pytest.mark.parametrize("retryable", [True, False])
def test_cancel_ends_the_task_cancelled_and_fails_the_running_step(retryable: bool) -> None:
    task = make_task("Prepare", retryable=retryable)
    task.start(T0)
    task.begin_subtask("Prepare", T1)
    stage = task.begin_stage("Archive", "Archive the data", T1)
    cancelled = ErrorRecord("TASK_CANCELLED", "cancelled by admin@local", "Start it again.")
    task.cancel(cancelled, T2)
    assert (task.status, task.completed, task.errors) == (TaskStatus.CANCELLED, T2, [cancelled])
    assert (task.subtasks[0].status, task.subtasks[0].errors) == (StepStatus.FAILED, [cancelled])
    assert (stage.status, stage.errors) == (StepStatus.FAILED, [cancelled])
    assert task.is_retryable is False
    assert task.resolution_status is ResolutionStatus.RESOLVED


SUBTASK_NAMES = st.sampled_from(["Prepare", "Upload", "Verify", "Extra"])
STEP = st.one_of(
    st.tuples(st.just("subtask"), SUBTASK_NAMES),
    st.tuples(st.just("stage"), st.sampled_from(["Archive", "Encrypt", "Send"])),
)


@given(st.lists(STEP, max_size=30))
def test_at_most_one_subtask_and_one_stage_are_ever_in_progress(steps: list[tuple[str, str]]) -> None:
    task = make_task("Prepare", "Upload")
    task.start(T0)
    for n, (kind, name) in enumerate(steps):
        now = T0 + timedelta(seconds=n)
        if kind == "subtask":
            assert task.begin_subtask(name, now).status is StepStatus.IN_PROGRESS
        else:
            assert task.begin_stage(name, name, now) is task.current_stage
        running = [s for s in task.subtasks if s.status is StepStatus.IN_PROGRESS]
        assert running == [task.current_subtask]
        running_stages = [g for s in task.subtasks for g in s.stages if g.status is StepStatus.IN_PROGRESS]
        assert len(running_stages) <= 1
        assert all(any(g is x for x in running[0].stages) for g in running_stages)


@given(st.lists(STEP, max_size=20), st.booleans())
def test_after_the_task_ends_no_step_is_left_in_progress(steps: list[tuple[str, str]], succeed: bool) -> None:
    task = make_task("Prepare", "Upload")
    task.start(T0)
    for kind, name in steps:
        if kind == "subtask":
            task.begin_subtask(name, T1)
        else:
            task.begin_stage(name, name, T1)
    if succeed:
        task.succeed(T2)
    else:
        task.fail(BOOM, T2)
    assert task.current_subtask is None
    all_statuses = [s.status for s in task.subtasks] + [g.status for s in task.subtasks for g in s.stages]
    assert StepStatus.IN_PROGRESS not in all_statuses
    if succeed:
        assert StepStatus.PENDING not in all_statuses
        assert StepStatus.FAILED not in all_statuses
