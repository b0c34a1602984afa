"""How the service logs: one event per line, as JSON (the default) or as text.

A JSON line always has ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger`` and ``message``.
Inside a task it also has ``task_id``, ``task_type``, ``phase`` (the subtask) and ``stage``, from the
context that the task engine binds. Structured fields that a caller passes as
``extra={"fields": {...}}`` (the audit log does, see ``services.audit``) become fields of the line, and
uvicorn's access log adds ``client``, ``method``, ``path``, ``http_version`` and ``status``. An
exception adds ``exception``, its traceback as text. The text format carries the same fields after
the message, as ``key=value``.

Only names, ids, codes and messages are logged; the modules that log never pass secrets, and the
tests grep every line of a full run for them.
"""

from __future__ import annotations

import getpass
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from sddc_backup.services.audit import AUDIT_LOGGER
from sddc_backup.tasks.controller import task_log_fields

LogFormat = Literal["json", "text"]
_ACCESS_LOGGER = "uvicorn.access"
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", _ACCESS_LOGGER, "uvicorn.asgi")
_RESERVED = frozenset({"ts", "level", "logger", "message", "exception"})
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of ``record`` beyond its message: task context, ``fields``, access data."""
    found: dict[str, Any] = dict(task_log_fields())
    extra = getattr(record, "fields", None)
    if isinstance(extra, dict):
        found.update({str(k): v for k, v in extra.items() if k not in _RESERVED})
    if record.name == _ACCESS_LOGGER and isinstance(record.args, tuple) and len(record.args) == 5:
        found.update(zip(_ACCESS_FIELDS, record.args, strict=True))
    return found


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(event_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["exception"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> key=value ...``, one line per record but for tracebacks."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = event_fields(record)
        if record.name == _ACCESS_LOGGER:  # the message already says all of it
            fields = {k: v for k, v in fields.items() if k not in _ACCESS_FIELDS}
        if not fields:
            return text
        first, newline, rest = text.partition("\n")
        pairs = " ".join(f"{key}={json.dumps(value, default=str)}" for key, value in fields.items())
        return f"{first} {pairs}{newline}{rest}"


def _install(handler: logging.Handler, level: int | str) -> None:
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _UVICORN_LOGGERS:  # uvicorn runs without a logging config of its own: all go to root
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(log_format: LogFormat, level: str, stream: TextIO | None = None) -> None:
    """Send every record at ``level`` or above (the service's, uvicorn's and its access log) to
    ``stream`` (standard error by default), one line per event in ``log_format``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    _install(handler, level.upper())
    logging.captureWarnings(True)  # Python's warnings become events too, not lines of their own


def configure_local_logging(log_format: LogFormat, level: str, stream: TextIO | None = None) -> None:
    """Logging for a local command: warnings and errors (or ``level`` if it is higher), and the audit
    log, to standard error, so that what the command prints on standard output stays clean."""
    configure_logging(log_format, level, stream)
    root = logging.getLogger()
    root.setLevel(max(root.level, logging.WARNING))
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.INFO)


def local_actor() -> str:
    """The audit actor of a local command: the operating system user who runs it."""
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for the uid (a container without an /etc/passwd entry)
        return "local:unknown"
