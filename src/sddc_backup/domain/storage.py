"""The storage contract: what every backup location (a local directory, an SFTP server, memory for
tests) offers. Names are flat object names in one directory; every put is atomic.

``Storage`` is the full Protocol a backend implements. Consumers declare the narrow part they need
(``ObjectReader`` for a restore, ``ObjectWriter`` for a backup).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

TEMP_PREFIX = "."
TEMP_SUFFIX = ".part"


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class PutResult:
    """What a put stored: the object, and the SHA-256 of the bytes that were sent."""

    info: ObjectInfo
    sha256: str


class ByteSource(Protocol):
    """Bytes to store. ``open`` starts again from the first byte on every call, so that a retried
    put can replay the data. Read it through ``opened``."""

    def open(self) -> AsyncIterator[bytes]: ...


@asynccontextmanager
async def opened(source: ByteSource) -> AsyncIterator[AsyncIterator[bytes]]:
    """``source.open()``, closed when the block ends, however it ends.

    An async generator left in the middle is otherwise closed only when it is collected, which an
    exception's traceback can put off; a source that holds a process or a thread (the archive of a
    backup) must let it go as soon as its reader stops.
    """
    stream = source.open()
    try:
        yield stream
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


class ObjectReader(Protocol):
    async def stat(self, name: str) -> ObjectInfo:
        """The object's size and time; ``ObjectNotFoundError`` if there is none."""
        ...

    def get(self, name: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """The object's bytes from ``offset``, ``length`` of them (all when ``None``)."""
        ...


class ObjectWriter(Protocol):
    async def put(self, name: str, source: ByteSource, expected_sha256: str | None = None) -> PutResult:
        """Store ``source`` under ``name`` atomically: written under a temporary name, its size
        checked, then renamed. A reader never sees a partial object. When ``expected_sha256`` is
        given, the bytes sent must have that digest or nothing is stored."""
        ...


class Storage(ObjectReader, ObjectWriter, Protocol):
    async def list_objects(self) -> list[ObjectInfo]:
        """Every stored object, sorted by name; temporary names are never listed."""
        ...

    async def delete(self, name: str) -> None: ...

    async def rename(self, old: str, new: str) -> None:
        """Rename, replacing ``new`` if it exists."""
        ...

    async def free_space(self) -> int | None:
        """Bytes available to this user, or ``None`` when the backend cannot tell."""
        ...

    async def remove_stale_temporaries(self, older_than: datetime) -> list[str]:
        """Delete temporary objects left by interrupted puts; returns their names."""
        ...

    async def close(self) -> None: ...


def is_temporary(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)
