"""Restoring a plain-SQL dump into a new PostgreSQL database (the restore side of ``postgres.py``).

psycopg is imported by the functions that connect, not by the module: the server then loads it on
its first restore, not at start (ADR 0022).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sddc_backup.services.components._common import component_failed
from sddc_backup.services.components._pg import PgProcess, PgTarget, find_tool, with_dbname

log = logging.getLogger(__name__)

COMPONENT = "postgres"


def restore_into_new_database(
    sql_file: Path, admin_dsn: str, new_database: str, bindir: Path | None = None
) -> str:
    """Create ``new_database`` (from ``template0``) and load a plain-SQL dump into it in one transaction.

    Returns the new database's DSN (``admin_dsn`` pointing at it). On failure the new database is
    dropped and ``ComponentFailedError`` raised; an existing database of that name is never touched.
    """
    if not sql_file.is_file():
        raise component_failed(COMPONENT, str(sql_file), "the dump file does not exist")
    feed = DumpFeed(admin_dsn, new_database, bindir, source=str(sql_file))
    feed.load_file(sql_file)
    return feed.dsn


class DumpFeed:
    """``psql`` loading a plain-SQL dump, which the caller sends to its standard input, into a new
    database, in one transaction (``--single-transaction``, stopping at the first error).

    The constructor creates ``new_database`` from ``template0`` and starts ``psql``; ``finish()``
    ends the input and waits; ``kill()`` gives up. Either failure drops the new database, and an
    existing database of that name is never touched. Errors are ``ComponentFailedError``.
    """

    def __init__(self, admin_dsn: str, new_database: str, bindir: Path | None = None, *, source: str) -> None:
        self._admin = PgTarget.parse(admin_dsn, COMPONENT)
        self._name, self._source = new_database, source
        self.dsn = with_dbname(admin_dsn, new_database)
        self._target = PgTarget.parse(self.dsn, COMPONENT)
        self._subject = f"the PostgreSQL database {self._target.display}"
        psql = find_tool("psql", bindir, COMPONENT)
        import psycopg
        from psycopg import sql

        try:
            with self._admin.connect() as conn:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(new_database))
                )
        except psycopg.Error as exc:
            detail = f"cannot create it: {self._admin.scrub(str(exc))}"
            raise component_failed(COMPONENT, self._subject, detail) from None
        args = [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--no-password"]
        args += ["-f", "-", f"--dbname={self._target.conninfo}"]
        try:
            self._process = PgProcess(args, self._target.env(), fed=True)
        except OSError as exc:
            _drop_database(self._admin, new_database)
            detail = f"cannot run {psql}: {exc.strerror or exc}"
            raise component_failed(COMPONENT, self._subject, detail) from None

    def send_from(self, fd: int, offset: int, count: int) -> int:
        """Send up to ``count`` bytes of file ``fd`` from ``offset`` (without copying them through
        Python); returns how many went. Raises ``ComponentFailedError`` when psql has stopped reading."""
        try:
            return os.sendfile(self._process.stdin_fd, fd, offset, count)
        except OSError:  # a broken pipe: psql has exited, and its exit status says why
            self.finish()
            raise component_failed(COMPONENT, self._subject, "psql stopped reading the dump") from None

    def load_file(self, path: Path) -> None:
        """Send the whole file at ``path`` and ``finish()``; ``kill()`` when that fails."""
        try:
            with path.open("rb") as dump:
                size, sent = os.fstat(dump.fileno()).st_size, 0
                while sent < size and (n := self.send_from(dump.fileno(), sent, size - sent)):
                    sent += n
        except BaseException:
            self.kill()
            raise
        self.finish()

    def finish(self) -> None:
        """End the input and wait for psql: the load is committed, or the database is dropped."""
        try:
            returncode = self._process.finish()
            failure = self._target.scrub(self._process.failure(returncode)) if returncode != 0 else ""
        finally:
            self._process.close()
        if failure:
            _drop_database(self._admin, self._name)
            detail = f"the dump {self._source} cannot be loaded: psql {failure}"
            raise component_failed(COMPONENT, self._subject, detail)

    def interrupt(self) -> None:
        """Kill psql, from any thread, without waiting: a send blocked on it fails at once. The
        thread that feeds it then calls ``kill()``."""
        self._process.proc.kill()

    def kill(self) -> None:
        """Stop psql and drop the new database."""
        try:
            self._process.kill()
        finally:
            self._process.close()
            _drop_database(self._admin, self._name)


def _drop_database(admin: PgTarget, name: str) -> None:
    import psycopg
    from psycopg import sql

    try:
        with admin.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        log.warning("Could not drop the half-restored database %s: %s", name, admin.scrub(str(exc)))
