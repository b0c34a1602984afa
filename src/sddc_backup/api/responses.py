"""Serialising wire models: camelCase, compact, and without null fields."""

from __future__ import annotations

from fastapi.responses import JSONResponse, Response

from sddc_backup.api.schemas.base import VcfModel


def vcf_json(model: VcfModel, status_code: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json", by_alias=True, exclude_none=True), status_code)


def empty(status_code: int = 200) -> Response:
    return Response(status_code=status_code)
