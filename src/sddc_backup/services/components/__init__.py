"""The appliance's components as archive sources: files, PostgreSQL, SQLite, and the service's settings.

Each component implements ``sddc_backup.archive.entries.ArchiveSource``. ``entries()`` is synchronous
and runs in the archive writer's worker thread. The contract every component here follows:

* call an entry's ``open()`` and finish with the returned file (close it) *before* advancing the
  iterator: components release what backs an entry (a snapshot, a scratch copy) when the iterator moves
  on or finishes, and ``open()`` after that raises ``ComponentFailedError``;
* close ``entries()`` (exhaust it, or ``close()`` the generator) so that scratch files and child
  processes are released even when the archive fails half way;
* any failure to read a component's data completely raises ``ComponentFailedError`` naming the
  component and the file or database.
"""

from sddc_backup.services.components.paths import PathsComponent
from sddc_backup.services.components.postgres import PostgresComponent
from sddc_backup.services.components.postgres_restore import restore_into_new_database
from sddc_backup.services.components.settings import StaticFilesComponent, render_json
from sddc_backup.services.components.sqlite import SqliteComponent, restore_copy

__all__ = [
    "PathsComponent",
    "PostgresComponent",
    "SqliteComponent",
    "StaticFilesComponent",
    "render_json",
    "restore_copy",
    "restore_into_new_database",
]
