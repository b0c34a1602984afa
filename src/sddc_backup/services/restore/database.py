"""The PostgreSQL database swapped by rename: load beside the live one, swap both names in one transaction.

Like the file swaps, every operation is idempotent and reads the state from which databases exist, so
that it finishes or undoes a swap interrupted at any point. The work is done over the ``postgres``
maintenance database of the same server, because a database cannot be renamed while anyone (this
connection included) is connected to it. psycopg is imported where a connection is made, so that the
server loads it on its first restore, not at start (ADR 0022).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sddc_backup.domain.restore import DatabaseSwap
from sddc_backup.services.components._common import component_failed
from sddc_backup.services.components._conninfo import parse_conninfo
from sddc_backup.services.components._pg import PgTarget, with_dbname
from sddc_backup.services.components.postgres_restore import DumpFeed

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

log = logging.getLogger(__name__)
COMPONENT = "postgres"
MAINTENANCE_DATABASE = "postgres"


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
        with self._connect() as conn:
            self._disconnect_all(conn, swap.database, swap.new)
            with conn.transaction():
                if swap.had_live and self._exists(swap.database, conn):
                    conn.execute(_rename(swap.database, swap.old))
                conn.execute(_rename(swap.new, swap.database))

    def roll_back(self, swap: DatabaseSwap) -> None:
        """Put the replaced database back under its name, and drop the restored one."""
        if self._exists(swap.old):
            self._drop(swap.new)  # the renames below need the name free
            with self._connect() as conn:
                self._disconnect_all(conn, swap.database, swap.old)
                with conn.transaction():
                    if self._exists(swap.database, conn):
                        conn.execute(_rename(swap.database, swap.new))
                    conn.execute(_rename(swap.old, swap.database))
        elif not swap.had_live and not self._exists(swap.new) and self._exists(swap.database):
            self._drop(swap.database)  # nothing was there before, and the restored one was moved in
        self._drop(swap.new)

    def finish(self, swap: DatabaseSwap) -> None:
        """After the commit: drop the replaced database."""
        self._drop(swap.old)
        self._drop(swap.new)

    # -- plumbing ------------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        import psycopg

        try:
            return self._admin.connect()
        except psycopg.Error as exc:
            subject = f"the PostgreSQL database {self._admin.display}"
            raise component_failed(COMPONENT, subject, self._admin.scrub(str(exc))) from None

    def _exists(self, name: str, conn: psycopg.Connection[tuple[object, ...]] | None = None) -> bool:
        query = "SELECT 1 FROM pg_database WHERE datname = %s"
        if conn is not None:
            return conn.execute(query, (name,)).fetchone() is not None
        with self._connect() as own:
            return own.execute(query, (name,)).fetchone() is not None

    def _drop(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with self._connect() as conn:
            try:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            except psycopg.Error as exc:
                subject = f"the PostgreSQL database {name}"
                raise component_failed(COMPONENT, subject, self._admin.scrub(str(exc))) from None

    @staticmethod
    def _disconnect_all(conn: psycopg.Connection[tuple[object, ...]], *names: str) -> None:
        """Services are stopped, but a stray session would block the rename: end it."""
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
            (list(names),),
        )


def _database_name(dsn: str) -> str:
    params = parse_conninfo(dsn)
    name = params.get("dbname") or params.get("user")
    if not name:
        raise component_failed(COMPONENT, "the PostgreSQL database", "the DSN names no database")
    return str(name)


def _rename(old: str, new: str) -> sql.Composed:
    from psycopg import sql

    return sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
