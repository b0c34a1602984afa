"""The service's own settings as they go into a backup: ``appliancemanager_*.json`` documents."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sddc_backup.archive.errors import CorruptArchiveError
from sddc_backup.domain.backup_config import BackupConfiguration
from sddc_backup.domain.users import Role, User
from sddc_backup.persistence.config_store import (
    BackupConfigurationStore,
    configuration_from_dict,
    configuration_to_dict,
)
from sddc_backup.persistence.users import UserStore
from sddc_backup.services.components.settings import render_json

BACKUP_CONFIGURATION = "appliancemanager_backup_configuration.json"
USERS = "appliancemanager_users.json"
KNOWN_HOSTS = "appliancemanager_ssh_knownHosts.json"


async def own_settings_files(config: BackupConfigurationStore, users: UserStore) -> dict[str, bytes]:
    """The documents, rendered. Secrets are in clear here: the archive that holds them is encrypted,
    and a restore onto a new host (with a new key) must be able to read them."""
    exported = await users.export()
    return {
        BACKUP_CONFIGURATION: render_json(configuration_to_dict(await config.get())),
        USERS: render_json(
            {
                "users": [
                    {
                        "username": u.username,
                        "role": u.role.value,
                        "passwordHash": h,
                        "created": u.created.isoformat(),
                    }
                    for u, h in exported
                ]
            }
        ),
        KNOWN_HOSTS: render_json({"knownHosts": []}),
    }


@dataclass(frozen=True)
class OwnSettings:
    """The service's own settings as a backup holds them, read back for a restore."""

    configuration: BackupConfiguration
    users: list[tuple[User, str]]


def read_own_settings(staging_root: Path) -> OwnSettings:
    """Parse the ``appliancemanager_*.json`` documents of an extracted (and verified) archive.

    Raises ``CorruptArchiveError`` naming the document when it is missing or not what it should be.
    """
    try:
        config = json.loads((staging_root / BACKUP_CONFIGURATION).read_text())
        users = json.loads((staging_root / USERS).read_text())["users"]
        return OwnSettings(
            configuration=configuration_from_dict(config),
            users=[
                (
                    User(u["username"], Role(u["role"]), datetime.fromisoformat(u["created"])),
                    str(u["passwordHash"]),
                )
                for u in users
            ],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptArchiveError(f"The backup's own settings cannot be read: {exc}") from exc
