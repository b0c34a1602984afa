"""The client commands of ``sddc-backup``: they talk to a running server over HTTPS (httpx2).

Each command takes ``--server``, ``--user``, ``--ca-cert`` or ``--fingerprint`` and ``--json`` (or
their ``SDDC_BACKUP_*`` variables), reads the password from ``SDDC_BACKUP_PASSWORD`` or a prompt, logs
in for that one invocation and logs out at the end. This package imports nothing of the server side
(services, api, persistence): it knows the server only through its HTTP API. Exit codes are listed in
``errors.ExitCode`` and in docs/cli.md.
"""

from __future__ import annotations

import typer

from sddc_backup.cli.client import backup_commands, config_commands, login_command, task_commands


def register(cli: typer.Typer) -> None:
    """Add every client command to ``cli``."""
    login_command.register(cli)
    config_commands.register(cli)
    backup_commands.register(cli)
    task_commands.register(cli)
