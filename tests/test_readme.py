"""The README's set-up command and curl tour, executed as written against ``make run``.

The tour runs in a copy of the project files (sharing this checkout's ``.venv``) so that ``make run``
uses its defaults: port 8443 and ``./.sddc-backup``. The only line not run as written is the one where
the reader pastes the password that ``make run`` printed; the test sets it from that output.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"


def tour_blocks() -> list[str]:
    text = README.read_text()
    tour = text.split("## A five-minute tour with curl", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", tour, flags=re.S)


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    stamp = ROOT / ".venv" / ".installed"
    assert stamp.exists() and stamp.stat().st_mtime >= (ROOT / "pyproject.toml").stat().st_mtime, (
        "the virtual environment is older than pyproject.toml: run `make setup` (make test does)"
    )
    work = tmp_path / "project"
    work.mkdir()
    for name in ("Makefile", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, work / name)  # copy2 keeps mtimes: make sees the venv as current
    (work / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDDC_BACKUP_")}
    log = work / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "run"], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        password = wait_for_start(proc, log, work)
        yield work, password
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def wait_for_start(proc: subprocess.Popen[bytes], log: Path, work: Path) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        output = log.read_text(errors="replace")
        assert proc.poll() is None, f"make run exited:\n{output}"
        found = re.search(r"admin@local password \(shown once\): (\S+)", output)
        if found and "Application startup complete" in output:
            cert = work / ".sddc-backup" / "tls" / "cert.pem"
            with requests.Session() as s:
                s.trust_env = False
                r = s.get("https://127.0.0.1:8443/v1/tokens", verify=str(cert), timeout=5)
            assert r.status_code == 405
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"make run did not start:\n{log.read_text()}")


def test_readme_starts_with_the_two_set_up_commands() -> None:
    first_section = README.read_text().split("\n## ", 2)[1]
    assert "make run" in first_section and "make test" in first_section


def test_the_curl_tour_works_as_written(make_run: tuple[Path, str]) -> None:
    work, password = make_run
    blocks = tour_blocks()
    assert len(blocks) >= 6
    script = "set -euo pipefail\n" + "\n".join(
        line for block in blocks for line in block.splitlines() if not line.startswith("export PW=")
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=work,
        env={**os.environ, "PW": password},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr + out
    assert '"name":"OPERATIONS_MANAGER","version"' in out and '"status":"UP"' in out
    assert '"status":"SUCCESSFUL"' in out
    assert '"isConfigured":true' in out and '"passphrase":"**********"' in out
    assert '"numberOfMostRecentBackups":10' in out
    assert '"errorCode":"INVALID_FREQUENCY"' in out
    assert '"type":"CONFIGURE_BACKUP"' in out
    assert "VMw@re1!VMw@re1!" not in out and password not in out
