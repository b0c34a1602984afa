"""``sddc-backup config show | set | validate | fingerprint``: the backup configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    console,
    emit_json,
    exit_with,
    read_json_file,
    reported,
    session,
)
from sddc_backup.cli.client.task_commands import report_started
from sddc_backup.cli.client.views import configuration_view, fingerprint_view, validation_view

PATH = "/v1/system/backup-configuration"
SpecFile = Annotated[
    Path, typer.Option("--file", "-f", help="A BackupConfigurationSpec as JSON (see docs/api.md).")
]


def read_spec(path: Path) -> dict[str, Any]:
    spec = read_json_file(path)
    if not isinstance(spec, dict):
        raise ClientError(
            "SPEC_FILE_INVALID",
            f"{path} holds JSON, but not an object.",
            'Give a BackupConfigurationSpec object, e.g. {"backupLocations": [...], "encryption": {...}}.',
            ExitCode.BAD_INPUT,
        )
    return spec


def register(cli: typer.Typer) -> None:
    """Add the ``config`` command group to ``cli``."""
    group = typer.Typer(
        help="Show, change and check the server's backup configuration.", no_args_is_help=True
    )
    cli.add_typer(group, name="config")

    @group.command("show")
    def show(
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Show the configuration; secrets show only as set or not set."""
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            config = s.call("GET", PATH)
        if as_json:
            emit_json(config)
        else:
            console().print(configuration_view(config))

    @group.command("set")
    def set_(
        file: SpecFile,
        replace: Annotated[
            bool, typer.Option("--replace", help="Replace the whole configuration (PUT) instead of PATCH.")
        ] = False,
        wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the task to its end.")] = True,
        interval: IntervalOption = 0.5,
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Change the configuration (PATCH: only what the file names) and follow the task."""
        with reported():
            spec = read_spec(file)
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            task = s.call("PUT" if replace else "PATCH", PATH, json=spec)
            code = report_started(s, task, wait, interval, as_json)
        exit_with(code)

    @group.command("validate")
    def validate(
        file: Annotated[
            Path | None,
            typer.Option(
                "--file", "-f", help="A BackupConfigurationSpec to check; the stored one if left out."
            ),
        ] = None,
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Check a configuration for real without saving it; exit 1 when a check of severity ERROR fails."""
        with reported():
            spec = read_spec(file) if file is not None else {}
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            validation = s.call("POST", f"{PATH}/validations", json=spec)
        if as_json:
            emit_json(validation)
        else:
            console().print(validation_view(validation))
        exit_with(ExitCode.FAILED if validation.get("resultStatus") == "FAILED" else ExitCode.OK)

    @group.command("fingerprint")
    def fingerprint_(
        host: Annotated[str, typer.Argument(help="The SFTP server's address or name.")],
        port: Annotated[int, typer.Option(min=1, max=65535, help="Its SSH port.")] = 22,
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Show the SSH host keys that HOST offers to the server (only the key exchange takes place)."""
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            found = s.call("GET", f"{PATH}/backup-locations", params={"serverIp": host, "port": str(port)})
        if as_json:
            emit_json(found)
        else:
            console().print(fingerprint_view(found))
