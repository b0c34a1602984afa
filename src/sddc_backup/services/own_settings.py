"""The service's own settings as they go into a backup: ``appliancemanager_*.json`` documents."""

from __future__ import annotations

from sddc_backup.persistence.config_store import BackupConfigurationStore, configuration_to_dict
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
