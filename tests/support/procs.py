"""Processes as /proc shows them: the fields of a stat file, and the descendants of a process."""

from __future__ import annotations

from pathlib import Path


def stat_fields(path: str) -> list[str] | None:
    """A /proc stat file after the command name: [state, ppid, ...] (index = field number - 3), or
    None when the process (or thread) has gone."""
    try:
        return Path(path).read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, ``pid`` itself not included."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat_fields(f"/proc/{entry.name}/stat")) is not None:
            parents[int(entry.name)] = int(fields[1])
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        todo += kids
    return found
