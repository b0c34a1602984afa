"""``sddc-backup tasks list | show | watch | cancel | retry``, and how every command that starts a
task reports it (at once, or followed to its end with ``--wait``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from sddc_backup.cli.client import live
from sddc_backup.cli.client.errors import ExitCode, print_error
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
    session,
)
from sddc_backup.cli.client.session import ServerSession
from sddc_backup.cli.client.views import tasks_table

TaskId = Annotated[str, typer.Argument(help="The task's id.")]


def fetcher(s: ServerSession, task_id: str) -> live.Fetch:
    def fetch() -> dict[str, Any]:
        task: dict[str, Any] = s.call("GET", f"/v1/tasks/{task_id}")
        return task

    return fetch


def report_started(
    s: ServerSession, started: dict[str, Any], wait: bool, interval: float, as_json: bool
) -> ExitCode:
    """Print a task that a request started: at once (its JSON, or its id and how to follow it), or,
    with ``wait``, followed to its end. Returns the exit code (the outcome's, when waiting)."""
    task_id = str(started["id"])
    if wait:
        return live.follow(fetcher(s, task_id), started, interval, as_json)
    if as_json:
        emit_json(started)
    else:
        console().print(
            Text(f"started {started.get('name', 'task')} {task_id} ({started.get('status')})\n")
            + Text(f"follow it with: sddc-backup tasks watch {task_id}")
        )
    return ExitCode.OK


def register(cli: typer.Typer) -> None:
    """Add the ``tasks`` command group to ``cli``."""
    group = typer.Typer(help="List, follow, cancel and retry the server's tasks.", no_args_is_help=True)
    cli.add_typer(group, name="tasks")

    @group.command("list")
    def list_tasks(
        status: Annotated[
            str | None, typer.Option(help="Only these statuses, comma-separated (IN_PROGRESS, FAILED, …).")
        ] = None,
        task_type: Annotated[
            str | None, typer.Option("--type", help="Only this type, e.g. SDDC_MANAGER_BACKUP.")
        ] = None,
        limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many, newest first.")] = 20,
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """List tasks, newest first (GET /v1/tasks)."""
        params: dict[str, str | int] = {"limit": limit, "pageSize": limit}
        if status:
            params["taskStatus"] = status
        if task_type:
            params["taskType"] = task_type
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            page = s.call("GET", "/v1/tasks", params=params)
        if as_json:
            emit_json(page)
        else:
            console().print(tasks_table(list(page.get("elements") or [])))

    @group.command("show")
    def show(
        task_id: TaskId,
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Show a task: its status, phases, progress and errors (exit 0 whatever its status)."""
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            task = fetcher(s, task_id)()
        if as_json:
            emit_json(task)
            return
        console().print(live.render(task))
        for error in live.task_errors(task):
            print_error(error)

    @group.command("watch")
    def watch(
        task_id: TaskId,
        interval: IntervalOption = 0.5,
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Follow a task to its end; exit 0 when it succeeds, 1 when it fails, 5 when it is cancelled."""
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            fetch = fetcher(s, task_id)
            code = live.follow(fetch, fetch(), interval, as_json)
        exit_with(code)

    @group.command("cancel")
    def cancel(
        task_id: TaskId,
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Ask a running task to stop (DELETE /v1/tasks/ID); the server waits up to 10 s for it to end."""
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            s.call("DELETE", f"/v1/tasks/{task_id}")
            task = fetcher(s, task_id)()
        if as_json:
            emit_json(task)
        else:
            console().print(f"cancel requested: task {task_id} is {task.get('status')}", highlight=False)

    @group.command("retry")
    def retry(
        task_id: TaskId,
        wait: WaitOption = False,
        interval: IntervalOption = 0.5,
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Run a FAILED task again under the same id (PATCH /v1/tasks/ID)."""
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            s.call("PATCH", f"/v1/tasks/{task_id}")
            code = report_started(s, fetcher(s, task_id)(), wait, interval, as_json)
        exit_with(code)
