"""``sddc-backup login``: check the connection and the credentials, and show who you are.

The API has no route that names the caller's role, so it is read from two permission checks that
cannot change anything (see ``probe_role``).
"""

from __future__ import annotations

import uuid

import typer

from sddc_backup.cli.client.errors import ClientError
from sddc_backup.cli.client.options import (
    DEFAULT_USER,
    CaCertOption,
    Connection,
    FingerprintOption,
    JsonOption,
    ServerOption,
    UserOption,
    console,
    emit_json,
    session,
)
from sddc_backup.cli.client.session import ServerSession


def _denied(s: ServerSession, method: str, path: str, body: object = None) -> bool:
    """Whether the request is refused with 403; any other answer means the permission is there."""
    try:
        s.call(method, path, json=body)
    except ClientError as exc:
        return exc.code == "INSUFFICIENT_PRIVILEGES"
    return False


def probe_role(s: ServerSession) -> str:
    """VIEWER, OPERATOR or ADMIN. A retry of a task id that cannot exist needs OPERATE (checked before
    the 404); a restore with an empty body needs ADMINISTER (checked before the 400 for the body)."""
    if _denied(s, "PATCH", f"/v1/tasks/{uuid.uuid4()}"):
        return "VIEWER"
    if _denied(s, "POST", "/v1/restores/tasks", {}):
        return "OPERATOR"
    return "ADMIN"


def register(cli: typer.Typer) -> None:
    @cli.command("login")
    def login(
        server: ServerOption = None,
        user: UserOption = DEFAULT_USER,
        ca_cert: CaCertOption = None,
        fingerprint: FingerprintOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Log in once to check the server, its certificate and the credentials; print the user and role.
        Nothing is stored: every command logs in again."""
        with session(Connection(server, user, ca_cert, fingerprint)) as s:
            s.login()
            role = probe_role(s)
            result = {"server": s.target.url, "user": user, "role": role, "certificate": s.peer_fingerprint}
        if as_json:
            emit_json(result)
        else:
            console().print(
                f"logged in to {result['server']} as {user} ({role})\n"
                f"server certificate SHA-256: {result['certificate']}",
                highlight=False,
            )
