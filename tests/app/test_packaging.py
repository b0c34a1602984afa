"""What an operator installs: the wheel built from this tree works on its own (its migrations are in
it), the example configuration loads, and ``serve --check-config`` reports each check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sddc_backup.app.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False
    )


def test_the_built_wheel_runs_on_its_own(tmp_path: Path) -> None:
    wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
    built = run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-w",
        str(wheel_dir),
        str(ROOT),
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheel_dir.glob("sddc_backup-*.whl")
    installed = run(sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel))
    assert installed.returncode == 0, installed.stderr
    # The installed copy, not this tree: its own files (migrations included) must be in the wheel.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDDC_BACKUP_")}
    env.update(PYTHONPATH=str(site), SDDC_BACKUP_DATA_DIR=str(tmp_path / "data"))
    where = run(
        sys.executable, "-c", "import sddc_backup; print(sddc_backup.__file__)", env=env, cwd=tmp_path
    )
    assert where.stdout.startswith(str(site)), where
    added = subprocess.run(
        [sys.executable, "-m", "sddc_backup", "users", "add", "ops@local", "--role", "OPERATOR"],
        input="Op3rator!password\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    listed = run(sys.executable, "-m", "sddc_backup", "users", "list", "--json", env=env, cwd=tmp_path)
    assert "ops@local" in listed.stdout, listed
    checked = run(sys.executable, "-m", "sddc_backup", "serve", "--check-config", env=env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_example_configuration_loads() -> None:
    settings = load_settings(ROOT / "deploy" / "config.toml")
    assert settings.data_dir == Path("/var/lib/sddc-backup")
    assert settings.services_check == "systemctl is-active --quiet app.service"
    assert [str(p) for p in settings.paths] == ["/etc/app", "/opt/app/conf"]
    unit = (ROOT / "deploy" / "sddc-backup.service").read_text()
    assert "ExecStart=/usr/local/bin/sddc-backup serve --config /etc/sddc-backup/config.toml" in unit
    assert "PrivateTmp=false" in unit  # restores read backups that operators copy to /tmp


def test_check_config_reports_every_check_and_fails_on_any(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDDC_BACKUP_")}
    present = tmp_path / "present"
    present.mkdir()
    env.update(SDDC_BACKUP_DATA_DIR=str(tmp_path / "data"), SDDC_BACKUP_PATHS=json.dumps([str(present)]))
    good = run(sys.executable, "-m", "sddc_backup", "serve", "--check-config", env=env)
    assert good.returncode == 0, good.stdout
    assert f"ok   protected path exists: {present}" in good.stdout
    assert not (tmp_path / "data").exists()  # nothing was created
    env.update(
        SDDC_BACKUP_PATHS=json.dumps([str(present), str(tmp_path / "missing")]),
        SDDC_BACKUP_POSTGRES_DSN="postgresql://nobody@127.0.0.1:1/none",
        SDDC_BACKUP_FAULTS='{"SDDC_MANAGER_BACKUP:Upload the archive": "hang"}',
    )
    bad = run(sys.executable, "-m", "sddc_backup", "serve", "--check-config", env=env)
    assert bad.returncode == 2
    failed = [line for line in bad.stdout.splitlines() if line.startswith("FAIL")]
    assert failed == [
        f"FAIL protected path exists: {tmp_path / 'missing'}",
        failed[1],
        "FAIL no fault injection: SDDC_BACKUP_FAULTS is for tests only",
    ]
    assert failed[1].startswith("FAIL PostgreSQL database answers:")
