"""``sddc-backup backup``, ``backups list | verify``, ``restore`` and ``retention preview | apply``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from sddc_backup.cli.client.errors import ClientError, ExitCode
from sddc_backup.cli.client.options import (
    DEFAULT_USER,
    CaCertOption,
    Connection,
    FingerprintOption,
    IntervalOption,
    JsonOption,
    ServerOption,
    UserOption,
    WaitOption,
    console,
    emit_json,
    exit_with,
    reported,
    session,
)
from sddc_backup.cli.client.task_commands import report_started
from sddc_backup.cli.client.views import backups_table, retention_table

ELEMENTS = [{"resourceType": "SDDC_MANAGER"}]
PASSPHRASE_ENV = "SDDC_BACKUP_PASSPHRASE"  # noqa: S105 - the name of a variable, not a secret
PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file", "-p", help=f"File whose first line is the passphrase (or set {PASSPHRASE_ENV})."
    ),
]


def read_passphrase(path: Path | None) -> str:
    """The first line of ``path`` without its line end (``\n`` or ``\r\n``), or ``SDDC_BACKUP_PASSPHRASE``."""
    if path is not None:
        try:
            first = path.read_bytes().split(b"\n")[0].removesuffix(b"\r").decode()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            raise ClientError(
                "PASSPHRASE_FILE_UNREADABLE",
                f"The passphrase file {path} cannot be read: {reason}.",
                "Check the path and its permissions.",
                ExitCode.BAD_INPUT,
            ) from exc
        if first:
            return first
    elif os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    raise ClientError(
        "PASSPHRASE_MISSING",
        "No passphrase was given.",
        f"Use --passphrase-file FILE (first line), or set {PASSPHRASE_ENV}.",
        ExitCode.BAD_INPUT,
    )


def register(cli: typer.Typer) -> None:
    """Add ``backup``, ``restore``, and the ``backups`` and ``retention`` groups to ``cli``."""
    backups = typer.Typer(help="The backups on the configured location.", no_args_is_help=True)
    retention = typer.Typer(
        help="The retention policy: what it keeps, and applying it.", no_args_is_help=True
    )
    cli.add_typer(backups, name="backups")
    cli.add_typer(retention, name="retention")

    @cli.command("backup")
    def backup(
        wait: WaitOption = False,
        interval: IntervalOption = 0.5,
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Take a backup now (POST /v1/backups/tasks) to the configured location."""
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            started = s.call("POST", "/v1/backups/tasks", json={"elements": ELEMENTS})
            code = report_started(s, started, wait, interval, as_json)
        exit_with(code)

    @cli.command("restore")
    def restore(
        file: Annotated[
            str,
            typer.Argument(
                help="An absolute path on the server in an allowed directory (e.g. /tmp/…), "
                "or the name of a backup on the location (see backups list)."
            ),
        ],
        passphrase_file: PassphraseFile = None,
        wait: WaitOption = False,
        interval: IntervalOption = 0.5,
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Restore the appliance from a backup (POST /v1/restores/tasks); all or nothing."""
        with reported():
            passphrase = read_passphrase(passphrase_file)
        body = {"elements": ELEMENTS, "backupFile": file, "encryption": {"passphrase": passphrase}}
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            started = s.call("POST", "/v1/restores/tasks", json=body)
            code = report_started(s, started, wait, interval, as_json)
        exit_with(code)

    @backups.command("list")
    def list_backups(
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """List the backups on the location, newest first, with their check and retention state."""
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            page = s.call("GET", "/v1/backups")
        if as_json:
            emit_json(page)
        else:
            console().print(backups_table(list(page.get("elements") or [])))

    @backups.command("verify")
    def verify(
        name: Annotated[str, typer.Argument(help="A file name from backups list.")],
        wait: WaitOption = False,
        interval: IntervalOption = 0.5,
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Read a backup back from the location and check it completely (POST /v1/backups/verifications)."""
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            started = s.call("POST", "/v1/backups/verifications", json={"fileName": name})
            code = report_started(s, started, wait, interval, as_json)
        exit_with(code)

    @retention.command("preview")
    def preview(
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Show what the policy keeps, and why, and what it would delete; nothing is deleted."""
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            page = s.call("GET", "/v1/backups", params={"retention": "preview"})
        if as_json:
            emit_json(page)
        else:
            console().print(retention_table(list(page.get("elements") or [])))

    @retention.command("apply")
    def apply(
        wait: WaitOption = False,
        interval: IntervalOption = 0.5,
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Apply the retention policy now (POST /v1/backups/retention); each deletion is a stage."""
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            started = s.call("POST", "/v1/backups/retention")
            code = report_started(s, started, wait, interval, as_json)
        exit_with(code)
