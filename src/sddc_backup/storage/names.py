"""Object names: checked in one place, for every backend."""

from __future__ import annotations

import secrets

from sddc_backup.domain.storage import TEMP_PREFIX, TEMP_SUFFIX, is_temporary
from sddc_backup.storage.errors import InvalidObjectNameError

MAX_NAME = 255


def check_name(name: str) -> str:
    """``name`` if it is a plain object name; raises ``InvalidObjectNameError`` otherwise."""
    if (
        not name
        or len(name.encode()) > MAX_NAME
        or "/" in name
        or "\x00" in name
        or name in (".", "..")
        or is_temporary(name)
    ):
        raise InvalidObjectNameError(f"{name!r} is not a valid backup file name.")
    return name


def temporary_name(name: str) -> str:
    """A hidden name to upload ``name`` under before the final rename."""
    return f"{TEMP_PREFIX}{name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
