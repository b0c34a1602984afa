"""Local user administration: add, list, remove, change passwords, and the first admin."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sddc_backup.domain.clock import Clock
from sddc_backup.domain.errors import ConflictError, InvalidInputError, NotFoundError
from sddc_backup.domain.users import ADMIN_USERNAME, Role, User, check_username
from sddc_backup.persistence.users import UserStore
from sddc_backup.services.audit import audit
from sddc_backup.services.passwords import hash_password

MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class Bootstrap:
    """What the first start did: ``generated_password`` is set only when one was made up."""

    created: bool
    generated_password: str | None = None


class UserAdmin:
    def __init__(self, users: UserStore, clock: Clock) -> None:
        self._users = users
        self._clock = clock

    async def add(self, username: str, role: Role, password: str) -> User:
        user = User(username=check_username(username), role=role, created=self._clock.now())
        _check_password(password)
        if not await self._users.add(user, await hash_password(password)):
            raise ConflictError(
                f"User {username} exists already.",
                error_code="USER_EXISTS",
                remediation="Choose another name, or change this user's password with users set-password.",
            )
        audit("user.add", user.username, "success", role=role.value)
        return user

    async def list(self) -> list[User]:
        return await self._users.list()

    async def remove(self, username: str) -> None:
        users = await self._users.list()
        admins = [u for u in users if u.role is Role.ADMIN]
        if [u.username for u in admins] == [username]:
            raise ConflictError(
                f"{username} is the last ADMIN user and cannot be removed.",
                error_code="LAST_ADMIN",
                remediation="Add another ADMIN user first.",
            )
        if not await self._users.remove(username):
            raise _no_such_user(username)
        audit("user.remove", username, "success")

    async def set_password(self, username: str, password: str) -> None:
        _check_password(password)
        if not await self._users.set_password_hash(username, await hash_password(password)):
            raise _no_such_user(username)
        audit("user.set_password", username, "success")

    async def bootstrap_admin(self, password: str | None) -> Bootstrap:
        """Create ``admin@local`` when the store has no user at all (the first start)."""
        if await self._users.count():
            return Bootstrap(created=False)
        generated = None
        if not password:
            generated = password = secrets.token_urlsafe(18)
        await self.add(ADMIN_USERNAME, Role.ADMIN, password)
        return Bootstrap(created=True, generated_password=generated)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"A password needs at least {MIN_PASSWORD_LENGTH} characters.",
            error_code="PASSWORD_TOO_SHORT",
            remediation=f"Choose a password of {MIN_PASSWORD_LENGTH} characters or more.",
        )


def _no_such_user(username: str) -> NotFoundError:
    return NotFoundError(
        f"User {username} does not exist.",
        error_code="USER_NOT_FOUND",
        remediation="List the users with 'sddc-backup users list'.",
    )
