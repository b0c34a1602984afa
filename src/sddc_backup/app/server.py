"""``sddc-backup serve``: the HTTPS server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from sddc_backup.api.application import build_api
from sddc_backup.app.runtime import Runtime, prepare_data_dir
from sddc_backup.app.settings import Settings
from sddc_backup.app.tls import TlsFiles, ensure_certificate
from sddc_backup.domain.errors import InvalidInputError
from sddc_backup.domain.users import ADMIN_USERNAME

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
    """Run the server until it is interrupted."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    prepare_data_dir(settings.data_dir)
    tls = tls_files(settings)
    asyncio.run(_serve(settings, tls))


async def _serve(settings: Settings, tls: TlsFiles) -> None:
    runtime = await Runtime.open(settings)
    admin_password = settings.admin_password.get_secret_value() if settings.admin_password else None
    boot = await runtime.users.bootstrap_admin(admin_password)
    if boot.generated_password:
        # Shown once, on the console only: the store keeps only its hash.
        print(f"{ADMIN_USERNAME} password (shown once): {boot.generated_password}", flush=True)
    elif boot.created:
        print(f"{ADMIN_USERNAME} created with the configured admin password", flush=True)
    if tls.generated:
        print(f"generated a self-signed TLS certificate in {tls.cert.parent}", flush=True)
    restore, interrupted = await runtime.recover()
    if restore is not None:
        print(f"restore {restore.restore_id} was interrupted by the last stop: {restore.outcome}", flush=True)
    for task in interrupted:
        print(f"task {task.id} ({task.type}) was interrupted by the last stop: now FAILED", flush=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        print(f"TLS certificate {tls.cert} SHA-256 fingerprint: {tls.fingerprint}", flush=True)
        print(f"sddc-backup listening on https://{settings.host}:{settings.port}", flush=True)
        runtime.start_scheduler()
        try:
            yield
        finally:
            await runtime.close()

    config = uvicorn.Config(
        build_api(runtime.api, lifespan=lifespan),
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        log_level=settings.log_level.lower(),
        server_header=False,
        # Idle keep-alive clients must not hold a stop (or a restart by systemd) for long.
        timeout_graceful_shutdown=5,
        # The service is not behind a proxy by default: X-Forwarded-For must not be able to change
        # the client address that login throttling counts by.
        proxy_headers=False,
    )
    await uvicorn.Server(config).serve()
