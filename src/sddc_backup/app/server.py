"""``sddc-backup serve``: the HTTPS server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from sddc_backup.api.application import build_api
from sddc_backup.app.logs import configure_logging
from sddc_backup.app.runtime import Runtime, freeze_startup_objects, limit_malloc_arenas, prepare_data_dir
from sddc_backup.app.settings import Settings
from sddc_backup.app.tls import TlsFiles, ensure_certificate
from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.domain.users import ADMIN_USERNAME
from sddc_backup.services import event_loop

log = logging.getLogger(__name__)


def tls_files(settings: Settings) -> TlsFiles:
    if settings.tls_cert or settings.tls_key:
        if not (settings.tls_cert and settings.tls_key):
            raise InvalidInputError(
                "SDDC_BACKUP_TLS_CERT and SDDC_BACKUP_TLS_KEY go together.",
                error_code="INVALID_SETTING",
                remediation="Set both (PEM files), or neither to use a generated certificate.",
            )
        return TlsFiles(settings.tls_cert, settings.tls_key, generated=False)
    names = [settings.fqdn, "localhost", "127.0.0.1", "::1"]
    if settings.host not in ("0.0.0.0", "::"):  # noqa: S104 - a comparison, not a bind
        names.insert(0, settings.host)
    return ensure_certificate(settings.data_dir / "tls", names)


def serve(settings: Settings) -> None:
    """Run the server until it is interrupted. Everything it reports goes through the log, one event
    per line in ``log_format``, but for a generated admin password: that is printed once on standard
    output, never logged."""
    limit_malloc_arenas()  # first: before any thread
    configure_logging(settings.log_format, settings.log_level)
    prepare_data_dir(settings.data_dir)
    tls = tls_files(settings)
    event_loop.run(_serve(settings, tls))


async def _serve(settings: Settings, tls: TlsFiles) -> None:
    runtime = await Runtime.open(settings)
    admin_password = settings.admin_password.get_secret_value() if settings.admin_password else None
    boot = await runtime.users.bootstrap_admin(admin_password)
    if boot.generated_password:
        # Shown once, on the console only (not a log event): the store keeps only its hash.
        print(f"{ADMIN_USERNAME} password (shown once): {boot.generated_password}", flush=True)
    elif boot.created:
        log.info("%s created with the configured admin password", ADMIN_USERNAME)
    if tls.generated:
        log.info("generated a self-signed TLS certificate in %s", tls.cert.parent)
    restore, interrupted = await runtime.recover()
    if restore is not None:
        log.warning("restore %s was interrupted by the last stop: %s", restore.restore_id, restore.outcome)
    for task in interrupted:
        log.warning("task %s (%s) was interrupted by the last stop: now FAILED", task.id, task.type)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("TLS certificate %s SHA-256 fingerprint: %s", tls.cert, tls.fingerprint)
        log.info("sddc-backup listening on https://%s:%s", settings.host, settings.port)
        log.info("event loop: %s", type(asyncio.get_running_loop()).__module__)
        runtime.start_scheduler()
        freeze_startup_objects()
        try:
            yield
        finally:
            await runtime.close()

    config = uvicorn.Config(
        build_api(runtime.api, lifespan=lifespan, metrics=runtime.metrics),
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        log_level=settings.log_level.lower(),
        log_config=None,  # configure_logging has sent uvicorn's loggers, the access log too, to ours
        server_header=False,
        http="httptools",  # not h11: about a third more requests under steady polling (ADR 0021)
        # Idle keep-alive clients must not hold a stop (or a restart by systemd) for long.
        timeout_graceful_shutdown=5,
        # The service is not behind a proxy by default: X-Forwarded-For must not be able to change
        # the client address that login throttling counts by.
        proxy_headers=False,
    )
    await uvicorn.Server(config).serve()
