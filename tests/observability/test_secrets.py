"""No secret of a full run (passphrases, the SFTP password, user passwords, right or wrong) appears in
the log, the local command's output, any task, any GET response, or any file of the data directory:
neither in clear, nor URL-quoted, nor in an HTTP Basic header."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

import pytest

from tests.observability.recording import RecordedRun
from tests.support.server import ADMIN, ADMIN_PASSWORD


def forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret)}


def leaks(run: RecordedRun, text: str) -> list[str]:
    return [
        f"{name} as {form!r}"
        for name, secret in run.secrets.items()
        for form in forms(secret)
        if form in text
    ]


def test_the_run_had_the_secrets_in_play(recorded_run: RecordedRun) -> None:
    assert quote(ADMIN_PASSWORD, safe="") != ADMIN_PASSWORD  # the quoted forms are worth checking
    assert recorded_run.tasks["failed restore"]["status"] == "Failed"
    assert len(recorded_run.responses) > 20


def test_no_secret_in_any_log_line(recorded_run: RecordedRun) -> None:
    output = recorded_run.server.output()
    assert leaks(recorded_run, output) == []
    basic = base64.b64encode(f"{ADMIN}:{ADMIN_PASSWORD}".encode()).decode()
    assert basic not in output
    assert leaks(recorded_run, recorded_run.cli_stderr) == []


def test_no_secret_in_any_task_or_get_response(recorded_run: RecordedRun) -> None:
    for text in recorded_run.responses + list(recorded_run.scrapes.values()):
        assert leaks(recorded_run, text) == [], text[:500]


def test_no_secret_in_any_file_of_the_data_directory(recorded_run: RecordedRun) -> None:
    files = [p for p in recorded_run.server.data_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        content = path.read_bytes().decode("utf-8", errors="replace")
        assert leaks(recorded_run, content) == [], path


@pytest.mark.parametrize("step", ["restore", "failed restore"])
def test_restore_tasks_name_the_file_but_not_the_passphrase(recorded_run: RecordedRun, step: str) -> None:
    task = recorded_run.tasks[step]
    assert leaks(recorded_run, str(task)) == []
