"""Local users, their roles, and what each role may do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sddc_backup.domain.errors import InvalidInputError

ADMIN_USERNAME = "admin@local"
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")


class Role(StrEnum):
    ADMIN = "ADMIN"  # everything, including restores and the backup configuration
    OPERATOR = "OPERATOR"  # backups, validations, task retry and cancel; reads everything
    VIEWER = "VIEWER"  # reads only


class Permission(StrEnum):
    READ = "READ"
    OPERATE = "OPERATE"
    ADMINISTER = "ADMINISTER"


_GRANTS = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE}),
    Role.VIEWER: frozenset({Permission.READ}),
}


def role_allows(role: Role, permission: Permission) -> bool:
    return permission in _GRANTS[role]


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    created: datetime


def check_username(name: str) -> str:
    """``name`` if it is an acceptable user name; raises ``InvalidInputError`` otherwise."""
    if not _USERNAME.fullmatch(name):
        raise InvalidInputError(
            f"'{name}' is not a valid user name",
            error_code="INVALID_USERNAME",
            remediation="Use 1-128 letters, digits, '.', '_', '@' or '-', starting with a letter or digit.",
        )
    return name
