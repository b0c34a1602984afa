"""How the client commands fail: one exception, ``ClientError``, and the stable exit codes.

::

    ClientError             a message, a remediation and an exit code; never a traceback
    ├── from_response()     a VCF ``Error`` body (or any other answer) of a failed request
    └── raised directly     bad input, no connection, an untrusted certificate, a failed task

The exit codes are part of the command line's contract (docs/cli.md) and do not change.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the operation failed: a task FAILED or SKIPPED, a 409, a 5xx
    BAD_INPUT = 2  # a 400 from the server, or bad arguments
    AUTH = 3  # 401, 403, 429, or no password to send
    NOT_FOUND = 4  # 404
    CANCELLED = 5  # the task ended CANCELLED
    CONNECTION = 6  # cannot connect, TLS verification failed, or the pinned fingerprint differs
    INTERRUPTED = 130  # Ctrl-C while following a task (the task goes on)


class ClientError(Exception):
    """A failure to report as ``error <code>: <message>`` plus the remediation, and an exit code."""

    def __init__(
        self,
        code: str,
        message: str,
        remediation: str,
        exit_code: ExitCode,
        nested: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.remediation = code, message, remediation
        self.exit_code = exit_code
        self.nested = nested or []  # (code, message) of each nested error, e.g. one per broken rule


def exit_code_for_status(status: int) -> ExitCode:
    """The exit code of a failed request: 401/403/429 → 3, 404 → 4, other 4xx but 409 → 2, else 1."""
    if status in (401, 403, 429):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if 400 <= status < 500 and status != 409:
        return ExitCode.BAD_INPUT
    return ExitCode.FAILED


def from_error_body(body: dict[str, Any], exit_code: ExitCode) -> ClientError:
    """A ``ClientError`` from a VCF ``Error`` object (a response body, or an entry of a task's errors)."""
    nested = [
        (str(n.get("errorCode", "?")), str(n.get("message", "")))
        for n in body.get("nestedErrors") or []
        if isinstance(n, dict)
    ]
    return ClientError(
        str(body.get("errorCode") or "ERROR"),
        str(body.get("message") or "The server reported an error."),
        str(body.get("remediationMessage") or ""),
        exit_code,
        nested,
    )


def from_response(status: int, body: object, text: str) -> ClientError:
    """The error of a request that answered ``status``; ``body`` is its parsed JSON, if any."""
    code = exit_code_for_status(status)
    if isinstance(body, dict) and body.get("errorCode"):
        return from_error_body(body, code)
    return ClientError(
        f"HTTP_{status}",
        f"The server answered {status}: {text[:200].strip() or 'no body'}.",
        "Check that --server points at an sddc-backup server.",
        code,
    )


def print_error(error: ClientError) -> None:
    """Write the error to standard error, in the same form as the local commands."""
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    err.print(Text.assemble(("error", "red"), f" {error.code}: {error.message}"))
    for code, message in error.nested:
        err.print(f"  - {code}: {message}", markup=False)
    if error.remediation:
        err.print(f"  {error.remediation}", markup=False)


def fail(error: ClientError) -> NoReturn:
    print_error(error)
    raise typer.Exit(int(error.exit_code))
