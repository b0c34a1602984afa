"""The conformance suite on the SFTP backend again, on the event loop the server runs (uvloop): its
transports are not ``asyncio.Transport`` subclasses, and the SFTP connection wraps one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvloop

from sddc_backup.storage.sftp import sftp_storage
from sddc_backup.storage.store import ObjectStore
from tests.storage.conformance import *  # noqa: F403 - the shared suite runs here
from tests.storage.conftest import StartSshd, settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return "asyncio", {"loop_factory": uvloop.new_event_loop}


@pytest.fixture
async def storage(sshd: StartSshd) -> AsyncIterator[ObjectStore]:
    store = await sftp_storage(settings(sshd()))
    yield store
    await store.close()


async def test_the_loop_is_uvloop() -> None:
    import asyncio

    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
