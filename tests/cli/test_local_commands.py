"""Local commands on a data directory, run as real processes: users, openapi, and settings errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tests.support.http import Api, assert_vcf_error
from tests.support.server import ServerProcess


@pytest.fixture
def local(tmp_path: Path) -> ServerProcess:
    """A data directory with no server running (the SQLite store)."""
    return ServerProcess(tmp_path / "data")


def test_users_add_list_set_password_and_remove(local: ServerProcess) -> None:
    added = local.cli("users", "add", "ops@local", "--role", "operator", stdin="Operator!pw-123\n")
    assert added.returncode == 0, added.stderr
    assert "added ops@local (OPERATOR)" in added.stdout
    listed = local.cli("users", "list", "--json")
    assert listed.returncode == 0
    assert [(u["username"], u["role"]) for u in json.loads(listed.stdout)] == [("ops@local", "OPERATOR")]
    assert "Operator!pw-123" not in listed.stdout + listed.stderr
    assert "ops@local" in local.cli("users", "list").stdout
    changed = local.cli("users", "set-password", "ops@local", stdin="Another!pw-456\n")
    assert changed.returncode == 0, changed.stderr
    # ops@local is the only user and not an ADMIN, so it may go.
    assert local.cli("users", "remove", "ops@local").returncode == 0
    assert json.loads(local.cli("users", "list", "--json").stdout) == []


def test_users_add_refuses_duplicates_short_passwords_and_bad_names(local: ServerProcess) -> None:
    assert local.cli("users", "add", "a@local", "--role", "ADMIN", stdin="Admin!pw-123\n").returncode == 0
    dup = local.cli("users", "add", "a@local", "--role", "VIEWER", stdin="Viewer!pw-123\n")
    assert dup.returncode == 1 and "USER_EXISTS" in dup.stderr
    short = local.cli("users", "add", "b@local", "--role", "VIEWER", stdin="short\n")
    assert short.returncode == 2 and "PASSWORD_TOO_SHORT" in short.stderr
    bad = local.cli("users", "add", "bad name", "--role", "VIEWER", stdin="Viewer!pw-123\n")
    assert bad.returncode == 2 and "INVALID_USERNAME" in bad.stderr
    role = local.cli("users", "add", "c@local", "--role", "ROOT", stdin="Viewer!pw-123\n")
    assert role.returncode == 2
    assert "Traceback" not in dup.stderr + short.stderr + bad.stderr + role.stderr


def test_the_last_admin_cannot_be_removed_and_unknown_users_are_reported(local: ServerProcess) -> None:
    assert local.cli("users", "add", "a@local", "--role", "ADMIN", stdin="Admin!pw-123\n").returncode == 0
    last = local.cli("users", "remove", "a@local")
    assert last.returncode == 1 and "LAST_ADMIN" in last.stderr
    missing = local.cli("users", "set-password", "ghost@local", stdin="Ghost!pw-123\n")
    assert missing.returncode == 1 and "USER_NOT_FOUND" in missing.stderr


def test_password_is_never_taken_from_the_command_line(local: ServerProcess) -> None:
    result = local.cli("users", "add", "a@local", "--role", "ADMIN", "--password", "Admin!pw-123")
    assert result.returncode == 2
    assert json.loads(local.cli("users", "list", "--json").stdout) == []


def test_changing_a_password_ends_existing_sessions(server: ServerProcess) -> None:
    api = Api(server)
    assert (
        server.cli("users", "add", "temp@local", "--role", "VIEWER", stdin="Temp!pw-1234\n").returncode == 0
    )
    pair = api.request(
        "POST", "/v1/tokens", json={"username": "temp@local", "password": "Temp!pw-1234"}
    ).json()
    assert server.cli("users", "set-password", "temp@local", stdin="Temp!pw-5678\n").returncode == 0
    r = api.request(
        "PATCH",
        "/v1/tokens/access-token/refresh",
        data=pair["refreshToken"]["id"],
        headers={"Content-Type": "application/json"},
    )
    assert_vcf_error(r, 404, "REFRESH_TOKEN_NOT_FOUND")
    assert server.cli("users", "remove", "temp@local").returncode == 0
    assert_vcf_error(api.request("GET", "/v1/tasks", pair["accessToken"]), 401, "Unauthenticated")


def test_openapi_command_prints_the_committed_document(local: ServerProcess) -> None:
    result = local.cli("openapi")
    assert result.returncode == 0
    snapshot = Path(__file__).parents[2] / "docs" / "openapi.json"
    assert json.loads(result.stdout) == json.loads(snapshot.read_text())


def test_serve_with_a_bad_setting_names_it_and_exits_2(local: ServerProcess, tmp_path: Path) -> None:
    local.extra_env = {"SDDC_BACKUP_PORT": "70000"}
    result = local.cli("serve")
    assert result.returncode == 2
    assert "INVALID_SETTING" in result.stderr and "port" in result.stderr
    config = tmp_path / "bad.toml"
    config.write_text('no_such_setting = "x"\n')
    result = local.cli("serve", "--config", str(config))
    assert result.returncode == 2 and "no_such_setting" in result.stderr
    assert "Traceback" not in result.stderr


def test_toml_settings_apply_and_the_environment_overrides_them(tmp_path: Path) -> None:
    config = tmp_path / "sddc-backup.toml"
    config.write_text("port = 1\npassphrase_min_length = 20\n")
    proc = ServerProcess(tmp_path / "data")
    try:
        # The harness sets SDDC_BACKUP_PORT; the server answering there shows it won over port = 1.
        proc.start(serve_args=("--config", str(config)))
        api = Api(proc)
        spec = {"encryption": {"passphrase": "VMw@re1!VMw@re1!"}}  # 16 characters: fine by default
        r = api.request("PATCH", "/v1/system/backup-configuration", api.token(), json=spec)
        body = assert_vcf_error(r, 400, "PASSPHRASE_POLICY_VIOLATION")
        assert "at least 20 characters" in body["message"]
    finally:
        proc.stop()


def test_password_prompt_asks_twice_and_a_mismatch_is_a_clear_error(local: ServerProcess) -> None:
    def prompt_session(first: str, second: str) -> tuple[str, int]:
        child = pexpect.spawn(
            sys.executable,
            ["-m", "sddc_backup", "users", "add", "tty@local", "--role", "ADMIN"],
            env=local.env,
            encoding="utf-8",
            timeout=60,
        )
        child.expect("Password: ")
        child.sendline(first)
        child.expect(r"Password \(again\): ")
        child.sendline(second)
        child.expect(pexpect.EOF)
        child.close()
        return str(child.before), int(child.exitstatus)

    output, status = prompt_session("Admin!pw-123", "Admin!pw-456")
    assert status == 2 and "PASSWORD_MISMATCH" in output and "Traceback" not in output
    assert "Admin!pw" not in output  # never echoed
    output, status = prompt_session("Admin!pw-123", "Admin!pw-123")
    assert status == 0 and "added tty@local (ADMIN)" in output


def test_unknown_log_level_is_an_invalid_setting(local: ServerProcess) -> None:
    local.extra_env = {"SDDC_BACKUP_LOG_LEVEL": "chatty"}
    result = local.cli("serve")
    assert result.returncode == 2 and "log_level" in result.stderr and "Traceback" not in result.stderr


def test_the_command_line_starts_without_the_servers_code() -> None:
    # A client command or --help runs in scripts, often in loops: it must not pay for the server's
    # imports (the database layer, SSH, the archive pipeline), which take most of a second.
    probe = (
        "import sys\n"
        "from sddc_backup.app import build_cli, _LocalCommands\n"
        "build_cli(_LocalCommands())\n"
        "heavy = ('sqlalchemy', 'asyncssh', 'psycopg', 'fastapi', 'isal', 'sddc_backup.services.archives')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout
