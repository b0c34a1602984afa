"""Backups composed from the settings and the state store, for ``archive create``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sddc_backup.app.runtime import Runtime
from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.services import archives
from sddc_backup.services.own_settings import own_settings_files


class LocalBackupMaker:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def create(self, out_dir: Path, passphrase: bytes) -> archives.CreatedArchive:
        runtime, settings = self._runtime, self._runtime.settings
        missing = settings.passphrase_policy.problems(passphrase.decode(errors="replace"))
        if missing:
            raise InvalidInputError(
                "The passphrase needs " + ", ".join(missing) + ".",
                error_code="PASSPHRASE_POLICY_VIOLATION",
                remediation=f"Choose a passphrase with {settings.passphrase_policy.describe()}.",
            )
        now = runtime.clock.now()
        own = await own_settings_files(runtime.configuration_store, runtime.user_store)
        layout = runtime.layout
        components = layout.components(own, now.timestamp())
        return await asyncio.to_thread(
            archives.create,
            out_dir,
            settings.fqdn,
            runtime.clock,
            components,
            layout.paths,
            passphrase,
            level=settings.archive_compression_level,
        )
