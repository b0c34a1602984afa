"""Pre-rendered files of the service itself (``appliancemanager_*.json``), as archive members.

The content is rendered before the archive is written (asynchronously, from the state store); this
component only hands the bytes to the writer.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import PurePosixPath

from sddc_backup.archive.entries import Entry, EntryType
from sddc_backup.services.components._common import group_name, user_name

BACKUP_CONFIGURATION = "appliancemanager_backup_configuration.json"
USERS = "appliancemanager_users.json"
SSH_KNOWN_HOSTS = "appliancemanager_ssh_knownHosts.json"


def render_json(obj: object) -> bytes:
    """Canonical JSON: sorted keys, 2-space indent, a trailing newline, UTF-8 (not ASCII-escaped)."""
    return (json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


class StaticFilesComponent:
    """Files given as bytes, yielded in the mapping's order with mode 0600 and the process's owner."""

    def __init__(self, name: str, files: Mapping[str, bytes], mtime: float) -> None:
        for member in files:
            parts = PurePosixPath(member).parts
            if not member or member.startswith("/") or ".." in parts or "\\" in member:
                raise ValueError(f"{member!r} is not a relative member name")
        self._name = name
        self._files = {member: bytes(content) for member, content in files.items()}
        self._mtime = mtime

    @property
    def name(self) -> str:
        return self._name

    def entries(self) -> Iterator[Entry]:
        uid, gid = os.getuid(), os.getgid()
        for member, content in self._files.items():
            yield Entry(
                name=member,
                type=EntryType.FILE,
                mode=0o600,
                mtime=self._mtime,
                uid=uid,
                gid=gid,
                uname=user_name(uid),
                gname=group_name(gid),
                size=len(content),
                open=partial(io.BytesIO, content),
                expected_sha256=hashlib.sha256(content).hexdigest(),
            )
