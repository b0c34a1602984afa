"""``sddc-backup login``: check the connection and the credentials, and show who you are.

The role is read from the access token's ``role`` claim (for display only: the server checks the
role from its user store on every request).
"""

from __future__ import annotations

import typer

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
            role = s.token_claims().get("role", "unknown")
            result = {"server": s.target.url, "user": user, "role": role, "certificate": s.peer_fingerprint}
        if as_json:
            emit_json(result)
        else:
            console().print(
                f"logged in to {result['server']} as {user} ({role})\n"
                f"server certificate SHA-256: {result['certificate']}",
                highlight=False,
            )
