"""``/v1/tokens``: log in, refresh an access token, and end a session."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sddc_backup.api.deps import Services, client_address
from sddc_backup.api.responses import empty, vcf_json
from sddc_backup.api.schemas.errors import error_responses
from sddc_backup.api.schemas.misc import RefreshToken, TokenCreationSpec, TokenPair
from sddc_backup.domain.errors import InvalidInputError

router = APIRouter(prefix="/v1/tokens", tags=["Tokens"])
LOGIN_ERRORS = error_responses(400, 401, 429, 500)

# The refresh-token id arrives as a bare string: JSON-quoted (the SDK) or raw (PowerVCF).
_TOKEN_ID_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "string", "description": "refresh token id"}}},
    }
}


@router.post("", status_code=201, response_model=TokenPair, responses=LOGIN_ERRORS)
async def create_token(spec: TokenCreationSpec, request: Request, services: Services) -> JSONResponse:
    """Log in with a local user; returns an access token (JWT) and a refresh token id."""
    if not spec.username:
        raise InvalidInputError(
            "The username is empty.",
            error_code="MISSING_CREDENTIALS",
            remediation='Send {"username": "...", "password": "..."}.',
        )
    pair = await services.auth.login(spec.username, spec.password, client_address(request))
    return vcf_json(
        TokenPair(access_token=pair.access_token, refresh_token=RefreshToken(id=pair.refresh_token_id)), 201
    )


@router.patch(
    "/access-token/refresh",
    response_model=str,
    openapi_extra=_TOKEN_ID_BODY,
    responses=error_responses(400, 404, 500),
)
async def refresh_access_token(request: Request, services: Services) -> JSONResponse:
    """A new access token for a refresh token id; the response is a JSON string."""
    return JSONResponse(await services.auth.refresh(await _token_id(request)))


@router.delete(
    "/refresh-token", status_code=204, openapi_extra=_TOKEN_ID_BODY, responses=error_responses(400, 500)
)
async def delete_refresh_token(request: Request, services: Services) -> Response:
    """End a session: the refresh token can no longer be used. Deleting an unknown id is not an error."""
    await services.auth.revoke(await _token_id(request))
    return empty(204)


async def _token_id(request: Request) -> str:
    raw = (await request.body()).decode("utf-8", errors="replace").strip()
    value: object = raw
    if raw[:1] in ('"', "{"):
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if isinstance(value, dict):
            value = value.get("id")
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        raise InvalidInputError(
            "The body must be the refresh token id.",
            error_code="INVALID_REFRESH_TOKEN_ID",
            remediation="Send refreshToken.id from POST /v1/tokens as the body, raw or as a JSON string.",
        )
    return value.strip()
