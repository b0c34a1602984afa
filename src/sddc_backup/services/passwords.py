"""Password hashing with argon2id (RFC 9106's second profile: 64 MiB, three passes, four lanes).

Hashing is slow on purpose, so it runs off the event loop, in a worker thread. And it is large on
purpose: each hash holds 64 MiB while it runs. Six logins at once took a process from 20 MB to
404 MB, and on two CPUs finished in 0.55 s against 0.68 s one after another. So the hashes of one
event loop run one at a time (``HASHES_AT_ONCE``), and a burst of logins costs the service one
hash's memory, however many arrive together.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASHES_AT_ONCE = 1
T = TypeVar("T")

_HASHER = PasswordHasher()
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so that a wrong name costs as much as a wrong
    password. Made at its first use, not at import: a process that never checks a password (the
    command line, the upload process) never pays for it."""
    return _HASHER.hash("no such user")


async def _in_turn(work: Callable[[], T]) -> T:
    """``work()`` in a worker thread, once no other hash of this event loop is running."""
    turn = _turns.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(HASHES_AT_ONCE))
    await turn.acquire()
    running = asyncio.ensure_future(asyncio.to_thread(work))

    def finished(done: asyncio.Future[T]) -> None:
        # The turn ends with the hash, not with the caller: a client that disconnects does not
        # make room for another hash while its own still holds the memory.
        turn.release()
        if not done.cancelled():
            done.exception()  # retrieved, so that a caller that gave up leaves no warning behind

    running.add_done_callback(finished)
    return await asyncio.shield(running)


async def hash_password(password: str) -> str:
    return await _in_turn(lambda: _HASHER.hash(password))


async def verify_password(password_hash: str | None, password: str) -> bool:
    def verify() -> bool:
        try:
            return _HASHER.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await _in_turn(verify)
