"""Restoring a plain-SQL dump into a new PostgreSQL database (the restore side of ``postgres.py``)."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
from psycopg import sql

from sddc_backup.services.components._common import component_failed
from sddc_backup.services.components._pg import PgProcess, PgTarget, find_tool, with_dbname

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def restore_into_new_database(
    sql_file: Path, admin_dsn: str, new_database: str, bindir: Path | None = None
) -> str:
    """Create ``new_database`` (from ``template0``) and load a plain-SQL dump into it in one transaction.

    Returns the new database's DSN (``admin_dsn`` pointing at it). On failure the new database is
    dropped and ``ComponentFailedError`` raised; an existing database of that name is never touched.
    """
    component = "postgres"
    admin = PgTarget.parse(admin_dsn, component)
    new_dsn = with_dbname(admin_dsn, new_database)
    target = PgTarget.parse(new_dsn, component)
    subject = f"the PostgreSQL database {target.display}"
    psql = find_tool("psql", bindir, component)
    if not sql_file.is_file():
        raise component_failed(component, str(sql_file), "the dump file does not exist")
    try:
        with admin.connect() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(new_database))
            )
    except psycopg.Error as exc:
        raise component_failed(component, subject, f"cannot create it: {admin.scrub(str(exc))}") from None
    try:
        detail = _load(psql, sql_file, target)
    except BaseException:
        _drop_database(admin, new_database)
        raise
    if detail:
        _drop_database(admin, new_database)
        raise component_failed(component, subject, f"the dump {sql_file} cannot be loaded: {detail}")
    return new_dsn


def _load(psql: Path, sql_file: Path, target: PgTarget) -> str:
    """Run ``psql`` over the file in one transaction; what went wrong, or '' when it worked."""
    args = [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--no-password"]
    args += ["-f", str(sql_file), f"--dbname={target.conninfo}"]
    try:
        process = PgProcess(args, target.env())
    except OSError as exc:
        return f"cannot run {psql}: {exc.strerror or exc}"
    try:
        while process.stdout.read(_CHUNK):  # query results (set_config, lo_create): not wanted
            pass
        returncode = process.finish()
        return f"psql {target.scrub(process.failure(returncode))}" if returncode != 0 else ""
    finally:
        process.kill()
        process.close()


def _drop_database(admin: PgTarget, name: str) -> None:
    try:
        with admin.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        log.warning("Could not drop the half-restored database %s: %s", name, admin.scrub(str(exc)))
