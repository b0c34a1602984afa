"""The PostgreSQL database swapped by rename: load beside the live one, swap both names in one transaction.

Like the file swaps, every operation is idempotent and reads the state from which databases exist, so
that it finishes or undoes a swap interrupted at any point. The work is done over the ``postgres``
maintenance database of the same server, because a database cannot be renamed while anyone (this
connection included) is connected to it. The statements run in ``psql``, not through a driver in the
server's process (ADR 0022).
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path

from sddc_backup.domain.restore import DatabaseSwap
from sddc_backup.services.components._common import component_failed
from sddc_backup.services.components._conninfo import parse_conninfo
from sddc_backup.services.components._pg import PgTarget, PsqlError, find_tool, run_psql, with_dbname
from sddc_backup.services.components.postgres_restore import DumpFeed, drop_database

log = logging.getLogger(__name__)
COMPONENT = "postgres"
MAINTENANCE_DATABASE = "postgres"

# Services are stopped, but a stray session would block the renames: they are ended first.
_DISCONNECT = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname IN (:'database', :'other') AND pid <> pg_backend_pid();\n"
)
# In the transaction of the renames: the live database is moved aside only if it is there.
_MOVE_LIVE_ASIDE = """SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'database') AS live \\gset
\\if :live
ALTER DATABASE :"database" RENAME TO :"aside";
\\endif
"""


class DatabaseSwapper:
    """Swaps for the database that ``dsn`` points at."""

    def __init__(self, dsn: str, bindir: Path | None = None) -> None:
        self._dsn = dsn
        self._bindir = bindir
        self._maintenance_dsn = with_dbname(dsn, MAINTENANCE_DATABASE)
        self._admin = PgTarget.parse(self._maintenance_dsn, COMPONENT)
        self.database = _database_name(dsn)

    def plan(self, restore_id: str) -> DatabaseSwap:
        suffix = restore_id.replace("-", "")[:8]
        return DatabaseSwap(
            database=self.database,
            new=f"{self.database[:40]}_restore_{suffix}",
            old=f"{self.database[:40]}_old_{suffix}",
            had_live=self._exists(self.database),
        )

    def feed(self, swap: DatabaseSwap, source: str) -> DumpFeed:
        """A psql loading a dump into ``swap.new`` (dropped first if a crash left it), fed by the
        caller; the live database is untouched. ``source`` names the dump in errors."""
        self._drop(swap.new)
        return DumpFeed(self._maintenance_dsn, swap.new, self._bindir, source=source)

    def apply(self, swap: DatabaseSwap) -> None:
        """Rename live -> old and new -> live in one transaction: there is no moment without a database."""
        if self._exists(swap.old) or not self._exists(swap.new):
            return  # already swapped
        script = _DISCONNECT + "BEGIN;\n" + (_MOVE_LIVE_ASIDE if swap.had_live else "")
        script += 'ALTER DATABASE :"other" RENAME TO :"database";\nCOMMIT;\n'
        self._psql(script, database=swap.database, other=swap.new, aside=swap.old)

    def roll_back(self, swap: DatabaseSwap) -> None:
        """Put the replaced database back under its name, and drop the restored one."""
        if self._exists(swap.old):
            self._drop(swap.new)  # the renames below need the name free
            script = _DISCONNECT + "BEGIN;\n" + _MOVE_LIVE_ASIDE
            script += 'ALTER DATABASE :"other" RENAME TO :"database";\nCOMMIT;\n'
            self._psql(script, database=swap.database, other=swap.old, aside=swap.new)
        elif not swap.had_live and not self._exists(swap.new) and self._exists(swap.database):
            self._drop(swap.database)  # nothing was there before, and the restored one was moved in
        self._drop(swap.new)

    def finish(self, swap: DatabaseSwap) -> None:
        """After the commit: drop the replaced database."""
        self._drop(swap.old)
        self._drop(swap.new)

    # -- plumbing ------------------------------------------------------------------------------------

    @cached_property
    def _psql_tool(self) -> Path:
        """Found at the first statement, not at start: a service without psql starts, and a restore
        says what is missing. Once: ``find_tool`` may run ``pg_config``."""
        return find_tool("psql", self._bindir, COMPONENT)

    def _psql(self, script: str, **variables: str) -> list[str]:
        try:
            return run_psql(self._psql_tool, self._admin, script, variables)
        except PsqlError as exc:
            raise component_failed(
                COMPONENT, f"the PostgreSQL database {self._admin.display}", str(exc)
            ) from None

    def _exists(self, name: str) -> bool:
        return bool(self._psql("SELECT 1 FROM pg_database WHERE datname = :'name';\n", name=name))

    def _drop(self, name: str) -> None:
        drop_database(self._psql_tool, self._admin, name)


def _database_name(dsn: str) -> str:
    params = parse_conninfo(dsn)
    name = params.get("dbname") or params.get("user")
    if not name:
        raise component_failed(COMPONENT, "the PostgreSQL database", "the DSN names no database")
    return str(name)
