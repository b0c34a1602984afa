"""The appliance's services, stopped and started around a restore by the operator's own commands.

``SDDC_BACKUP_SERVICES_STOP``, ``..._START`` and ``..._CHECK`` are shell commands (``systemctl stop
app.service``, say). Each is optional: without a stop command nothing is stopped. The check command is
run again every ``check_interval`` seconds until it succeeds or ``timeout`` passes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from contextlib import suppress
from dataclasses import dataclass

from sddc_backup.domain.errors import SddcBackupError

log = logging.getLogger(__name__)
OUTPUT_TAIL = 1000


class ServiceCommandError(SddcBackupError):
    error_code = "SERVICE_COMMAND_FAILED"
    remediation = (
        "Run the command by hand to see why it fails, fix it (or SDDC_BACKUP_SERVICES_*), and start "
        "the restore again."
    )


@dataclass(frozen=True)
class ServiceCommands:
    stop: str | None = None
    start: str | None = None
    check: str | None = None
    timeout: float = 300.0
    check_interval: float = 2.0

    async def run_stop(self) -> None:
        if self.stop:
            await _run("stop", self.stop, self.timeout)

    async def run_start(self) -> None:
        """Start, then wait for the check to pass."""
        if self.start:
            await _run("start", self.start, self.timeout)
        if not self.check:
            return
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                await _run("check", self.check, max(1.0, deadline - time.monotonic()))
                return
            except ServiceCommandError:
                if time.monotonic() + self.check_interval > deadline:
                    raise
            await asyncio.sleep(self.check_interval)


async def _run(what: str, command: str, seconds: float) -> None:
    process = await asyncio.create_subprocess_shell(
        command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        _kill_all(process)
        await process.wait()
        raise ServiceCommandError(
            f"The services {what} command did not finish within {seconds:.0f} seconds.",
            context={"command": what},
        ) from None
    except asyncio.CancelledError:
        _kill_all(process)
        raise
    tail = output.decode(errors="replace").strip()[-OUTPUT_TAIL:]
    if process.returncode != 0:
        raise ServiceCommandError(
            f"The services {what} command failed (exit status {process.returncode}): {tail}",
            context={"command": what},
        )
    log.info("services %s command succeeded", what)


def _kill_all(process: asyncio.subprocess.Process) -> None:
    """Kill the shell and everything it started: it runs in a session (a process group) of its own,
    and a child holding the output pipe would otherwise outlive the timeout."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
