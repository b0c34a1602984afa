"""The real server, started as a process the way an operator starts it (``sddc-backup serve``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.ports import free_port

ADMIN = "admin@local"
ADMIN_PASSWORD = "Adm1n!password-for-tests"
FQDN = "sddc-backup.test.local"


def _run_cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sddc_backup", *args],
        check=False,  # callers assert on the exit code
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class ServerProcess:
    data_dir: Path
    database_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # replaced by each start()
    base_env: dict[str, str] = field(default_factory=dict)  # kept across starts
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def cert(self) -> Path:
        return self.data_dir / "tls" / "cert.pem"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-server.log"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SDDC_BACKUP_")}
        env.update(
            SDDC_BACKUP_DATA_DIR=str(self.data_dir),
            SDDC_BACKUP_PORT=str(self.port),
            SDDC_BACKUP_ADMIN_PASSWORD=ADMIN_PASSWORD,
            SDDC_BACKUP_FQDN=FQDN,
        )
        if self.database_url:
            env["SDDC_BACKUP_DATABASE_URL"] = self.database_url
        env.update(self.base_env)
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run a local ``sddc-backup`` command on this server's data directory and state store."""
        return _run_cli(self.env, *args, stdin=stdin)

    def start(self, serve_args: tuple[str, ...] = (), **extra_env: str) -> ServerProcess:
        self.extra_env = dict(extra_env)
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {self.starts}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sddc_backup", "serve", *serve_args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _wait_ready(self, timeout: float = 60.0) -> None:
        with requests.Session() as session:
            session.trust_env = False
            self._poll_ready(session, timeout)

    def _poll_ready(self, session: requests.Session, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.output()}")
            if self.cert.exists():
                try:
                    # Without credentials: any VCF answer (401) shows the API accepts requests,
                    # whatever the admin password is.
                    r = session.get(
                        f"{self.base_url}/v1/vcf-services",
                        headers={"Connection": "close"},  # an idle keep-alive would slow the stop
                        verify=str(self.cert),
                        timeout=5,
                    )
                    if r.status_code == 401 and r.json().get("errorCode") == "Unauthenticated":
                        return
                except requests.ConnectionError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not become ready in {timeout} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power loss or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
