"""What goes into an archive: entries, each a file, a directory or a symbolic link.

Components produce ``Entry`` values; the writer turns them into tar members under ``<base>/``. A file
entry carries its size (tar needs it before the data) and a function that opens its content; the
writer reads exactly ``size`` bytes and fails if the content is shorter or longer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO, Protocol


class EntryType(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"


@dataclass(frozen=True)
class Entry:
    """One member. ``name`` is relative to the archive's top-level folder, with '/' separators."""

    name: str
    type: EntryType
    mode: int = 0o644
    mtime: float = 0.0
    mtime_ns: int | None = None  # exact, when known: kept to the nanosecond in the pax header
    uid: int = 0
    gid: int = 0
    uname: str = ""
    gname: str = ""
    size: int = 0
    target: str = ""  # the link target of a SYMLINK
    open: Callable[[], BinaryIO] | None = None  # the content of a FILE
    expected_sha256: str | None = None  # when known in advance, checked as the content streams


class ArchiveSource(Protocol):
    """A component of the appliance, as the archive writer sees it."""

    @property
    def name(self) -> str: ...

    def entries(self) -> Iterator[Entry]:
        """The entries, in archive order. Runs in the writer's thread; may block.

        Raises ``ComponentFailedError`` naming the component when its data cannot be read completely.
        """
        ...
