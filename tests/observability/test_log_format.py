"""The log formatters in process: task context from the engine's context variable, structured fields,
uvicorn's access records and tracebacks, one line per event."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import copy_context

import pytest

from sddc_backup.app.logs import JsonFormatter, TextFormatter, configure_logging
from sddc_backup.tasks.controller import TaskLogContext, bind_task_log_context


def record(name: str, msg: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def in_task(formatter: logging.Formatter, made: logging.LogRecord) -> str:
    def inside() -> str:
        bind_task_log_context(TaskLogContext("t-1", "SDDC_MANAGER_BACKUP", "Back up", "Upload the archive"))
        return formatter.format(made)

    return copy_context().run(inside)


def test_json_lines_carry_the_task_and_the_structured_fields() -> None:
    line = in_task(JsonFormatter(), record("x", "sent %d bytes", 5, fields={"audit": True, "message": "no"}))
    event = json.loads(line)
    assert event["message"] == "sent 5 bytes" and event["logger"] == "x" and event["level"] == "INFO"
    assert (
        event["task_id"] == "t-1" and event["phase"] == "Back up" and event["stage"] == "Upload the archive"
    )
    assert event["audit"] is True  # a field may not replace the standard ones
    assert "task_id" not in json.loads(JsonFormatter().format(record("x", "outside")))


def test_the_access_log_becomes_fields() -> None:
    made = record("uvicorn.access", '%s - "%s %s HTTP/%s" %d', "10.0.0.5:5", "GET", "/v1/tasks", "1.1", 200)
    event = json.loads(JsonFormatter().format(made))
    assert (event["client"], event["method"], event["path"], event["status"]) == (
        "10.0.0.5:5",
        "GET",
        "/v1/tasks",
        200,
    )
    assert TextFormatter().format(made).endswith('"GET /v1/tasks HTTP/1.1" 200')


def test_a_traceback_stays_inside_its_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        made = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter().format(made)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]


def test_text_lines_put_the_fields_after_the_message() -> None:
    line = in_task(TextFormatter(), record("x", "hello"))
    assert line.endswith(
        'x: hello task_id="t-1" task_type="SDDC_MANAGER_BACKUP" phase="Back up" stage="Upload the archive"'
    )


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.mark.usefixtures("root_logging")
def test_uvicorn_loggers_go_through_the_same_handler() -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    assert json.loads(stream.getvalue())["logger"] == "uvicorn.error"
