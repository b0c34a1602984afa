"""The services commands, run as real shell commands: order, failures, timeouts, retried checks."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from sddc_backup.services.restore.commands import OUTPUT_TAIL, ServiceCommandError, ServiceCommands

pytestmark = pytest.mark.anyio


def fast(stop: str | None = None, start: str | None = None, check: str | None = None) -> ServiceCommands:
    """The commands, with a short pause between checks and a timeout no command here comes near."""
    return ServiceCommands(stop=stop, start=start, check=check, timeout=30.0, check_interval=0.05)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The commands run in the test's temporary directory (they inherit the working directory)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def reaped(pid: int) -> bool:
    """Waits, letting the event loop run, until ``pid`` is gone and its exit has reached asyncio."""
    for _ in range(500):
        if not await asyncio.to_thread(Path(f"/proc/{pid}").exists):
            for _ in range(25):  # the child watcher hands the exit status to the loop
                await asyncio.sleep(0.01)
            return True
        await asyncio.sleep(0.02)
    return False


async def ends(pid: int) -> bool:
    """Waits until ``pid`` has ended. A process that another killed (not its parent, which would wait
    for it) takes a moment to act on its SIGKILL, so "not running" right after the kill can be early."""
    for _ in range(500):
        if not running(pid):
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.fixture
def strays() -> Iterator[list[int]]:
    """Processes that a test's commands started; any still running at the end are killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def log_lines(here: Path) -> list[str]:
    path = here / "log"
    return path.read_text().split() if path.exists() else []


async def test_stop_then_start_then_check_run_in_order(here: Path) -> None:
    commands = fast(stop="echo stop >> log", start="echo start >> log", check="echo check >> log")
    await commands.run_stop()
    assert log_lines(here) == ["stop"]
    await commands.run_start()
    assert log_lines(here) == ["stop", "start", "check"]


async def test_without_commands_nothing_runs(here: Path) -> None:
    await ServiceCommands().run_stop()
    await ServiceCommands().run_start()
    await fast(check="echo check >> log").run_stop()  # the check belongs to the start
    assert log_lines(here) == []
    await fast(check="echo check >> log").run_start()  # a check without a start runs
    assert log_lines(here) == ["check"]


async def test_a_failing_command_reports_its_exit_status_and_output(here: Path) -> None:
    commands = fast(stop="echo 'app.service: unit busy'; echo 'try later' >&2; exit 3")
    with pytest.raises(ServiceCommandError) as caught:
        await commands.run_stop()
    error = caught.value
    assert error.error_code == "SERVICE_COMMAND_FAILED"
    assert error.context == {"command": "stop"}
    assert "stop command failed (exit status 3)" in error.message
    assert "app.service: unit busy" in error.message and "try later" in error.message


async def test_only_the_tail_of_a_long_output_is_reported(here: Path) -> None:
    script = "printf BEGIN; head -c 5000 /dev/zero | tr '\\0' x; printf END; exit 1"
    with pytest.raises(ServiceCommandError) as caught:
        await fast(start=script).run_start()
    message = caught.value.message
    assert message.endswith("x" * (OUTPUT_TAIL - 3) + "END")
    assert "BEGIN" not in message and "x" * (OUTPUT_TAIL - 2) + "END" not in message
    assert caught.value.context == {"command": "start"}


async def test_a_failing_start_runs_no_check(here: Path) -> None:
    commands = fast(start="echo start >> log; false", check="echo check >> log")
    with pytest.raises(ServiceCommandError, match="start command failed"):
        await commands.run_start()
    assert log_lines(here) == ["start"]


async def test_a_command_that_takes_too_long_is_killed(here: Path) -> None:
    commands = ServiceCommands(stop="echo $$ > pid; exec sleep 60", timeout=0.5, check_interval=0.05)
    with pytest.raises(ServiceCommandError) as caught:
        await commands.run_stop()
    assert caught.value.error_code == "SERVICE_COMMAND_FAILED"
    assert "did not finish within" in caught.value.message
    assert not running(int((here / "pid").read_text()))


async def test_a_timeout_kills_every_process_of_the_command(here: Path, strays: list[int]) -> None:
    commands = ServiceCommands(
        stop="sleep 60 >/dev/null 2>&1 & echo $! > child; wait", timeout=0.5, check_interval=0.05
    )
    with pytest.raises(ServiceCommandError, match="did not finish within"):
        await commands.run_stop()
    child = int((here / "child").read_text())
    strays.append(child)
    assert await ends(child)


async def test_the_check_runs_again_until_it_passes(here: Path) -> None:
    third_time = 'n=$(cat count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > count; [ "$n" -ge 3 ]'
    await fast(start="echo start >> log", check=third_time).run_start()
    assert (here / "count").read_text().strip() == "3"
    assert log_lines(here) == ["start"]  # the start itself runs once


async def test_a_check_that_never_passes_fails_when_the_time_is_up(here: Path) -> None:
    never = "echo tried >> log; echo 'not ready yet'; exit 1"
    commands = ServiceCommands(check=never, timeout=0.5, check_interval=0.05)
    with pytest.raises(ServiceCommandError) as caught:
        await commands.run_start()
    assert caught.value.context == {"command": "check"}
    assert "not ready yet" in caught.value.message
    assert len(log_lines(here)) >= 2


async def test_a_cancelled_command_is_killed(here: Path) -> None:
    task = asyncio.create_task(fast(stop="echo $$ > pid; exec sleep 60").run_stop())
    for _ in range(500):
        if (here / "pid").exists() and (here / "pid").read_text().strip():
            break
        await asyncio.sleep(0.02)
    pid = int((here / "pid").read_text())
    assert running(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await reaped(pid)


async def test_a_command_gets_no_standard_input(here: Path) -> None:
    await fast(stop="cat > seen").run_stop()  # would wait for input otherwise
    assert (here / "seen").read_bytes() == b""
