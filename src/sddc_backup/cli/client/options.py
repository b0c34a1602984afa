"""What every client command shares: the connection options, the password, output, and the one way
a failure becomes a message and an exit code."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from sddc_backup.cli.client import tls
from sddc_backup.cli.client.errors import ClientError, ExitCode, fail
from sddc_backup.cli.client.session import ServerSession, Target, normalize_url

PASSWORD_ENV = "SDDC_BACKUP_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
DEFAULT_USER = "admin@local"

ServerOption = Annotated[
    str | None,
    typer.Option("--server", "-s", envvar="SDDC_BACKUP_URL", help="https://HOST:PORT of the server."),
]
UserOption = Annotated[
    str, typer.Option("--user", "-u", envvar="SDDC_BACKUP_USER", help="User to log in as.")
]
CaCertOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-cert", envvar="SDDC_BACKUP_CA_CERT", help="PEM file of the CA (or certificate) to trust."
    ),
]
FingerprintOption = Annotated[
    str | None,
    typer.Option(
        "--fingerprint",
        envvar="SDDC_BACKUP_FINGERPRINT",
        help="Pin the server certificate's SHA-256 (as the server prints it at start, or SHA256:base64).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
WaitOption = Annotated[bool, typer.Option("--wait", help="Follow the task to its end.")]
IntervalOption = Annotated[
    float, typer.Option("--interval", min=0.1, help="Seconds between two polls of the task.")
]


@dataclass(frozen=True)
class Connection:
    """The connection options of one command, before anything is contacted."""

    server: str | None
    user: str
    ca_cert: Path | None
    fingerprint: str | None

    def target(self) -> Target:
        if not self.server:
            raise ClientError(
                "SERVER_MISSING",
                "No server was given.",
                "Use --server https://HOST:8443, or set SDDC_BACKUP_URL.",
                ExitCode.BAD_INPUT,
            )
        if self.ca_cert is not None and self.fingerprint:
            raise ClientError(
                "TLS_OPTIONS_CONFLICT",
                "--ca-cert and --fingerprint were both given.",
                "Use one of them: a pinned fingerprint, or a CA file.",
                ExitCode.BAD_INPUT,
            )
        pin = tls.parse_fingerprint(self.fingerprint) if self.fingerprint else None
        return Target(normalize_url(self.server), tls.build_context(self.ca_cert, pin))


@contextmanager
def session(connection: Connection) -> Iterator[ServerSession]:
    """A logged-out session; it logs in on its first request and logs out when the block ends.
    The password is ``SDDC_BACKUP_PASSWORD``, or else asked for on a terminal once the server's
    certificate has been verified. Any ``ClientError`` inside the block is reported and ends the
    command with its exit code."""
    with reported():
        target = connection.target()
        password = os.environ.get(PASSWORD_ENV, "")
        if not password and not sys.stdin.isatty():
            raise ClientError(
                "PASSWORD_MISSING",
                f"No password for {connection.user}: {PASSWORD_ENV} is not set and standard input "
                "is not a terminal.",
                f"Set {PASSWORD_ENV}, or run the command on a terminal to be asked.",
                ExitCode.AUTH,
            )
        with ServerSession(target, connection.user, password) as s:
            if not password:
                s.check_connection()  # nobody types a password for a server that is not trusted
                s.password = getpass.getpass(f"Password for {connection.user} at {target.url}: ")
            yield s


@contextmanager
def reported() -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        fail(exc)


def emit_json(document: Any) -> None:
    print(json.dumps(document, indent=2), flush=True)


def console() -> Console:
    """Standard output; wide when it is not a terminal, so that tables are not folded in files."""
    out = Console()
    return out if out.is_terminal else Console(width=200)


def exit_with(code: ExitCode) -> NoReturn:
    raise typer.Exit(int(code))


def read_json_file(path: Path) -> Any:
    """A JSON document from ``path``; exit 2 when it cannot be read or parsed."""
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ClientError(
            "SPEC_FILE_UNREADABLE",
            f"{path} cannot be read: {exc.strerror}.",
            "Check the path and its permissions.",
            ExitCode.BAD_INPUT,
        ) from exc
    except ValueError as exc:
        raise ClientError(
            "SPEC_FILE_INVALID",
            f"{path} is not JSON: {exc}.",
            "Give a BackupConfigurationSpec as a JSON object (see docs/api.md).",
            ExitCode.BAD_INPUT,
        ) from exc
