"""A scheduled run that falls during a restore is skipped and recorded, with nothing lost: the whole
service in this process (real engine, state store and restore task), with the clock in the test's hand."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sddc_backup.app.runtime import Runtime
from sddc_backup.app.settings import Settings
from sddc_backup.domain.backup_config import (
    BackupConfiguration,
    BackupLocation,
    BackupSchedule,
    Frequency,
    LocationProtocol,
    RetentionPolicy,
)
from sddc_backup.domain.tasks import Task, TaskStatus
from sddc_backup.persistence.task_store import TaskQuery

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


HANG = "Decrypt and verify the backup"  # the system is quiesced by then


class ManualClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


async def wait_for_stage(runtime: Runtime, task_id: str, stage: str) -> Task:
    for _ in range(400):
        task = await runtime.engine.get(task_id)
        if task.current_stage is not None and task.current_stage.name == stage:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"the restore never reached {stage!r}: {task}")


def hourly_to(target: Path) -> BackupConfiguration:
    """Hourly scheduled backups at minute 0 into the new local directory ``target``."""
    target.mkdir()
    return BackupConfiguration(
        location=BackupLocation(LocationProtocol.LOCAL, str(target)),
        schedule=BackupSchedule(
            Frequency.HOURLY, True, False, minute_of_hour=0, retention=RetentionPolicy(10, 2, 15)
        ),
        passphrase="VMw@re1!VMw@re1!",
    )


async def test_a_scheduled_run_during_a_restore_is_skipped_and_recorded(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 27, 10, 30, tzinfo=UTC))
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    settings = Settings(
        data_dir=tmp_path / "data",
        fqdn="sddc.test.local",
        restore_dirs=[incoming],
        faults=json.dumps({f"SDDC_MANAGER_RESTORE:{HANG}": "hang"}),
    )
    runtime = await Runtime.open(settings, clock)
    try:
        target = tmp_path / "backups"
        config = hourly_to(target)
        await runtime.configuration_store.put(config, clock.now())
        await runtime.scheduler.tick()  # the schedule starts now: nothing is due yet
        assert await runtime.engine.find(TaskQuery()) == []

        backup_file = incoming / "vcf-backup-sddc-test-local-2026-11-27-09-00-00.tar.gz"
        backup_file.write_bytes(b"the restore hangs before it reads this")
        restore = await runtime.api.restores.start(["SDDC_MANAGER"], str(backup_file), "VMw@re1!VMw@re1!")
        await wait_for_stage(runtime, restore.id, HANG)

        clock.moment += timedelta(hours=1)  # 11:30: the 11:00 run is due, and the restore still runs
        await runtime.scheduler.tick()
        await runtime.scheduler.tick()  # recorded once, not once per round
        tasks = await runtime.engine.find(TaskQuery(type="SDDC_MANAGER_BACKUP"))
        assert [t.status for t in tasks] == [TaskStatus.SKIPPED]
        skipped = tasks[0]
        assert skipped.name == "SDDC Manager backup (scheduled)"
        assert skipped.errors[0].error_code == "RESTORE_IN_PROGRESS"
        assert skipped.errors[0].context == {"slot": "2026-11-27T11:00:00+00:00"}
        assert list(target.iterdir()) == []  # no backup was started
        assert await runtime.configuration_store.get() == config  # nothing lost
        assert (await runtime.engine.get(restore.id)).status is TaskStatus.IN_PROGRESS
    finally:
        await runtime.close()


async def test_a_clock_set_back_does_not_stop_the_schedule(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 27, 15, 30, tzinfo=UTC))
    runtime = await Runtime.open(Settings(data_dir=tmp_path / "data", fqdn="sddc.test.local"), clock)
    try:
        target = tmp_path / "backups"
        config = hourly_to(target)
        await runtime.configuration_store.put(config, clock.now())
        await runtime.scheduler.tick()  # the schedule starts at 15:30
        clock.moment = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)  # set back five hours
        await runtime.scheduler.tick()
        clock.moment = datetime(2026, 11, 27, 11, 0, 1, tzinfo=UTC)  # the next slot, long before 15:30
        await runtime.scheduler.tick()
        tasks = await runtime.engine.find(TaskQuery(type="SDDC_MANAGER_BACKUP"))
        assert [t.name for t in tasks] == ["SDDC Manager backup (scheduled)"]
        for _ in range(400):
            if (await runtime.engine.get(tasks[0].id)).status.is_terminal:
                break
            await asyncio.sleep(0.05)
        assert (await runtime.engine.get(tasks[0].id)).status is TaskStatus.SUCCESSFUL
    finally:
        await runtime.close()
