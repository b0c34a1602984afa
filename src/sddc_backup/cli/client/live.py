"""Showing a task while it runs (``--wait``, ``tasks watch``) and once it has ended (``tasks show``).

Three forms, chosen by where standard output goes: a live view redrawn in place on a terminal
(rich ``Live``); plain lines, each printed when something changes, when output is a file or a pipe;
and nothing until the end with ``--json``, which then prints the final task.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from sddc_backup.cli.client import progress as p
from sddc_backup.cli.client.errors import ClientError, ExitCode, from_error_body, print_error

Fetch = Callable[[], dict[str, Any]]
PLAIN_PROGRESS_EVERY = 5.0  # seconds between two plain progress lines of the same stage
MARKS = {"SUCCESSFUL": "✓", "FAILED": "✗", "IN_PROGRESS": "▶", "CANCELLED": "■", "SKIPPED": "-"}
STYLES = {"SUCCESSFUL": "green", "FAILED": "red", "CANCELLED": "yellow", "IN_PROGRESS": "cyan"}


def _status(value: object) -> Text:
    return Text(str(value or "?"), style=STYLES.get(p.normalized(value), ""))


def stage_key(task: dict[str, Any]) -> tuple[str, str]:
    phase = p.current_phase(task)
    stage = p.current_stage(phase)
    return str((phase or {}).get("name", "")), str((stage or {}).get("name", ""))


def render(task: dict[str, Any], meter: p.RateMeter | None = None) -> RenderableType:
    """The task, its current phase and stage with their progress, and the list of phases."""
    head = Table.grid(padding=(0, 1))
    head.add_row(Text("Task", style="bold"), Text(str(task.get("name", ""))), _status(task.get("status")))
    head.add_row(Text("Id", style="bold"), Text(str(task.get("id", ""))), Text(""))
    phase, stage = stage_key(task)
    if phase:
        head.add_row(Text("Phase", style="bold"), Text(phase), Text(""))
    if stage:
        head.add_row(Text("Stage", style="bold"), Text(stage), Text(""))
    found = p.current_progress(task)
    if found is not None:
        head.add_row(Text("Progress", style="bold"), Text(p.progress_text(found, meter or p.RateMeter())), "")
        total = found.get("total")
        if isinstance(total, int) and total > 0:
            bar = ProgressBar(total=total, completed=int(found.get("completed") or 0), width=40)
            head.add_row(Text(""), bar, Text(""))
    phases = Table("", "phase", "status", box=None, pad_edge=False, show_header=False)
    for sub in task.get("subTasks") or []:
        mark = MARKS.get(p.normalized(sub.get("status")), "·")
        phases.add_row(mark, Text(str(sub.get("name", ""))), _status(sub.get("status")))
    return Group(head, Text("Phases", style="bold"), phases) if task.get("subTasks") else head


def plain_line(task: dict[str, Any], meter: p.RateMeter) -> str:
    phase, stage = stage_key(task)
    line = f"[{task.get('status')}] {phase or task.get('name', '')}"
    if stage:
        line += f" / {stage}"
    found = p.current_progress(task)
    if found is not None and not p.is_terminal(task):
        line += f": {p.progress_text(found, meter)}"
    return line


def task_errors(task: dict[str, Any]) -> list[ClientError]:
    """The task's errors (or, when it has none, its phases' errors), as printable errors."""
    bodies = list(task.get("errors") or [])
    if not bodies:
        for sub in task.get("subTasks") or []:
            bodies += sub.get("errors") or []
    return [from_error_body(b, ExitCode.FAILED) for b in bodies if isinstance(b, dict)]


def finish(task: dict[str, Any], as_json: bool, console: Console) -> ExitCode:
    """Print the ended task (its JSON, or a closing line) and its errors; return its exit code."""
    if as_json:
        print(json.dumps(task, indent=2), flush=True)
    else:
        closing = Text.assemble(f"{task.get('name', 'task')} {task.get('id', '')}: ", _status(task["status"]))
        console.print(closing, soft_wrap=True)
    for error in task_errors(task):
        print_error(error)
    return p.outcome(task)


def follow(fetch: Fetch, first: dict[str, Any], interval: float, as_json: bool) -> ExitCode:
    """Poll ``fetch`` every ``interval`` seconds until the task ends; show it as it goes, and return
    the exit code of its outcome (0 SUCCESSFUL, 1 FAILED or SKIPPED, 5 CANCELLED)."""
    console = Console()
    meter = p.RateMeter()
    task = first
    try:
        if as_json:
            task = _poll(fetch, task, interval, meter, lambda t: None)
        elif console.is_terminal:
            with Live(render(task, meter), console=console, auto_refresh=False) as live:
                task = _poll(
                    fetch, task, interval, meter, lambda t: live.update(render(t, meter), refresh=True)
                )
        else:
            task = _poll(fetch, task, interval, meter, _PlainPrinter(meter))
    except KeyboardInterrupt:
        sys.stderr.write(f"stopped following; the task goes on: sddc-backup tasks watch {task.get('id')}\n")
        return ExitCode.INTERRUPTED
    return finish(task, as_json, console)


def _poll(
    fetch: Fetch,
    task: dict[str, Any],
    interval: float,
    meter: p.RateMeter,
    show: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    while True:
        found = p.current_progress(task)
        if found is not None:
            meter.add(stage_key(task), int(found.get("completed") or 0), time.monotonic())
        show(task)
        if p.is_terminal(task):
            return task
        time.sleep(interval)
        task = fetch()


class _PlainPrinter:
    """A line whenever the status, phase or stage changes, and a progress line now and then."""

    def __init__(self, meter: p.RateMeter) -> None:
        self._meter = meter
        self._last: tuple[object, ...] | None = None
        self._printed_at = 0.0

    def __call__(self, task: dict[str, Any]) -> None:
        state = (p.normalized(task.get("status")), *stage_key(task))
        now = time.monotonic()
        moving = p.current_progress(task) is not None and now - self._printed_at >= PLAIN_PROGRESS_EVERY
        if state != self._last or moving:
            print(plain_line(task, self._meter), flush=True)
            self._last, self._printed_at = state, now
