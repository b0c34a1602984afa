"""The client commands run as processes against a real server: logging in, trusting the server's
certificate, and the exit code and message of each kind of failure.

The helpers here (``Client``, ``served_fingerprint``, ``start_server``) are shared by the other
``test_client_*`` modules.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.ports import free_port
from tests.support.server import ADMIN_PASSWORD, ServerProcess

USERS = {"operator@local": ("OPERATOR", "Operator!pass-1"), "viewer@local": ("VIEWER", "Viewer!pass-1")}
PASSPHRASE = "VMw@re1!VMw@re1!"
ESCAPE = "\x1b"


@dataclass
class Client:
    """Runs ``python -m sddc_backup …`` as an operator would, pointed at ``server`` through the
    environment (URL, the server's certificate as the CA, the admin password)."""

    server: ServerProcess

    def env(self, **changes: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SDDC_BACKUP_")}
        env.update(
            SDDC_BACKUP_URL=self.server.base_url,
            SDDC_BACKUP_CA_CERT=str(self.server.cert),
            SDDC_BACKUP_PASSWORD=ADMIN_PASSWORD,
            PYTHONIOENCODING="utf-8",
        )
        for key, value in changes.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def run(
        self, *args: str, timeout: float = 300, **changes: str | None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sddc_backup", *args],
            env=self.env(**changes),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,  # callers assert on the exit code
        )

    def json(self, *args: str, **changes: str | None) -> Any:
        result = self.run(*args, "--json", **changes)
        assert result.returncode == 0, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    def popen(self, *args: str, **changes: str | None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "sddc_backup", *args],
            env=self.env(**changes),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def served_fingerprint(server: ServerProcess) -> str:
    """The fingerprint as the server prints it at start ("TLS certificate … SHA-256 fingerprint: …")."""
    found = re.findall(r"SHA-256 fingerprint: ([0-9A-F:]{95})", server.output())
    assert found, server.output()
    return str(found[-1])


def start_server(data_dir: Path, base_env: dict[str, str] | None = None, **extra_env: str) -> ServerProcess:
    """A started server with the extra users added."""
    server = ServerProcess(data_dir)
    server.base_env = dict(base_env or {})
    server.start(**extra_env)
    for name, (role, password) in USERS.items():
        added = server.cli("users", "add", name, "--role", role, stdin=password + "\n")
        assert added.returncode == 0, added.stderr
    return server


def write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def assert_error(result: subprocess.CompletedProcess[str], exit_code: int, code: str) -> None:
    """The command exited ``exit_code`` and printed ``error <code>: …`` and a remediation, no traceback."""
    assert result.returncode == exit_code, (result.returncode, result.stdout, result.stderr)
    assert f"error {code}: " in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"error {code}: "))
    assert len(lines) > at + 1 and lines[-1].startswith("  "), result.stderr  # the remediation
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("client") / "data")
    yield proc
    proc.stop()


@pytest.fixture
def client(server: ServerProcess) -> Client:
    return Client(server)


def test_login_names_the_user_and_role_whichever_way_the_certificate_is_trusted(
    client: Client, server: ServerProcess
) -> None:
    result = client.run("login")
    assert result.returncode == 0, result.stderr
    assert f"logged in to {server.base_url} as admin@local (ADMIN)" in result.stdout
    printed = served_fingerprint(server)
    digest = bytes.fromhex(printed.replace(":", ""))
    for pin in (
        printed,
        printed.replace(":", "").lower(),
        "SHA256:" + base64.b64encode(digest).decode().rstrip("="),
        f"sha256 Fingerprint={printed}",
    ):
        found = client.json("login", "--fingerprint", pin, SDDC_BACKUP_CA_CERT=None)
        assert found == {
            "server": server.base_url,
            "user": "admin@local",
            "role": "ADMIN",
            "certificate": printed,
        }
    for name, (role, password) in USERS.items():
        found = client.json("login", "--user", name, SDDC_BACKUP_PASSWORD=password)
        assert (found["user"], found["role"]) == (name, role)


def test_a_wrong_or_missing_password_exits_3(client: Client) -> None:
    wrong = client.run("tasks", "list", "--user", "viewer@local", SDDC_BACKUP_PASSWORD="Not-the-password-1")
    assert_error(wrong, 3, "INVALID_CREDENTIALS")
    missing = client.run("login", SDDC_BACKUP_PASSWORD=None)
    assert_error(missing, 3, "PASSWORD_MISSING")


def test_a_role_without_the_permission_exits_3(client: Client) -> None:
    denied = client.run("backup", "--user", "viewer@local", SDDC_BACKUP_PASSWORD=USERS["viewer@local"][1])
    assert_error(denied, 3, "INSUFFICIENT_PRIVILEGES")


def test_an_unknown_task_exits_4(client: Client) -> None:
    unknown = str(uuid.uuid4())
    for command in ("show", "watch", "cancel", "retry"):
        assert_error(client.run("tasks", command, unknown), 4, "TASK_NOT_FOUND")


def test_bad_input_exits_2(client: Client, tmp_path: Path) -> None:
    weak = write_json(tmp_path / "weak.json", {"encryption": {"passphrase": "short"}})
    result = client.run("config", "set", "--file", str(weak))
    assert_error(result, 2, "PASSPHRASE_POLICY_VIOLATION")
    (tmp_path / "broken.json").write_text("{not json")
    assert_error(client.run("config", "set", "-f", str(tmp_path / "broken.json")), 2, "SPEC_FILE_INVALID")
    assert_error(client.run("backup"), 2, "BACKUP_NOT_CONFIGURED")
    assert_error(client.run("restore", "/etc/passwd", "-p", str(weak)), 2, "RESTORE_FILE_NOT_ALLOWED")
    assert_error(client.run("restore", "x.tar.gz"), 2, "PASSPHRASE_MISSING")
    assert_error(client.run("login", SDDC_BACKUP_URL=None), 2, "SERVER_MISSING")
    assert_error(client.run("login", "--server", "http://127.0.0.1:1"), 2, "INVALID_SERVER_URL")
    assert_error(client.run("login", "--fingerprint", "SHA256:nope"), 2, "TLS_OPTIONS_CONFLICT")
    assert_error(
        client.run("login", "--fingerprint", "SHA256:nope", SDDC_BACKUP_CA_CERT=None),
        2,
        "INVALID_FINGERPRINT",
    )
    for args in (("tasks", "list", "--limit", "0"), ("tasks", "frobnicate"), ("backup", "--interval", "x")):
        usage = client.run(*args)
        assert usage.returncode == 2 and "Traceback" not in usage.stderr, usage.stderr


def test_an_untrusted_certificate_exits_6_and_says_how_to_pin_it(
    client: Client, server: ServerProcess
) -> None:
    result = client.run("login", SDDC_BACKUP_CA_CERT=None, SSL_CERT_FILE=None, SSL_CERT_DIR=None)
    assert_error(result, 6, "TLS_CERTIFICATE_UNTRUSTED")
    assert "--fingerprint" in result.stderr and "--ca-cert" in result.stderr
    assert served_fingerprint(server) in result.stderr  # what to compare with the server's own line


def test_a_wrong_fingerprint_exits_6_before_any_credential_is_sent(
    client: Client, server: ServerProcess
) -> None:
    before = len(server.output())
    wrong = "SHA256:" + base64.b64encode(bytes(32)).decode()
    result = client.run("login", "--fingerprint", wrong, SDDC_BACKUP_CA_CERT=None)
    assert_error(result, 6, "TLS_FINGERPRINT_MISMATCH")
    assert served_fingerprint(server) in result.stderr
    # A request of the test's own marks the log; everything logged before it came from the client,
    # which must have sent no request at all, and so no password.
    marker = f"/v1/tasks/marker-{uuid.uuid4()}"
    requests.get(server.base_url + marker, verify=str(server.cert), timeout=30)
    deadline = time.monotonic() + 30
    while marker not in server.output()[before:]:
        assert time.monotonic() < deadline, server.output()[before:]
        time.sleep(0.05)
    logged = server.output()[before:]
    assert "/v1/" not in logged[: logged.index(marker)], logged


def test_no_server_listening_exits_6(client: Client) -> None:
    result = client.run("login", "--server", f"https://127.0.0.1:{free_port()}")
    assert_error(result, 6, "SERVER_UNREACHABLE")


def test_a_failed_configuration_exits_1_and_a_retry_follows_it_to_success(
    client: Client, tmp_path: Path
) -> None:
    directory = tmp_path / "created-later"
    spec = write_json(
        tmp_path / "spec.json", {"backupLocations": [{"protocol": "LOCAL", "directoryPath": str(directory)}]}
    )
    checked = client.run("config", "validate", "--file", str(spec))
    assert checked.returncode == 1, checked.stderr
    assert "BACKUP_DIRECTORY_NOT_FOUND" in checked.stdout and "validation FAILED" in checked.stdout
    assert client.run("config", "validate", "-f", str(spec), "--json").stdout.count('"FAILED"') >= 2

    failed = client.run("config", "set", "--file", str(spec))
    assert_error(failed, 1, "BACKUP_DIRECTORY_NOT_FOUND")
    assert "Validate backup location" in failed.stdout and "FAILED" in failed.stdout
    (task,) = client.json(
        "tasks", "list", "--type", "CONFIGURE_BACKUP", "--status", "FAILED", "--limit", "1"
    )["elements"]
    directory.mkdir()
    retried = client.run("tasks", "retry", task["id"], "--wait", "--interval", "0.2")
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.rstrip().endswith(f"{task['name']} {task['id']}: SUCCESSFUL")
    location = client.json("config", "show")["backupLocations"][0]
    assert location == {"protocol": "LOCAL", "directoryPath": str(directory)}
    # The location alone does not make the service configured: backups still need a passphrase.
    assert client.json("config", "show")["isConfigured"] is False


def test_the_client_imports_nothing_of_the_server_side() -> None:
    program = "import json, sys, sddc_backup.cli.client; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout
    )
    ours = [m for m in loaded if m.startswith("sddc_backup.")]
    assert ours and all(m.startswith(("sddc_backup.cli.client", "sddc_backup.cli")) for m in ours), ours
    assert not [
        m
        for m in ours
        if m.split(".")[1] in ("services", "api", "persistence", "tasks", "storage", "archive", "app")
    ]
