"""Checking a backup location before it is trusted, and what the API reports about locations.

``check_location`` runs the checks an operator needs to see one by one: the server answers, its host
key is the pinned one, the login works, the directory exists and takes a file (a real probe file,
written and deleted), and how much space is free. Both ``POST .../validations`` and every
configuration change run it; a configuration whose checks fail is not saved.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sddc_backup.domain.backup_config import BackupLocation, LocationProtocol
from sddc_backup.domain.errors import SddcBackupError
from sddc_backup.domain.storage import Storage
from sddc_backup.storage.errors import (
    FingerprintRequiredError,
    HostKeyMismatchError,
    HostKeyTypeNotOfferedError,
    HostUnreachableError,
    LoginFailedError,
    StorageError,
)
from sddc_backup.storage.factory import open_storage
from sddc_backup.storage.sftp_hostkeys import fetch_host_keys
from sddc_backup.storage.store import BytesSource
from sddc_backup.storage.wrappers import RetryPolicy

log = logging.getLogger(__name__)
LOW_SPACE = 1 << 30
# Checks fail fast: an operator is waiting for the answer.
CHECK_POLICY = RetryPolicy(attempts=2, first_delay=0.5, stall_timeout=60.0)


class CheckStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class Check:
    description: str
    status: CheckStatus
    severity: str = "ERROR"
    error: SddcBackupError | None = None
    detail: str = ""


REACHABLE = "The backup server is reachable"
HOST_KEY = "The backup server's SSH host key matches the pinned fingerprint"
LOGIN = "The backup user can log in"
DIRECTORY = "The backup directory exists and a file can be written in it"
SPACE = "Free space in the backup directory"
_SFTP_STEPS = (REACHABLE, HOST_KEY, LOGIN, DIRECTORY)
# The first step that an error of each kind means has failed; the steps before it succeeded.
_FAILED_STEP: dict[type[StorageError], str] = {
    HostUnreachableError: REACHABLE,
    FingerprintRequiredError: HOST_KEY,
    HostKeyMismatchError: HOST_KEY,
    HostKeyTypeNotOfferedError: HOST_KEY,
    LoginFailedError: LOGIN,
}

StorageOpener = Callable[[BackupLocation], Awaitable[Storage]]


async def _default_opener(location: BackupLocation) -> Storage:
    return await open_storage(location, policy=CHECK_POLICY)


async def check_location(location: BackupLocation, opener: StorageOpener = _default_opener) -> list[Check]:
    """Every check, in order; after the first failure the later ones are SKIPPED."""
    steps = _SFTP_STEPS if location.protocol is LocationProtocol.SFTP else (DIRECTORY,)
    storage: Storage | None = None
    try:
        storage = await opener(location)
        probe = f"sddc-backup-probe-{secrets.token_hex(6)}"
        await storage.put(probe, BytesSource(b"sddc-backup write probe\n"))
        await storage.delete(probe)
        free = await storage.free_space()
    except StorageError as exc:
        failed = _FAILED_STEP.get(type(exc), DIRECTORY)
        at = steps.index(failed) if failed in steps else len(steps) - 1
        return [
            *(Check(step, CheckStatus.SUCCEEDED) for step in steps[:at]),
            Check(steps[at], CheckStatus.FAILED, error=exc),
            *(Check(step, CheckStatus.SKIPPED) for step in steps[at + 1 :]),
            Check(SPACE, CheckStatus.SKIPPED, severity="WARNING"),
        ]
    finally:
        if storage is not None:
            await storage.close()
    return [*(Check(step, CheckStatus.SUCCEEDED) for step in steps), _space_check(free)]


def _space_check(free: int | None) -> Check:
    if free is None:
        return Check(SPACE, CheckStatus.SKIPPED, "INFO", detail="The server does not report free space.")
    detail = f"{free / (1 << 30):.1f} GiB free"
    if free < LOW_SPACE:
        return Check(SPACE, CheckStatus.FAILED, "WARNING", detail=f"Only {detail}.")
    return Check(SPACE, CheckStatus.SUCCEEDED, "INFO", detail=detail)


def first_error(checks: list[Check]) -> SddcBackupError | None:
    """The error of the first failed check of severity ERROR (warnings do not block a change)."""
    return next((c.error for c in checks if c.status is CheckStatus.FAILED and c.severity == "ERROR"), None)


async def host_keys(server: str, port: int) -> list[tuple[str, str]]:
    """The server's host keys as (key type, ``SHA256:`` fingerprint), ECDSA first. Nothing is sent but
    the SSH key exchange: no user name and no password."""
    return await fetch_host_keys(server, port)


STALE_AFTER = timedelta(days=1)


async def remove_stale_uploads(
    location: BackupLocation, now: datetime, opener: StorageOpener = _default_opener
) -> list[str]:
    """Remove temporary files that interrupted uploads left more than a day ago. Best effort: a
    failure is logged and does not fail the caller (the files are hidden from listings anyway)."""
    try:
        storage = await opener(location)
        try:
            removed = await storage.remove_stale_temporaries(now - STALE_AFTER)
        finally:
            await storage.close()
    except StorageError as exc:
        log.warning("stale temporary files could not be removed: %s", exc.message)
        return []
    for name in removed:
        log.info("removed the stale temporary file %s", name)
    return removed


class LocationAccess:
    """Opens backup locations with this service's SFTP client keys (``SDDC_BACKUP_SFTP_CLIENT_KEYS``),
    for the checks, the inventory and the backups alike. A location without a password logs in with
    the keys."""

    def __init__(self, client_keys: Sequence[str] = ()) -> None:
        self._keys = tuple(client_keys)

    async def open(self, location: BackupLocation, policy: RetryPolicy | None = None) -> Storage:
        return await open_storage(location, policy=policy, client_keys=self._keys)

    async def _open_for_checks(self, location: BackupLocation) -> Storage:
        return await self.open(location, CHECK_POLICY)

    async def check(self, location: BackupLocation) -> list[Check]:
        return await check_location(location, self._open_for_checks)

    async def remove_stale_uploads(self, location: BackupLocation, now: datetime) -> list[str]:
        return await remove_stale_uploads(location, now, self._open_for_checks)
