"""Helpers shared by the components: owner names and the error they raise."""

from __future__ import annotations

import grp
import pwd
from functools import lru_cache

from sddc_backup.archive.errors import ComponentFailedError


@lru_cache(maxsize=256)
def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


@lru_cache(maxsize=256)
def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


def component_failed(component: str, subject: str, detail: str) -> ComponentFailedError:
    """``ComponentFailedError`` naming the component and the file or database (``subject``)."""
    return ComponentFailedError(
        f"The backup component '{component}' failed on {subject}: {detail}",
        arguments=(component, subject),
        context={"component": component, "subject": subject},
    )
