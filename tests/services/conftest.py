"""Fixtures over the session's PostgreSQL cluster, for the tests of the database swap and load."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.support.postgres import PostgresCluster


class Cluster:
    """Connections and checks over the session's cluster."""

    def __init__(self, postgres: PostgresCluster) -> None:
        self.postgres = postgres
        self.base = f"postgresql://{postgres.user}@127.0.0.1:{postgres.port}"

    def url(self, database: str) -> str:
        return f"{self.base}/{database}"

    def execute(self, statement: sql.Composable | str, database: str = "postgres") -> None:
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def names(self, prefix: str) -> set[str]:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,))
            return {str(r[0]) for r in rows}

    def marker(self, database: str) -> str:
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            rows = conn.execute("SELECT what FROM marker").fetchall()
        assert len(rows) == 1, rows
        return str(rows[0][0])

    def create(self, database: str, what: str | None) -> None:
        """A database holding ``marker`` = ``what`` (``None``: created, nothing loaded yet)."""
        self.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(database)))
        if what is not None:
            self.execute("CREATE TABLE marker (what text NOT NULL)", database)
            self.execute(sql.SQL("INSERT INTO marker VALUES ({})").format(sql.Literal(what)), database)

    def rename(self, old: str, new: str) -> None:
        self.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
        )


@pytest.fixture(scope="module")
def cluster(postgres: PostgresCluster) -> Cluster:
    return Cluster(postgres)


@pytest.fixture
def name(cluster: Cluster) -> Iterator[str]:
    """A fresh database name; every database whose name starts with it is dropped afterwards."""
    prefix = f"live_{uuid.uuid4().hex[:10]}"
    yield prefix
    for leftover in cluster.names(prefix):
        cluster.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(leftover)))
