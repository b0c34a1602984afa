"""Helpers shared by the components: owner names and the error they raise."""

from __future__ import annotations

import grp
import pwd
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

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


def absolute_paths(component: str, paths: Sequence[Path]) -> tuple[Path, ...]:
    """``paths`` as ``Path`` values; ``ComponentFailedError`` for the first that is not absolute."""
    found = tuple(Path(p) for p in paths)
    for path in found:
        if not path.is_absolute():
            raise component_failed(component, str(path), "the path is not absolute")
    return found
