"""Password hashing: one argon2 hash at a time per event loop, so that a burst of logins costs one
hash's memory (64 MiB), not one per login."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from sddc_backup.services import passwords
from sddc_backup.services.passwords import hash_password, verify_password

REPO = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024

# Six verifications at once, with the service's hasher; prints the growth of the peak RSS in bytes.
PROGRAM = """
import asyncio, re
from sddc_backup.services.passwords import hash_password, verify_password

def hwm():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) * 1024

async def main():
    stored = await hash_password("VMw@re1!VMw@re1!")
    before = hwm()
    results = await asyncio.gather(*(verify_password(stored, "VMw@re1!VMw@re1!") for _ in range(6)))
    assert all(results), results
    print(hwm() - before)

asyncio.run(main())
"""


class CountingHasher:
    """Stands in for argon2: records how many hashes run at the same moment."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def _work(self) -> None:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)
        with self._lock:
            self.running -= 1

    def hash(self, password: str) -> str:
        self._work()
        return f"hashed:{password}"

    def verify(self, stored: str, password: str) -> bool:
        self._work()
        return stored == f"hashed:{password}"


def test_hashes_of_a_burst_run_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = CountingHasher()
    monkeypatch.setattr(passwords, "_HASHER", counting)

    async def burst() -> list[object]:
        calls = [verify_password("hashed:right", "right"), verify_password("hashed:right", "wrong")]
        calls += [hash_password("new") for _ in range(3)] + [
            verify_password("hashed:a", "a") for _ in range(3)
        ]
        return await asyncio.gather(*calls)

    results = asyncio.run(burst())
    assert results == [True, False, "hashed:new", "hashed:new", "hashed:new", True, True, True]
    assert counting.most == 1


def test_a_caller_that_gives_up_keeps_its_turn_until_its_hash_is_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counting = CountingHasher()
    monkeypatch.setattr(passwords, "_HASHER", counting)

    async def abandon_then_hash() -> str:
        first = asyncio.ensure_future(hash_password("first"))
        await asyncio.sleep(0.005)  # its hash is running in a thread
        first.cancel()
        second = await hash_password("second")  # waits for the first hash, not only for its caller
        return second

    assert asyncio.run(abandon_then_hash()) == "hashed:second"
    assert counting.most == 1


async def _check(stored: str) -> tuple[bool, bool, bool]:
    return (
        await verify_password(stored, "VMw@re1!"),
        await verify_password(stored, "wrong"),
        await verify_password(None, "VMw@re1!"),  # no such user: a dummy hash, never a match
    )


def test_real_hashes_verify_and_refuse() -> None:
    stored = asyncio.run(hash_password("VMw@re1!"))
    assert PasswordHasher().verify(stored, "VMw@re1!")
    assert asyncio.run(_check(stored)) == (True, False, False)


def test_six_logins_at_once_hold_the_memory_of_one_hash() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], check=False, capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr
    grown = int(done.stdout)
    assert grown < 2 * 64 * MIB, f"the peak grew by {grown / MIB:.0f} MiB"
