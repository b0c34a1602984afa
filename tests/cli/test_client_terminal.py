"""The client on a terminal (a pseudo-terminal driven by pexpect): the live view of a backup that takes
a few seconds to upload to a real SFTP server, and the password prompt."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.cli.test_client import PASSPHRASE, Client, start_server, write_json
from tests.support.server import ADMIN_PASSWORD, ServerProcess
from tests.support.sshd import SshServer

CHUNK = 8 * 1024 * 1024
# "Progress 42.9 MiB · 266.8 MiB/s" between the escape codes of the live view.
PROGRESS = re.compile(r"(\d+\.\d [KMG]iB) · (\d+\.\d [KMG]iB/s)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An appliance of about 200 MB of random data, which compresses to nothing less."""
    tree = tmp_path_factory.mktemp("big-appliance") / "data"
    tree.mkdir()
    for index in range(25):
        (tree / f"blob-{index:02d}.bin").write_bytes(os.urandom(CHUNK))
    proc = start_server(
        tmp_path_factory.mktemp("client-terminal") / "data", {"SDDC_BACKUP_PATHS": json.dumps([str(tree)])}
    )
    yield proc
    proc.stop()


def spawn(client: Client, *args: str, **changes: str | None) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["-m", "sddc_backup", *args],
        env=client.env(**changes),
        encoding="utf-8",
        timeout=120,
        dimensions=(40, 120),
    )


def test_backup_wait_on_a_terminal_shows_the_upload_as_it_grows(
    server: ServerProcess, sftp_server: SshServer, tmp_path: Path
) -> None:
    client = Client(server)
    location = sftp_server.location_spec(directoryPath=str(sftp_server.account.new_directory()))
    spec = write_json(
        tmp_path / "spec.json", {"backupLocations": [location], "encryption": {"passphrase": PASSPHRASE}}
    )
    assert client.run("config", "set", "--file", str(spec)).returncode == 0

    child = spawn(client, "backup", "--wait", "--interval", "0.1")
    child.expect("IN_PROGRESS")
    child.expect("Upload the archive")
    child.expect("Phases")  # the list of phases follows the current one
    seen: list[tuple[str, str]] = []
    while True:
        # Each redraw shows the bytes uploaded so far and the throughput, until the task ends.
        found = child.expect([PROGRESS, r"SDDC Manager backup \S+: \S*SUCCESSFUL"])
        if found == 1:
            break
        seen.append((child.match.group(1), child.match.group(2)))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    amounts = [amount for amount, _ in seen]
    assert len(set(amounts)) >= 2, seen  # the byte count grew while the view was redrawn


def test_the_password_is_asked_on_a_terminal_and_not_echoed(server: ServerProcess) -> None:
    child = spawn(Client(server), "login", SDDC_BACKUP_PASSWORD=None)
    child.expect(f"Password for admin@local at {re.escape(server.base_url)}: ")
    child.sendline(ADMIN_PASSWORD)
    child.expect(pexpect.EOF)
    child.close()
    output = str(child.before)
    assert child.exitstatus == 0, output
    assert "as admin@local (ADMIN)" in output and ADMIN_PASSWORD not in output


def test_no_password_is_asked_for_a_server_whose_certificate_is_not_the_pinned_one(
    server: ServerProcess,
) -> None:
    wrong = "00" * 32
    child = spawn(
        Client(server), "login", "--fingerprint", wrong, SDDC_BACKUP_PASSWORD=None, SDDC_BACKUP_CA_CERT=None
    )
    child.expect(pexpect.EOF)
    child.close()
    output = str(child.before)
    assert child.exitstatus == 6, output
    assert "TLS_FINGERPRINT_MISMATCH" in output and "Password" not in output
