"""Builds the FastAPI application from the services that ``app`` wires together."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
from sddc_backup.api.routes import metrics as metrics_route
from sddc_backup.services.metrics import ServiceMetrics

OPENAPI_URL = "/v1/openapi.json"


class RequestTimer:
    """ASGI middleware: times each HTTP request and reports it with the route's template (not the
    raw path, so that ids in paths do not make a series each) and the status that was sent."""

    def __init__(self, app: ASGIApp, observe: Callable[[str, str | None, int, float], None]) -> None:
        self._app, self._observe = app, observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500  # 500 unless a response starts: the error handler's

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None)  # set by the router on this same scope
            self._observe(scope["method"], route, status, time.perf_counter() - start)


def build_api(
    services: ApiServices,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    metrics: ServiceMetrics | None = None,
) -> FastAPI:
    """The application. With ``metrics``, it serves ``GET /metrics`` and times every request."""
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
    if metrics is not None:
        app.state.metrics = metrics
        app.include_router(metrics_route.router)
        app.add_middleware(RequestTimer, observe=metrics.observe_request)
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
