"""The service's own settings replaced by a restore, in one transaction that is also the restore's commit.

The same transaction that writes the restored backup configuration and users records the restore's id
under ``restore_commit``. After a crash, that record is how recovery tells a committed restore (finish
it) from one that was not (roll it back): the two cannot disagree, because they commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sddc_backup.domain.backup_config import BackupConfiguration
from sddc_backup.domain.users import User
from sddc_backup.persistence.config_store import KEY as CONFIGURATION_KEY
from sddc_backup.persistence.config_store import configuration_to_dict
from sddc_backup.persistence.secret_box import SecretBox
from sddc_backup.persistence.settings_store import put_setting
from sddc_backup.persistence.tables import RefreshTokenRow, SettingRow, UserRow
from sddc_backup.persistence.users import user_row

COMMIT_KEY = "restore_commit"


class OwnSettingsStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
        self._sessions = sessions
        self._box = box

    async def replace(
        self,
        configuration: BackupConfiguration,
        users: Sequence[tuple[User, str]],
        keep: Sequence[str],
        restore_id: str,
        now: datetime,
    ) -> None:
        """Replace the configuration and the users (except those named in ``keep``), end every other
        session, and record ``restore_id`` as committed: all in one transaction."""
        sealed = configuration_to_dict(configuration, self._box.seal)
        async with self._sessions() as session, session.begin():
            await put_setting(session, CONFIGURATION_KEY, sealed, now)
            await session.execute(delete(RefreshTokenRow).where(RefreshTokenRow.username.not_in(keep)))
            await session.execute(delete(UserRow).where(UserRow.username.not_in(keep)))
            for user, password_hash in users:
                if user.username in keep:
                    continue
                session.add(user_row(user, password_hash))
            await put_setting(
                session, COMMIT_KEY, {"restoreId": restore_id, "committedAt": now.isoformat()}, now
            )

    async def committed(self, restore_id: str) -> bool:
        """Whether the restore ``restore_id`` reached its commit."""
        async with self._sessions() as session:
            row = await session.get(SettingRow, COMMIT_KEY)
            return row is not None and row.value.get("restoreId") == restore_id
