"""The event loop the service's processes run on: uvloop.

Measured with ``bench/api_load.py`` (ADR 0021): the server answers more requests with a shorter
tail than on the standard loop, and a backup's upload process, whose SFTP writes run on its loop,
loses less time to a busy machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on a new uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
