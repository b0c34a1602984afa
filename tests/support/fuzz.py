"""Schemathesis checks for fuzzing the live server: the VCF ``Error`` body on every 4xx response.

The rules are those of ``tests.support.http.assert_vcf_error``: a JSON object with non-empty string
``errorCode``, ``message`` and ``remediationMessage``; ``arguments``, when present, a list of strings;
``context``, when present, a map of string to string.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


def vcf_error_problems(content_type: str, content: bytes) -> list[str]:
    """What keeps a response body from being a VCF ``Error``; empty when it is one."""
    if not content_type.startswith("application/json"):
        return [f"the content type is {content_type!r}, not application/json"]
    try:
        body: Any = json.loads(content)
    except ValueError as exc:
        return [f"the body is not JSON: {exc}"]
    if not isinstance(body, dict):
        return [f"the body is a JSON {type(body).__name__}, not an object"]
    problems = [
        f"{name} is not a non-empty string: {body.get(name)!r}"
        for name in ("errorCode", "message", "remediationMessage")
        if not (isinstance(body.get(name), str) and body[name])
    ]
    arguments = body.get("arguments", [])
    if not (isinstance(arguments, list) and all(isinstance(a, str) for a in arguments)):
        problems.append(f"arguments is not a list of strings: {arguments!r}")
    context = body.get("context", {})
    if not (
        isinstance(context, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in context.items())
    ):
        problems.append(f"context is not a map of string to string: {context!r}")
    return problems


def _header(response: schemathesis.Response, name: str) -> str:
    for key, values in response.headers.items():
        if key.lower() == name and values:
            return values[0]
    return ""


def vcf_error_body(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A schemathesis check (passed explicitly, not registered globally): a 4xx has a VCF Error body."""
    if not 400 <= response.status_code < 500:
        return True  # not applicable
    problems = vcf_error_problems(_header(response, "content-type"), response.content or b"")
    if problems:
        raise AssertionError(
            f"{response.status_code} is not a VCF Error body: "
            + "; ".join(problems)
            + f"\nBody: {(response.content or b'')[:2000]!r}"
        )
    return None


# Fuzzed configurations must not reach out: every SFTP server becomes a closed port on the loopback
# interface, and every directory lands under a scratch root (the service writes probe files there).
FUZZ_ROOT = "/tmp/sddc-backup-fuzz-root"


def closed_loopback_port() -> int:
    from tests.support.ports import free_port

    return free_port()  # nothing listens there once the probe socket is closed


def keep_on_loopback(case: Any, port: int) -> None:
    """Rewrite a generated request so that it can only touch this machine."""
    body = case.body
    if isinstance(body, dict):
        for location in body.get("backupLocations") or []:
            if isinstance(location, dict):
                if "server" in location:
                    location["server"] = "127.0.0.1"
                if isinstance(location.get("port"), int):
                    location["port"] = port
                path = location.get("directoryPath")
                if isinstance(path, str) and path.startswith("/"):
                    location["directoryPath"] = FUZZ_ROOT + path
    query = case.query
    if isinstance(query, dict):
        for key in ("serverIp", "serverIP"):
            if key in query:
                query[key] = "127.0.0.1"
        if "port" in query:
            query["port"] = str(port)
