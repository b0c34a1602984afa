"""A small appliance to back up and restore: a PostgreSQL database, two directory trees and a SQLite
file, with a byte-for-byte snapshot of all of it (data dump, file tree hashes with modes and mtimes)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.postgres import PostgresCluster


@dataclass
class Appliance:
    postgres: PostgresCluster
    database: str
    url: str
    trees: tuple[Path, Path]
    sqlite: Path

    @classmethod
    def create(cls, root: Path, postgres: PostgresCluster, rows: int = 2000) -> Appliance:
        database = f"app_{uuid.uuid4().hex[:8]}"
        url = postgres.create_database(database)
        app = cls(
            postgres, database, url, (root / "etc" / "vcf", root / "opt" / "vmware" / "vcf"), root / "inv.db"
        )
        app.psql(
            "CREATE TABLE host (id serial PRIMARY KEY, fqdn text NOT NULL);"  # noqa: S608 - a test's own SQL
            f"INSERT INTO host (fqdn) SELECT 'esx-' || g FROM generate_series(1, {rows}) g;"
            "CREATE TABLE domain (id int PRIMARY KEY, name text); INSERT INTO domain VALUES (1, 'mgmt');"
        )
        conf, opt = app.trees
        (conf / "sub").mkdir(parents=True)
        (conf / "app.properties").write_text("a=1\n")
        (conf / "sub" / "secret.key").write_bytes(os.urandom(512))
        (conf / "sub" / "secret.key").chmod(0o600)
        (conf / "link").symlink_to("app.properties")
        (opt / "lcm").mkdir(parents=True)
        (opt / "lcm" / "bundle.bin").write_bytes(os.urandom(200_000))
        (opt / "readonly").mkdir()
        (opt / "readonly" / "version").write_text("5.2.1\n")
        (opt / "readonly").chmod(0o555)
        with sqlite3.connect(app.sqlite) as conn:
            conn.execute("CREATE TABLE t (v TEXT)")
            conn.executemany("INSERT INTO t VALUES (?)", [(f"row {i}",) for i in range(100)])
        conn.close()
        return app

    def env(self) -> dict[str, str]:
        return {
            "SDDC_BACKUP_PATHS": json.dumps([str(t) for t in self.trees]),
            "SDDC_BACKUP_POSTGRES_DSN": self.url,
            "SDDC_BACKUP_SQLITE_PATHS": json.dumps([str(self.sqlite)]),
        }

    def psql(self, command: str, database: str | None = None) -> str:
        url = self.url if database is None else self.url.rsplit("/", 1)[0] + "/" + database
        return subprocess.run(
            [str(self.postgres.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url],
            input=command,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def databases(self) -> set[str]:
        return set(self.psql("SELECT datname FROM pg_database", "postgres").split())

    def snapshot(self) -> dict[str, Any]:
        """Everything a restore must bring back, byte for byte."""
        data = {
            table: self.psql(f"COPY (SELECT * FROM {table} ORDER BY 1) TO STDOUT")  # noqa: S608
            for table in ("host", "domain")
        }
        schema = self.psql(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        )
        return {
            "postgres": {"data": data, "schema": schema},
            "trees": {str(t): tree_hashes(t) for t in self.trees},
            "sqlite": sqlite_dump(self.sqlite),
        }

    def change_everything(self) -> None:
        """Change every part, the way a day of operations (or a bad upgrade) would."""
        self.psql(
            "DELETE FROM host WHERE id % 2 = 0; UPDATE domain SET name = 'changed';CREATE TABLE junk (x int);"
        )
        conf, opt = self.trees
        (conf / "app.properties").write_text("a=2\n")
        (conf / "new-file").write_text("added after the backup\n")
        (opt / "lcm" / "bundle.bin").unlink()
        with sqlite3.connect(self.sqlite) as conn:
            conn.execute("DELETE FROM t WHERE rowid > 10")
        conn.close()


def tree_hashes(root: Path) -> dict[str, Any]:
    """Every path under ``root`` with its type, mode, mtime (ns), and content digest or link target."""
    found: dict[str, Any] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        entry: dict[str, Any] = {"mode": st.st_mode, "mtime": st.st_mtime_ns}
        if path.is_symlink():
            entry["target"] = str(path.readlink())
        elif path.is_file():
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        found[str(path.relative_to(root))] = entry
    return found


def sqlite_dump(path: Path) -> str:
    """The database's SQL dump: the online backup copies pages, so the file's header may differ."""
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
        dump = "\n".join(conn.iterdump())
    conn.close()
    return dump
