"""What every command shares: options, and the one way errors become messages and exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from sddc_backup.domain.errors import InvalidInputError, SddcBackupError

T = TypeVar("T")
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (environment variables override it)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def fail(exc: SddcBackupError) -> NoReturn:
    """Report ``exc`` as a message and an exit code (2 for bad input, 1 otherwise), not a traceback."""
    err = Console(stderr=True, soft_wrap=True)
    err.print(f"[red]error[/red] {exc.error_code}: {exc.message}", highlight=False)
    err.print(f"  {exc.remediation}", highlight=False)
    raise typer.Exit(2 if isinstance(exc, InvalidInputError) else 1)


def run(action: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(action())
    except SddcBackupError as exc:
        fail(exc)
