"""The composition root and the ``sddc-backup`` entry point."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sddc_backup.cli.main import build_cli

if TYPE_CHECKING:  # each command imports what it runs: a client command needs none of the server
    from sddc_backup.cli.archive import BackupMaker
    from sddc_backup.services.users import UserAdmin


class _LocalCommands:
    """What the CLI's local commands need, built from the settings."""

    def serve(self, config: Path | None) -> None:
        from sddc_backup.app.server import serve
        from sddc_backup.app.settings import load_settings

        serve(load_settings(config))

    def check_config(self, config: Path | None) -> list[tuple[str, bool, str]]:
        from sddc_backup.app.config_check import check_settings
        from sddc_backup.app.settings import load_settings

        return [(c.what, c.ok, c.detail) for c in check_settings(load_settings(config))]

    @asynccontextmanager
    async def users(self, config: Path | None) -> AsyncIterator[UserAdmin]:
        from sddc_backup.app.logs import configure_local_logging, local_actor
        from sddc_backup.app.runtime import Runtime
        from sddc_backup.app.settings import load_settings
        from sddc_backup.services.audit import bind_actor

        settings = load_settings(config)
        configure_local_logging(settings.log_format, settings.log_level)  # the audit log, on stderr
        bind_actor(local_actor())
        runtime = await Runtime.open(settings)
        try:
            yield runtime.users
        finally:
            await runtime.close()

    @asynccontextmanager
    async def backup_maker(self, config: Path | None) -> AsyncIterator[BackupMaker]:
        from sddc_backup.app.backups import LocalBackupMaker
        from sddc_backup.app.runtime import Runtime
        from sddc_backup.app.settings import load_settings

        runtime = await Runtime.open(load_settings(config))
        try:
            yield LocalBackupMaker(runtime)
        finally:
            await runtime.close()

    def openapi(self) -> dict[str, Any]:
        from sddc_backup.app.openapi import openapi_document

        return openapi_document()


def main() -> None:
    build_cli(_LocalCommands())()
