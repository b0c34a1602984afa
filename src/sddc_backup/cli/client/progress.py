"""Reading a VCF ``Task`` as the client shows it: normalized statuses, the running phase and stage,
and the throughput and ETA worked out from successive polls. Pure: the caller passes the time in."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sddc_backup.cli.client.errors import ExitCode

TERMINAL = frozenset({"SUCCESSFUL", "FAILED", "CANCELLED", "SKIPPED"})


def normalized(status: object) -> str:
    """``In Progress`` and ``IN_PROGRESS`` (and ``Successful``, ``SUCCESSFUL``, …) compare equal."""
    return str(status or "").strip().upper().replace(" ", "_")


def is_terminal(task: dict[str, Any]) -> bool:
    return normalized(task.get("status")) in TERMINAL


def outcome(task: dict[str, Any]) -> ExitCode:
    """0 for SUCCESSFUL, 5 for CANCELLED, 1 for anything else that ended (FAILED, SKIPPED)."""
    status = normalized(task.get("status"))
    if status == "SUCCESSFUL":
        return ExitCode.OK
    if status == "CANCELLED":
        return ExitCode.CANCELLED
    return ExitCode.FAILED


def current_phase(task: dict[str, Any]) -> dict[str, Any] | None:
    """The running subtask; once none runs, the last one that started (``None`` before any did)."""
    subtasks: list[dict[str, Any]] = task.get("subTasks") or []
    for sub in subtasks:
        if normalized(sub.get("status")) == "IN_PROGRESS":
            return sub
    started = [s for s in subtasks if normalized(s.get("status")) != "PENDING"]
    return started[-1] if started else None


def current_stage(phase: dict[str, Any] | None) -> dict[str, Any] | None:
    stages: list[dict[str, Any]] = (phase or {}).get("stages") or []
    for stage in stages:
        if normalized(stage.get("status")) == "IN_PROGRESS":
            return stage
    return stages[-1] if stages else None


def current_progress(task: dict[str, Any]) -> dict[str, Any] | None:
    """``{completed, total?, unit}`` of the running stage (the task-level field is the same thing)."""
    stage = current_stage(current_phase(task))
    found = (stage or {}).get("progress") or task.get("progress")
    return found if isinstance(found, dict) else None


@dataclass
class RateMeter:
    """Throughput over the last ``window`` seconds of samples of one stage; a new stage, or a count that
    goes down (an upload attempt started again), starts the measurement afresh."""

    window: float = 5.0
    _key: object = None
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, key: object, completed: int, now: float) -> None:
        if key != self._key or (self._samples and completed < self._samples[-1][1]):
            self._key = key
            self._samples.clear()
        self._samples.append((now, completed))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()

    def rate(self) -> float | None:
        """Units per second, or ``None`` until two samples some time apart exist."""
        if len(self._samples) < 2:
            return None
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else None

    def eta(self, completed: int, total: int | None) -> float | None:
        """Seconds left at the current rate; ``None`` without a total or a positive rate."""
        rate = self.rate()
        if total is None or not rate or rate <= 0:
            return None
        return max(0.0, (total - completed) / rate)


def format_amount(value: float, unit: str = "bytes") -> str:
    """``512 B``, ``12.3 MiB``; other units as a plain number followed by the unit."""
    if unit != "bytes":
        return f"{value:,.0f} {unit}"
    size = float(value)
    for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or suffix == "TiB":
            return f"{size:.0f} {suffix}" if suffix == "B" else f"{size:.1f} {suffix}"
        size /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def progress_text(progress: dict[str, Any], meter: RateMeter) -> str:
    """``1.2 GiB of 2.0 GiB (60%) · 45.2 MiB/s · ETA 0:00:15`` (the parts that are known)."""
    unit = str(progress.get("unit") or "bytes")
    completed = int(progress.get("completed") or 0)
    total = progress.get("total")
    parts = [format_amount(completed, unit)]
    if isinstance(total, int) and total > 0:
        parts[0] += f" of {format_amount(total, unit)} ({100 * completed // total}%)"
    rate = meter.rate()
    if rate is not None:
        parts.append(f"{format_amount(rate, unit)}/s")
        eta = meter.eta(completed, total if isinstance(total, int) else None)
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
    return " · ".join(parts)
