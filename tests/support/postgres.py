"""A throwaway PostgreSQL cluster (Debian's binaries, found with ``pg_config --bindir``).

The cluster lives in a temporary directory, listens on a free loopback port, trusts local connections,
and runs without fsync. As root, its processes run as the ``postgres`` user, since PostgreSQL refuses
to run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.ports import free_port


def _bindir() -> Path:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        raise RuntimeError("pg_config is not on PATH: install postgresql-15 (the CI script does)")
    return Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip())


class PostgresCluster:
    def __init__(self) -> None:
        self.bindir = _bindir()
        self.base = Path(tempfile.mkdtemp(prefix="sddc-backup-pg-"))
        self.base.chmod(0o755)
        self.data = self.base / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        self.user = "postgres" if self._as_postgres else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresCluster:
        if self._as_postgres:
            shutil.chown(self.base, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "log"), "-w", "start")
        return self

    def create_database(self, name: str) -> str:
        """Create ``name`` and return its URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
