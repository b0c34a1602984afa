"""The service's memory settings, observed in a real process: glibc reports its heaps itself."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from sddc_backup.app.runtime import MALLOC_ARENAS, freeze_startup_objects

REPO = Path(__file__).resolve().parents[2]

# Eight threads hold memory at the same moment, then glibc prints one "Arena N:" block per heap.
PROGRAM = """
import ctypes, sys, threading
from sddc_backup.app.runtime import limit_malloc_arenas
if sys.argv[1] == "limit":
    limit_malloc_arenas()
barrier = threading.Barrier(9)
def work():
    held = [bytearray(200_000) for _ in range(20)]
    barrier.wait()
    del held
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
barrier.wait()
ctypes.CDLL("libc.so.6").malloc_stats()
for thread in threads:
    thread.join()
"""


def heaps(mode: str, **env: str) -> int:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    environment.update(env, PYTHONPATH=str(REPO / "src"))
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], env=environment, capture_output=True, text=True, check=True
    )
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_the_service_keeps_at_most_two_heaps_however_many_threads_allocate() -> None:
    assert heaps("none") > MALLOC_ARENAS  # without the limit, the threads get heaps of their own
    assert heaps("limit") == MALLOC_ARENAS


def test_malloc_arena_max_in_the_environment_wins() -> None:
    assert heaps("limit", MALLOC_ARENA_MAX="4") == 4


def test_objects_that_exist_at_start_up_are_left_out_of_later_collections() -> None:
    survivor = [object() for _ in range(1000)]
    before = gc.get_freeze_count()
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() >= before + len(survivor)
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


def test_the_server_loads_neither_the_clients_http_library_nor_a_database_driver_at_start() -> None:
    # What the server imports it keeps: httpx2 is for the client commands, psycopg for restores.
    program = "import sys, sddc_backup.app.server; print(sorted({m.split('.')[0] for m in sys.modules}))"
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-c", program], env=environment, capture_output=True, text=True, check=True
    )
    loaded = done.stdout
    assert "'fastapi'" in loaded  # the program did import the server
    assert "'httpx2'" not in loaded
    assert "'psycopg'" not in loaded
