"""Builds the FastAPI application from the services that ``app`` wires together."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from sddc_backup import __version__
from sddc_backup.api.deps import ApiServices
from sddc_backup.api.errors import install_error_handlers
from sddc_backup.api.routes import backup_configuration, tasks, tokens, vcf_services

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
    for module in (tokens, tasks, backup_configuration, vcf_services):
        app.include_router(module.router)
    return app
