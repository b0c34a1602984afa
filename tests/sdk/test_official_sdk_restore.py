"""A restore driven with the official VMware SDK (``vmware-sddc-manager``): ``RestoreTasks.start_restore``
and ``get_restore_task`` against a real server that restores a real appliance (PostgreSQL, two
directory trees, a SQLite file) from a backup the SDK took to a real SFTP server.

The SDK is set up as in test_official_sdk.py (pinned certificate, REST protocol, stub configuration by
hand); its statuses are plain strings, so the restore's mixed-case ones come through as sent.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vmware.sddc_manager import model_client as m
from vmware.sddc_manager.v1.backups_client import Tasks as BackupTasks
from vmware.sddc_manager.v1.restores_client import Tasks as RestoreTasks
from vmware.sddc_manager.v1.system_client import BackupConfiguration
from vmware.sddc_manager.v1_client import Tasks
from vmware.vapi.bindings.error import VapiError

from tests.sdk.test_official_sdk import MASK, PASSPHRASE, Sdk, location_dict, plain, sftp_location, wait_task
from tests.support.appliance import Appliance
from tests.support.restore import PHASE_NAMES
from tests.support.server import ServerProcess
from tests.support.sshd import SshServer

SDDC_MANAGER = [m.BackupResource(resource_type="SDDC_MANAGER")]


@pytest.fixture
def server(tmp_path: Path, appliance: Appliance) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data")
    proc.base_env = appliance.env()
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def staged(tmp_path: Path) -> Iterator[Path]:
    """Where the backup file is copied for the restore: /tmp, as VCF's procedure has it."""
    path = Path("/tmp") / f"{tmp_path.name}-{uuid.uuid4().hex[:8]}.tar.gz"
    yield path
    path.unlink(missing_ok=True)


def follow_restore(cfg: Any, task_id: str, timeout: float = 300.0) -> tuple[m.Task, list[str]]:
    """Poll ``get_restore_task`` until the restore ends; returns the task and every status seen."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        task = RestoreTasks(cfg).get_restore_task(task_id)
        assert isinstance(task, m.Task), task
        seen.append(task.status)
        if task.status.lower() in ("successful", "failed"):
            return task, seen
        assert time.monotonic() < deadline, plain(task)
        time.sleep(0.05)


def test_sdk_backs_up_and_restores_every_part_of_the_appliance(
    server: ServerProcess, appliance: Appliance, sftp_server: SshServer, staged: Path
) -> None:
    sdk = Sdk(server)
    cfg = sdk.recording_config(sdk.login().access_token)
    location = sftp_location(sftp_server)
    spec = m.BackupConfigurationSpec(
        backup_locations=[location], encryption=m.Encryption(passphrase=PASSPHRASE)
    )
    configure = plain(BackupConfiguration(cfg).set_backup_configuration(spec))
    assert wait_task(cfg, configure["id"])["status"] == "SUCCESSFUL"

    before = appliance.snapshot()
    databases = appliance.databases()
    existing = {p.name for p in sftp_server.directory.glob("*.tar.gz")}
    backup = BackupTasks(cfg).start_backup(m.BackupSpec(elements=SDDC_MANAGER))
    assert cfg.response_extractor.get_http_status() == 202
    done = wait_task(cfg, backup.id, timeout=180)
    assert done["status"] == "SUCCESSFUL", done
    (name,) = {p.name for p in sftp_server.directory.glob("*.tar.gz")} - existing

    appliance.change_everything()
    assert appliance.snapshot() != before
    shutil.copyfile(sftp_server.directory / name, staged)

    restore = m.RestoreSpec(
        elements=SDDC_MANAGER, backup_file=str(staged), encryption=m.Encryption(passphrase=PASSPHRASE)
    )
    started = RestoreTasks(cfg).start_restore(restore)
    assert cfg.response_extractor.get_http_status() == 202
    assert isinstance(started, m.Task) and started.id, started
    assert started.status in ("Pending", "In Progress"), started.status
    assert started.type == "SDDC_MANAGER_RESTORE"

    task, seen = follow_restore(cfg, started.id)
    assert task.status == "Successful", plain(task.errors)
    assert set(seen) <= {"Pending", "In Progress", "Successful"}, seen
    assert all(isinstance(s, m.SubTask) for s in task.sub_tasks)
    assert [s.name for s in task.sub_tasks] == PHASE_NAMES
    assert [s.status for s in task.sub_tasks] == ["Successful"] * len(PHASE_NAMES)
    assert all(s.description and s.completion_timestamp for s in task.sub_tasks)
    assert task.creation_timestamp and task.completion_timestamp
    assert [(r.type, r.resource_id) for r in task.resources] == [("SDDC_MANAGER", "sddc-backup.test.local")]
    assert task.errors == []
    assert Tasks(cfg).get_task(started.id).status == "Successful"

    assert appliance.snapshot() == before
    assert appliance.databases() == databases
    got = BackupConfiguration(cfg).get_backup_configuration()
    assert got.is_configured is True
    assert [location_dict(loc) for loc in got.backup_locations] == [location_dict(location)]
    assert got.backup_locations[0].password == MASK and got.encryption.passphrase == MASK


def test_sdk_reads_an_unknown_restore_task_as_an_unresolved_vcf_error(server: ServerProcess) -> None:
    sdk = Sdk(server)
    cfg = sdk.recording_config(sdk.login().access_token)
    # 404 is not in get_restore_task's throws clause (400, 500): the SDK raises its generic error,
    # with the VCF Error body readable.
    with pytest.raises(VapiError) as caught:
        RestoreTasks(cfg).get_restore_task(str(uuid.uuid4()))
    assert not isinstance(caught.value, m.Error)
    assert cfg.response_extractor.get_http_status() == 404
    assert caught.value.get_error_value().get_field("errorCode").value == "TASK_NOT_FOUND"
