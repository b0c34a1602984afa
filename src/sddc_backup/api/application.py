"""Builds the FastAPI application from the services that ``app`` wires together."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sddc_backup import __version__
from sddc_backup.api.deps import ApiServices
from sddc_backup.api.errors import install_error_handlers
from sddc_backup.api.routes import (
    backup_configuration,
    backups,
    locations,
    restores,
    tasks,
    tokens,
    vcf_services,
)

OPENAPI_URL = "/v1/openapi.json"


def build_api(
    services: ApiServices,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    app = FastAPI(
        title="sddc-backup",
        version=__version__,
        summary="The SDDC Manager backup and restore API, with backups you can list, verify and watch.",
        openapi_url=OPENAPI_URL,
        docs_url="/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    for module in (tokens, tasks, backup_configuration, locations, backups, restores, vcf_services):
        app.include_router(module.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, without the 422 responses it adds: this API answers 400 with a VCF Error."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        for path in schema["paths"].values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for unused in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(unused, None)
        app.openapi_schema = schema
    return app.openapi_schema
