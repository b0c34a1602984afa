"""The audit log: who did what to what, and how it ended, one event per action.

Events go to the logger ``sddc_backup.audit`` at INFO, with the structured fields under the log
record's ``fields`` attribute: ``audit`` (always true), ``actor``, ``action``, ``target``, ``outcome``,
and details such as ``client`` or ``task_id``. The log formatter of ``app.logs`` writes them as fields
of the JSON line. Callers pass names, ids and codes only: never a password, a passphrase or a token.

The actor is the user that the request authenticated as (``bind_actor``, called by the authenticator
in the request's context, and inherited by the tasks the request starts), or ``system`` for what the
service does by itself, such as scheduled backups.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

AUDIT_LOGGER = "sddc_backup.audit"
SYSTEM_ACTOR = "system"

_log = logging.getLogger(AUDIT_LOGGER)
_actor: ContextVar[str] = ContextVar("sddc_backup_actor", default=SYSTEM_ACTOR)

Detail = str | int | bool | None


def bind_actor(actor: str) -> None:
    """Name who acts in this context (a request, and the tasks it starts)."""
    _actor.set(actor)


def current_actor() -> str:
    return _actor.get()


def audit(action: str, target: str, outcome: str, *, actor: str | None = None, **details: Detail) -> None:
    """Record one audited action. ``outcome`` is a word such as ``success``, ``failure`` or
    ``started``; ``details`` that are ``None`` are left out."""
    who = actor or current_actor()
    fields: dict[str, Detail] = {"audit": True, "actor": who, "action": action, "target": target}
    fields["outcome"] = outcome
    fields.update({k: v for k, v in details.items() if v is not None})
    _log.info("%s %s %s: %s", who, action, target, outcome, extra={"fields": fields})
