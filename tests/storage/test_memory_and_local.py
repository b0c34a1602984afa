"""The conformance suite on the memory and local backends, plus local-only failures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sddc_backup.storage.errors import LocationFullError, LocationNotFoundError, LocationNotWritableError
from sddc_backup.storage.local import local_storage
from sddc_backup.storage.memory import memory_storage
from sddc_backup.storage.store import ObjectStore
from tests.storage.conformance import *  # noqa: F403 - the shared suite runs here
from tests.storage.conformance import Bytes
from tests.support.mounts import tmpfs

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["memory", "local"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    store = memory_storage() if request.param == "memory" else local_storage(tmp_path)
    yield store
    await store.close()


async def test_local_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(LocationNotFoundError):
        await local_storage(tmp_path / "missing").put("a", Bytes(b"x"))


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "ro", read_only=True) as path:
        yield path


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "full", "128k") as path:
        yield path


async def test_local_read_only_directory(read_only_dir: Path) -> None:
    with pytest.raises(LocationNotWritableError):
        await local_storage(read_only_dir).put("a", Bytes(b"x"))


async def test_local_full_disk_leaves_nothing(full_dir: Path) -> None:
    store = local_storage(full_dir)
    with pytest.raises(LocationFullError):
        await store.put("big", Bytes(b"x" * (1 << 20)))
    assert [o.name for o in await store.raw.names()] == []  # no temporary left on the full disk
