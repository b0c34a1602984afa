"""The one place where failures become VCF ``Error`` bodies.

Every non-2xx response of the service goes through these handlers: our own errors, request validation
(400, never 422), unknown routes and methods (404, 405), and unexpected exceptions (500, with a
``referenceToken`` that is also in the log next to the traceback).
"""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sddc_backup.api.schemas.errors import Error
from sddc_backup.domain.errors import (
    AuthenticationError,
    InternalError,
    InvalidInputError,
    LoginThrottledError,
    MethodNotAllowedError,
    NotFoundError,
    SddcBackupError,
)

log = logging.getLogger(__name__)

_WWW_AUTHENTICATE = 'Bearer realm="sddc-backup", Basic realm="sddc-backup"'


def error_response(error: SddcBackupError, reference_token: str | None = None) -> JSONResponse:
    headers = {}
    if isinstance(error, AuthenticationError):
        headers["WWW-Authenticate"] = _WWW_AUTHENTICATE
    if isinstance(error, LoginThrottledError):
        headers["Retry-After"] = str(error.retry_after_seconds)
    body = Error.of(error, reference_token).model_dump(by_alias=True, exclude_none=True)
    return JSONResponse(body, status_code=error.http_status, headers=headers)


def _field_path(location: tuple[object, ...]) -> str:
    parts = [p for p in location if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "request"


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    nested = tuple(
        InvalidInputError(
            f"{_field_path(tuple(e.get('loc', ())))}: {e.get('msg', 'is not valid')}",
            error_code="INVALID_INPUT",
            context={"field": _field_path(tuple(e.get("loc", ())))},
        )
        for e in exc.errors()
    )
    summary = "; ".join(n.message for n in nested) or "the request is not valid"
    return error_response(InvalidInputError(f"The request is not valid: {summary}", nested=nested))


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error: SddcBackupError
    if exc.status_code == 404:
        error = NotFoundError(
            f"There is no resource at {request.url.path}.",
            error_code="RESOURCE_NOT_FOUND",
            remediation="Check the path against the API reference at /v1/openapi.json.",
        )
    elif exc.status_code == 405:
        error = MethodNotAllowedError(f"{request.method} is not allowed on {request.url.path}.")
    elif exc.status_code == 401:
        error = AuthenticationError(str(exc.detail))
    else:
        error = SddcBackupError(str(exc.detail), error_code=f"HTTP_{exc.status_code}")
        error.http_status = exc.status_code
    response = error_response(error)
    if exc.status_code == 405 and exc.headers:
        response.headers.update(exc.headers)
    return response


async def _on_ours(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SddcBackupError)
    if exc.http_status >= 500:
        token = secrets.token_hex(4).upper()
        log.error("request failed: %s [referenceToken=%s]", exc.message, token)
        return error_response(exc, token)
    return error_response(exc)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    token = secrets.token_hex(4).upper()
    log.exception("unexpected error on %s %s [referenceToken=%s]", request.method, request.url.path, token)
    return error_response(InternalError("An unexpected error occurred."), token)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(SddcBackupError, _on_ours)
    app.add_exception_handler(Exception, _on_unexpected)
