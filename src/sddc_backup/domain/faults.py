"""Fault injection points, shipped with the service so that failure tests run the real code.

A ``FaultPlan`` maps a point name to an action. The task engine checks the point
``"<TASK_TYPE>:<stage name>"`` whenever a stage starts. Plans come only from the ``SDDC_BACKUP_FAULTS``
setting, which is empty in production.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum

from sddc_backup.domain.errors import InvalidInputError


class FaultAction(StrEnum):
    HANG = "hang"  # wait until the task is cancelled or the process dies
    FAIL = "fail"  # raise an injected error


@dataclass(frozen=True)
class FaultPlan:
    actions: dict[str, FaultAction] = field(default_factory=dict)

    def action_at(self, point: str) -> FaultAction | None:
        return self.actions.get(point)

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        """Parse ``{"POINT": "hang" | "fail", ...}``; an empty string is the empty plan."""
        if not text.strip():
            return cls()
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise TypeError("not an object")
            return cls({str(k): FaultAction(v) for k, v in raw.items()})
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"SDDC_BACKUP_FAULTS is not a fault plan: {exc}",
                error_code="INVALID_SETTING",
                remediation='Use a JSON object such as {"CONFIGURE_BACKUP:Check backup location": "hang"}.',
            ) from exc
