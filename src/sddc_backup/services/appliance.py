"""What a backup of this appliance contains: the components built from the settings, in archive order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sddc_backup.archive.entries import ArchiveSource
from sddc_backup.services.components.paths import PathsComponent
from sddc_backup.services.components.postgres import PostgresComponent
from sddc_backup.services.components.settings import StaticFilesComponent
from sddc_backup.services.components.sqlite import SqliteComponent


@dataclass(frozen=True)
class ApplianceLayout:
    """The parts of the appliance that a backup protects (``SDDC_BACKUP_PATHS`` and friends)."""

    paths: Sequence[Path] = ()
    postgres_dsn: str | None = None
    sqlite_paths: Sequence[Path] = ()
    scratch: Path = Path("/tmp")  # noqa: S108 - replaced by <data dir>/scratch when composed

    def components(self, own_settings: dict[str, bytes], mtime: float) -> list[ArchiveSource]:
        """SQLite copies, files and directories, the PostgreSQL dump, then the service's own settings.

        The dump's first, measuring pass starts in the background with the archive, so it overlaps
        with the files instead of adding to the backup's time; the writer puts the dump in as soon
        as that pass has ended, usually among the files (``archive/writer.py``).
        """
        sources: list[ArchiveSource] = []
        if self.sqlite_paths:
            self.scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
            sources.append(SqliteComponent(self.sqlite_paths, self.scratch))
        if self.paths:
            sources.append(PathsComponent(self.paths))
        if self.postgres_dsn:
            sources.append(PostgresComponent(self.postgres_dsn))
        sources.append(StaticFilesComponent("settings", own_settings, mtime))
        return sources
