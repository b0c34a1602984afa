"""The client's pure parts: fingerprints, exit codes, statuses, and throughput from successive polls."""

from __future__ import annotations

import base64
import hashlib

import pytest

from sddc_backup.cli.client.errors import ClientError, ExitCode, exit_code_for_status
from sddc_backup.cli.client.progress import (
    RateMeter,
    current_phase,
    current_progress,
    current_stage,
    format_amount,
    is_terminal,
    normalized,
    outcome,
    progress_text,
)
from sddc_backup.cli.client.tls import display_fingerprint, parse_fingerprint

DIGEST = hashlib.sha256(b"certificate").digest()


@pytest.mark.parametrize(
    "text",
    [
        DIGEST.hex(":").upper(),  # as the server prints it at start
        DIGEST.hex(),
        f"SHA256:{DIGEST.hex(':')}",
        f"sha256 Fingerprint={DIGEST.hex(':').upper()}",  # openssl x509 -fingerprint -sha256
        "SHA256:" + base64.b64encode(DIGEST).decode().rstrip("="),
        "SHA256:" + base64.b64encode(DIGEST).decode(),
        f"  {DIGEST.hex()}\n",
    ],
)
def test_every_written_form_of_a_fingerprint_names_the_same_digest(text: str) -> None:
    assert parse_fingerprint(text) == DIGEST
    assert display_fingerprint(DIGEST) == DIGEST.hex(":").upper()


@pytest.mark.parametrize(
    "text", ["", "SHA256:", "abc", DIGEST.hex()[:-2], "SHA256:" + "A" * 10, "MD5:" + DIGEST.hex()]
)
def test_anything_else_is_bad_input(text: str) -> None:
    with pytest.raises(ClientError) as caught:
        parse_fingerprint(text)
    assert caught.value.exit_code == ExitCode.BAD_INPUT and caught.value.code == "INVALID_FINGERPRINT"


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 2), (401, 3), (403, 3), (404, 4), (405, 2), (409, 1), (422, 2), (429, 3), (500, 1), (503, 1)],
)
def test_http_statuses_map_to_the_documented_exit_codes(status: int, code: int) -> None:
    assert exit_code_for_status(status) == code


@pytest.mark.parametrize(
    ("status", "terminal", "code"),
    [
        ("IN_PROGRESS", False, None),
        ("In Progress", False, None),
        ("Pending", False, None),
        ("SUCCESSFUL", True, 0),
        ("Successful", True, 0),
        ("FAILED", True, 1),
        ("Failed", True, 1),
        ("SKIPPED", True, 1),
        ("CANCELLED", True, 5),
    ],
)
def test_statuses_compare_in_any_spelling(status: str, terminal: bool, code: int | None) -> None:
    task = {"status": status}
    assert is_terminal(task) is terminal
    if code is not None:
        assert outcome(task) == code
    assert normalized("In Progress") == normalized("IN_PROGRESS") == "IN_PROGRESS"


def test_the_current_phase_and_stage_of_a_restore_task() -> None:
    running = {
        "name": "Upload",
        "status": "IN_PROGRESS",
        "progress": {"completed": 5, "total": 10, "unit": "bytes"},
    }
    task = {
        "status": "In Progress",
        "subTasks": [
            {
                "name": "StopSDDCManagerServices",
                "status": "Successful",
                "stages": [{"name": "Stop", "status": "SUCCESSFUL"}],
            },
            {"name": "ExtractSDDCManagerBackup", "status": "In Progress", "stages": [running]},
            {"name": "UnquiesceSystem", "status": "Pending", "stages": []},
        ],
    }
    phase = current_phase(task)
    assert phase is not None and phase["name"] == "ExtractSDDCManagerBackup"
    assert current_stage(phase) == running
    assert current_progress(task) == running["progress"]
    ended = {
        "status": "Failed",
        "subTasks": [{**task["subTasks"][0]}, {**task["subTasks"][1], "status": "Failed"}],
    }
    assert current_phase(ended) == ended["subTasks"][1]
    assert current_phase({"status": "IN_PROGRESS", "subTasks": []}) is None


def test_the_rate_comes_from_the_samples_of_the_running_stage_only() -> None:
    meter = RateMeter(window=5.0)
    meter.add("upload", 0, 0.0)
    assert meter.rate() is None  # one sample: no rate yet
    meter.add("upload", 10 * 2**20, 1.0)
    meter.add("upload", 30 * 2**20, 2.0)
    assert meter.rate() == 15 * 2**20
    assert meter.eta(30 * 2**20, 60 * 2**20) == 2.0
    assert meter.eta(30 * 2**20, None) is None
    meter.add("upload", 2**20, 3.0)  # the count went down: an attempt started again
    assert meter.rate() is None
    meter.add("verify", 5, 4.0)  # another stage
    meter.add("verify", 5, 5.0)
    assert meter.rate() == 0
    for second in range(6, 20):
        meter.add("verify", 5 + 10 * (second - 5), float(second))
    assert meter.rate() == 10  # the old, slower samples fell out of the window


def test_amounts_and_progress_text() -> None:
    assert format_amount(512) == "512 B"
    assert format_amount(1536) == "1.5 KiB"
    assert format_amount(5 * 2**30) == "5.0 GiB"
    assert format_amount(3, "files") == "3 files"
    meter = RateMeter()
    meter.add("s", 0, 0.0)
    meter.add("s", 2**20, 1.0)
    text = progress_text({"completed": 2**20, "total": 4 * 2**20, "unit": "bytes"}, meter)
    assert text == "1.0 MiB of 4.0 MiB (25%) · 1.0 MiB/s · ETA 0:00:03"
    assert progress_text({"completed": 2**20, "unit": "bytes"}, RateMeter()) == "1.0 MiB"
