"""Roles and what they may do, and the rule for user names."""

from __future__ import annotations

import pytest

from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.domain.users import ADMIN_USERNAME, Permission, Role, check_username, role_allows

GRANTS = [
    (Role.ADMIN, Permission.READ, True),
    (Role.ADMIN, Permission.OPERATE, True),
    (Role.ADMIN, Permission.ADMINISTER, True),
    (Role.OPERATOR, Permission.READ, True),
    (Role.OPERATOR, Permission.OPERATE, True),
    (Role.OPERATOR, Permission.ADMINISTER, False),
    (Role.VIEWER, Permission.READ, True),
    (Role.VIEWER, Permission.OPERATE, False),
    (Role.VIEWER, Permission.ADMINISTER, False),
]


@pytest.mark.parametrize(
    ("role", "permission", "allowed"), [pytest.param(*row, id=f"{row[0]}-{row[1]}") for row in GRANTS]
)
def test_each_role_has_exactly_its_permissions(role: Role, permission: Permission, allowed: bool) -> None:
    assert role_allows(role, permission) is allowed


def test_the_grant_table_covers_every_role_and_permission() -> None:
    assert {(role, permission) for role, permission, _ in GRANTS} == {
        (r, p) for r in Role for p in Permission
    }


@pytest.mark.parametrize(
    "name",
    [
        ADMIN_USERNAME,
        "a",
        "7",
        "operator@local",
        "first.last",
        "svc_backup-01",
        "A" * 128,
    ],
)
def test_acceptable_user_names_are_returned_unchanged(name: str) -> None:
    assert check_username(name) == name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("A" * 129, id="129-characters"),
        pytest.param(".hidden", id="starts-with-dot"),
        pytest.param("-dash", id="starts-with-dash"),
        pytest.param("@local", id="starts-with-at"),
        pytest.param("_under", id="starts-with-underscore"),
        pytest.param("with space", id="space"),
        pytest.param(" admin", id="leading-space"),
        pytest.param("admin/root", id="slash"),
        pytest.param("admin:x", id="colon"),
        pytest.param("jos\u00e9", id="non-ascii-letter"),
        pytest.param("ad\nmin", id="newline-inside"),
        pytest.param("admin\x00", id="nul"),
    ],
)
def test_unacceptable_user_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_username(name)
    assert caught.value.error_code == "INVALID_USERNAME"
    assert caught.value.http_status == 400


def test_a_user_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_username("admin\n")
    assert caught.value.error_code == "INVALID_USERNAME"
