"""The components of the service and whether they are up, as ``GET /v1/vcf-services`` shows them."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sddc_backup import __version__

_NAMESPACE = uuid.UUID("6f1d3c1e-6b0e-4a43-9a57-0c3f3d1f5b10")


@dataclass(frozen=True)
class ComponentStatus:
    id: str
    name: str
    version: str
    status: str  # UP or DOWN


class Readiness:
    """``OPERATIONS_MANAGER`` is UP whenever this code answers: the API accepts requests."""

    def __init__(self, state_store_ping: Callable[[], Awaitable[bool]]) -> None:
        self._ping = state_store_ping

    async def components(self) -> list[ComponentStatus]:
        store_up = await self._ping()
        return [
            _component("OPERATIONS_MANAGER", up=True),
            _component("TASK_ENGINE", up=True),
            _component("STATE_STORE", up=store_up),
        ]


def _component(name: str, *, up: bool) -> ComponentStatus:
    return ComponentStatus(
        id=str(uuid.uuid5(_NAMESPACE, name)), name=name, version=__version__, status="UP" if up else "DOWN"
    )
