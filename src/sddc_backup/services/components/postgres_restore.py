"""Restoring a plain-SQL dump into a new PostgreSQL database (the restore side of ``postgres.py``).

Every statement runs in ``psql``, as the dump's load does: no database driver in the process (ADR 0022).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sddc_backup.archive.errors import ComponentFailedError
from sddc_backup.services.components._common import component_failed
from sddc_backup.services.components._pg import (
    PSQL_OPTIONS,
    PgProcess,
    PgTarget,
    PsqlError,
    find_tool,
    run_psql,
    with_dbname,
)

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
        psql = self._psql = find_tool("psql", bindir, COMPONENT)
        try:
            run_psql(
                psql, self._admin, 'CREATE DATABASE :"name" TEMPLATE template0;\n', {"name": new_database}
            )
        except PsqlError as exc:
            raise component_failed(COMPONENT, self._subject, f"cannot create it: {exc}") from None
        args = [
            str(psql),
            *PSQL_OPTIONS,
            "--single-transaction",
            "-f",
            "-",
            f"--dbname={self._target.conninfo}",
        ]
        try:
            self._process = PgProcess(args, self._target.env(), fed=True)
        except OSError as exc:
            self._drop_quietly()
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
            self._drop_quietly()
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
            self._drop_quietly()

    def _drop_quietly(self) -> None:
        """Drop the new database after a failure, which is what gets reported: this one is logged."""
        try:
            drop_database(self._psql, self._admin, self._name)
        except ComponentFailedError as exc:
            log.warning("Could not drop the half-restored database %s: %s", self._name, exc.message)


def drop_database(psql: Path, admin: PgTarget, name: str) -> None:
    """``DROP DATABASE IF EXISTS name WITH (FORCE)`` over ``admin``; ``ComponentFailedError`` if it fails."""
    try:
        run_psql(
            psql,
            admin,
            'DROP DATABASE IF EXISTS :"name" WITH (FORCE);\n',
            {"name": name},
        )
    except PsqlError as exc:
        raise component_failed(COMPONENT, f"the PostgreSQL database {name}", str(exc)) from None
