"""``open_storage``: the backend a ``BackupLocation`` names, wrapped in retries (and scripted faults
when a test asks for them). The one place where the chain is composed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sddc_backup.domain.backup_config import BackupLocation, LocationProtocol
from sddc_backup.domain.storage import Storage
from sddc_backup.storage.local import local_storage
from sddc_backup.storage.sftp import SftpSettings, sftp_storage
from sddc_backup.storage.wrappers import Fault, FaultyStorage, RetryingStorage, RetryPolicy


def sftp_settings(location: BackupLocation, client_keys: Sequence[str] = ()) -> SftpSettings:
    assert location.server is not None and location.username is not None
    return SftpSettings(
        host=location.server,
        port=location.port or 22,
        username=location.username,
        directory=location.directory_path,
        password=location.password,
        client_keys=tuple(client_keys),
        fingerprint=location.ssh_fingerprint,
    )


async def open_storage(
    location: BackupLocation,
    *,
    policy: RetryPolicy | None = None,
    faults: Sequence[Fault] = (),
    client_keys: Sequence[str] = (),
) -> Storage:
    """The storage of ``location``: connections are opened lazily, on the first operation."""
    backend: Storage
    if location.protocol is LocationProtocol.LOCAL:
        backend = local_storage(Path(location.directory_path))
    else:
        backend = await sftp_storage(sftp_settings(location, client_keys))
    if faults:
        backend = FaultyStorage(backend, list(faults))
    return RetryingStorage(backend, policy)
