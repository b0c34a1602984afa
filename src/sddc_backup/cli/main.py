"""The command tree. ``build_cli`` receives the ``LocalCommands`` that ``app`` implements, so that the
CLI never builds services itself."""

from __future__ import annotations

import getpass
import json
import sys
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer
from rich.console import Console
from rich.table import Table

from sddc_backup.cli import archive, client
from sddc_backup.cli.common import ConfigOption, JsonOption, fail, run
from sddc_backup.domain.errors import InvalidInputError, SddcBackupError
from sddc_backup.domain.users import Role

if TYPE_CHECKING:  # the client commands start without the server's code
    from sddc_backup.services.users import UserAdmin


class LocalCommands(archive.ArchiveCommands, Protocol):
    def serve(self, config: Path | None) -> None: ...
    def check_config(self, config: Path | None) -> list[tuple[str, bool, str]]: ...
    def users(self, config: Path | None) -> AbstractAsyncContextManager[UserAdmin]: ...
    def openapi(self) -> dict[str, Any]: ...


def read_new_password(prompt: str = "Password") -> str:
    """One line from standard input when it is not a terminal; otherwise a prompt, asked twice."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"{prompt}: ")
    if getpass.getpass(f"{prompt} (again): ") != first:
        raise InvalidInputError(
            "The two passwords differ.", error_code="PASSWORD_MISMATCH", remediation="Type it again."
        )
    return first


def _report_checks(checks: list[tuple[str, bool, str]]) -> None:
    """One line per check; exit status 2 when any failed (as for other bad settings)."""
    console = Console(soft_wrap=True, highlight=False)
    for what, ok, detail in checks:
        console.print(f"{'[green]ok[/green]  ' if ok else '[red]FAIL[/red]'} {what}: {detail}")
    if not all(ok for _, ok, _ in checks):
        raise typer.Exit(2)
    console.print("the configuration is usable")


def build_cli(local: LocalCommands) -> typer.Typer:
    cli = typer.Typer(
        name="sddc-backup",
        help="Encrypted, verifiable backups of an appliance, behind the SDDC Manager backup API.",
        no_args_is_help=True,
        add_completion=False,
    )
    users = typer.Typer(help="Manage local users (works on the data directory; no server needed).")
    cli.add_typer(users, name="users")
    archive.register(cli, local)
    client.register(cli)

    @cli.command()
    def serve(
        config: ConfigOption = None,
        check_config: Annotated[
            bool, typer.Option("--check-config", help="Check the settings and exit without starting.")
        ] = False,
    ) -> None:
        """Run the HTTPS API server (or, with --check-config, only check its settings)."""
        try:
            if check_config:
                _report_checks(local.check_config(config))
                return
            local.serve(config)
        except SddcBackupError as exc:
            fail(exc)

    @cli.command()
    def openapi() -> None:
        """Print the OpenAPI document of the API."""
        typer.echo(json.dumps(local.openapi(), indent=2, sort_keys=True))

    @users.command("add")
    def users_add(
        name: str,
        role: Annotated[Role, typer.Option(case_sensitive=False, help="ADMIN, OPERATOR or VIEWER")],
        config: ConfigOption = None,
    ) -> None:
        """Add a user; the password is read from standard input or a prompt."""

        async def act() -> None:
            password = read_new_password()
            async with local.users(config) as admin:
                await admin.add(name, role, password)

        run(act)
        typer.echo(f"added {name} ({role.value})")

    @users.command("list")
    def users_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
        """List the users and their roles."""

        async def act() -> list[Any]:
            async with local.users(config) as admin:
                return await admin.list()

        found = run(act)
        if as_json:
            rows = [
                {"username": u.username, "role": u.role.value, "created": u.created.isoformat()}
                for u in found
            ]
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table("user", "role", "created")
        for u in found:
            table.add_row(u.username, u.role.value, u.created.isoformat(timespec="seconds"))
        Console().print(table)

    @users.command("remove")
    def users_remove(name: str, config: ConfigOption = None) -> None:
        """Remove a user and end its sessions."""

        async def act() -> None:
            async with local.users(config) as admin:
                await admin.remove(name)

        run(act)
        typer.echo(f"removed {name}")

    @users.command("set-password")
    def users_set_password(name: str, config: ConfigOption = None) -> None:
        """Change a user's password (read from standard input or a prompt) and end its sessions."""

        async def act() -> None:
            password = read_new_password("New password")
            async with local.users(config) as admin:
                await admin.set_password(name, password)

        run(act)
        typer.echo(f"password of {name} changed")

    return cli
