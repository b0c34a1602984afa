"""Random keys kept in files of the data directory (mode 0600), created once and never rewritten."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from pathlib import Path

from sddc_backup.domain.errors import InternalError


def read_or_create_key(path: Path, size: int = 32) -> bytes:
    """The key in ``path`` (base64 text), created with ``size`` random bytes if the file is missing.

    Creation is exclusive, so two processes starting at once (the server and a ``users`` command)
    both end up with the one key that was written first.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written in full under a private name, then linked into place: a reader never sees a
        # partial key, and link() fails if another process got there first (its key wins).
        draft = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(base64.b64encode(secrets.token_bytes(size)))
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink(missing_ok=True)
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except binascii.Error as exc:
        raise _unreadable(path) from exc
    if len(key) != size:
        raise _unreadable(path)
    return key


def _unreadable(path: Path) -> InternalError:
    return InternalError(
        f"The key file {path} is damaged.",
        error_code="KEY_FILE_DAMAGED",
        remediation=f"Restore {path.name} from a copy of the data directory. Without it, stored secrets "
        "cannot be read and must be set again.",
    )
