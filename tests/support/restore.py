"""What restore tests share: VCF's phase names (spelled out here, from the VCF reference, not taken
from the code under test), and taking a backup and restoring it through the API."""

from __future__ import annotations

from typing import Any

from tests.support.http import Api
from tests.support.sshd import SshServer

PASSPHRASE = "VMw@re1!VMw@re1!"
ELEMENTS = [{"resourceType": "SDDC_MANAGER"}]
# VCF's restore phases in tasksOrder order (new_restore_status.json: no PostRestoreNfsRefresh).
PHASE_NAMES = [
    "StopSDDCManagerServices",
    "ExtractSDDCManagerBackup",
    "RestoreSDDCManagerConfiguration",
    "RestoreSDDCManagerDatabase",
    "StartSDDCManagerServices",
    "RestoreSDDCSystemConfiguration",
    "PostRestoreRemediation",
    "UnquiesceSystem",
]


def back_up(api: Api, token: str, sftp: SshServer) -> str:
    """Configure ``sftp``, take a backup, and return its file name."""
    spec = {"backupLocations": [sftp.location_spec()], "encryption": {"passphrase": PASSPHRASE}}
    r = api.request("PUT", "/v1/system/backup-configuration", token, json=spec)
    assert api.wait_task(r.json()["id"], token)["status"] == "SUCCESSFUL"
    r = api.request("POST", "/v1/backups/tasks", token, json={"elements": ELEMENTS})
    task = api.wait_task(r.json()["id"], token, timeout=120)
    assert task["status"] == "SUCCESSFUL", task
    return str(api.request("GET", "/v1/backups", token).json()["elements"][0]["fileName"])


def restore(api: Api, token: str, backup_file: str, passphrase: str = PASSPHRASE) -> dict[str, Any]:
    body = {"elements": ELEMENTS, "backupFile": backup_file, "encryption": {"passphrase": passphrase}}
    r = api.request("POST", "/v1/restores/tasks", token, json=body)
    assert r.status_code == 202, r.text
    assert r.json()["status"] in ("Pending", "In Progress")
    return api.wait_task(r.json()["id"], token, timeout=180, prefix="/v1/restores/tasks")
