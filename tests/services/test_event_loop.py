"""The event loop the server and a backup's upload process run on."""

from __future__ import annotations

import asyncio

import pytest

from sddc_backup.services import event_loop


def test_run_returns_what_the_coroutine_returns_on_uvloop() -> None:
    async def loop_module() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__

    assert event_loop.run(loop_module()) == "uvloop"


def test_run_raises_what_the_coroutine_raises_and_closes_its_loop() -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def fail() -> None:
        seen.append(asyncio.get_running_loop())
        raise LookupError("from the coroutine")

    with pytest.raises(LookupError, match="from the coroutine"):
        event_loop.run(fail())
    assert seen[0].is_closed()
