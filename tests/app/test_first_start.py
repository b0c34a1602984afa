"""First start and restarts: the admin password, the certificate, and what is stored."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import requests

from sddc_backup.app.tls import ensure_certificate
from tests.support.http import Api
from tests.support.server import ServerProcess


def test_generated_admin_password_is_printed_once_and_stored_only_hashed(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "data")
    try:
        proc.start(SDDC_BACKUP_ADMIN_PASSWORD="")
        found = re.search(r"admin@local password \(shown once\): (\S+)", proc.output())
        assert found, proc.output()
        password = found.group(1)
        api = Api(proc)
        assert api.token("admin@local", password)
        first_print = proc.output().count(password)
        fingerprint = re.search(r"SHA-256 fingerprint: ([0-9A-F:]{95})", proc.output())
        assert fingerprint
        proc.stop()
        proc.start(SDDC_BACKUP_ADMIN_PASSWORD="")
        assert proc.output().count(password) == first_print == 1  # never printed again
        # The same certificate after a restart: clients that pinned it keep working.
        assert proc.output().count(fingerprint.group(1)) == 2
        assert Api(proc).token("admin@local", password)
    finally:
        proc.stop()
    with sqlite3.connect(tmp_path / "data" / "state.db") as db:
        (stored,) = db.execute("SELECT password_hash FROM users WHERE username = 'admin@local'").fetchone()
    assert stored.startswith("$argon2id$") and password not in stored
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "data" / "token-signing.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / "tls" / "key.pem").stat().st_mode & 0o777 == 0o600


def test_a_given_certificate_and_key_are_served(tmp_path: Path) -> None:
    own = ensure_certificate(tmp_path / "own", ["localhost", "127.0.0.1"])
    cert, key = own.cert, own.key
    proc = ServerProcess(tmp_path / "data")
    proc.data_dir.mkdir(parents=True)
    # The harness waits on the generated certificate's path; point it at the given one.
    (proc.data_dir / "tls").mkdir()
    (proc.data_dir / "tls" / "cert.pem").symlink_to(cert)
    try:
        proc.start(SDDC_BACKUP_TLS_CERT=str(cert), SDDC_BACKUP_TLS_KEY=str(key))
        with requests.Session() as s:
            s.trust_env = False
            r = s.get(f"https://localhost:{proc.port}/v1/tasks", verify=str(cert), timeout=10)
        assert r.status_code == 401  # TLS with the operator's certificate worked
        assert not (proc.data_dir / "tls" / "key.pem").exists()  # nothing was generated
    finally:
        proc.stop()


def test_certificate_without_key_is_refused(tmp_path: Path) -> None:
    cert = ensure_certificate(tmp_path / "own", ["localhost"]).cert
    proc = ServerProcess(tmp_path / "data")
    proc.extra_env = {"SDDC_BACKUP_TLS_CERT": str(cert)}
    result = proc.cli("serve")
    assert result.returncode == 2 and "SDDC_BACKUP_TLS_KEY" in result.stderr
