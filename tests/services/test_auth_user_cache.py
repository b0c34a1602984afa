"""The caller's user, read from the state store at most every USER_CACHE_TTL (fake store and clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import jwt
import pytest

from sddc_backup.domain.errors import AuthenticationError
from sddc_backup.domain.throttle import LoginThrottle
from sddc_backup.domain.users import Role, User
from sddc_backup.services.auth import USER_CACHE_TTL, Authenticator, Principal

pytestmark = pytest.mark.anyio
KEY = b"k" * 32
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


class Users:
    """The part of UserStore the authenticator reads, counting the reads."""

    def __init__(self) -> None:
        self.rows: dict[str, User] = {}
        self.reads = 0

    async def get(self, username: str) -> tuple[User, str] | None:
        self.reads += 1
        user = self.rows.get(username)
        return (user, "hash") if user else None


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def users() -> Users:
    store = Users()
    store.rows["alice@local"] = User("alice@local", Role.OPERATOR, T0)
    return store


@pytest.fixture
def auth(users: Users, clock: Clock) -> Authenticator:
    return Authenticator(
        cast(Any, users),
        cast(Any, None),
        clock,
        KEY,
        access_ttl=timedelta(hours=1),
        refresh_ttl=timedelta(days=1),
        throttle=LoginThrottle(),
    )


def token(username: str) -> str:
    expires = datetime.now(UTC) + timedelta(hours=1)  # PyJWT checks it against the real time
    return jwt.encode({"sub": username, "exp": expires}, KEY, algorithm="HS256")


async def test_requests_within_the_window_read_the_user_once(auth: Authenticator, users: Users) -> None:
    for _ in range(50):
        assert await auth.from_bearer(token("alice@local")) == Principal("alice@local", Role.OPERATOR)
    assert users.reads == 1


async def test_a_new_role_applies_once_the_window_has_passed(
    auth: Authenticator, users: Users, clock: Clock
) -> None:
    await auth.from_bearer(token("alice@local"))
    users.rows["alice@local"] = User("alice@local", Role.VIEWER, T0)
    clock.at = T0 + USER_CACHE_TTL - timedelta(milliseconds=1)
    assert (await auth.from_bearer(token("alice@local"))).role is Role.OPERATOR
    clock.at = T0 + USER_CACHE_TTL
    assert (await auth.from_bearer(token("alice@local"))).role is Role.VIEWER
    assert users.reads == 2


async def test_a_removed_user_is_refused_once_the_window_has_passed_and_stays_refused(
    auth: Authenticator, users: Users, clock: Clock
) -> None:
    await auth.from_bearer(token("alice@local"))
    del users.rows["alice@local"]
    clock.at = T0 + USER_CACHE_TTL
    for _ in range(2):  # the refusal is not remembered as a user: each request reads again
        with pytest.raises(AuthenticationError, match="no longer exists"):
            await auth.from_bearer(token("alice@local"))
    assert users.reads == 3
    users.rows["alice@local"] = User("alice@local", Role.ADMIN, T0)
    assert (await auth.from_bearer(token("alice@local"))).role is Role.ADMIN


async def test_each_user_is_kept_apart(auth: Authenticator, users: Users) -> None:
    users.rows["bob@local"] = User("bob@local", Role.VIEWER, T0)
    assert (await auth.from_bearer(token("alice@local"))).username == "alice@local"
    assert (await auth.from_bearer(token("bob@local"))) == Principal("bob@local", Role.VIEWER)
    assert (await auth.from_bearer(token("alice@local"))).role is Role.OPERATOR
    assert users.reads == 2
