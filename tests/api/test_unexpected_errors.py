"""An unexpected exception in a route is a 500 VCF Error whose referenceToken is in the log."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import cast

import pytest
from starlette.testclient import TestClient

from sddc_backup.api.application import build_api
from sddc_backup.api.deps import ApiServices
from sddc_backup.app.runtime import Runtime
from sddc_backup.app.settings import Settings


class BrokenReadiness:
    async def components(self) -> list[object]:
        raise RuntimeError("the probe exploded with internal detail")


def test_unhandled_exception_is_500_with_a_logged_reference_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data", fqdn="test.local")
    app = build_api(cast(ApiServices, None))
    with TestClient(app, raise_server_exceptions=False) as client:
        # The runtime is opened on the client's own event loop, where the app runs.
        runtime = client.portal.call(Runtime.open, settings)
        client.portal.call(runtime.users.bootstrap_admin, "Adm1n!password")
        app.state.services = dataclasses.replace(runtime.api, readiness=BrokenReadiness())  # type: ignore[arg-type]
        with caplog.at_level(logging.ERROR):
            r = client.get("/v1/vcf-services", auth=("admin@local", "Adm1n!password"))
        client.portal.call(runtime.close)
    assert r.status_code == 500
    body = r.json()
    assert body["errorCode"] == "INTERNAL_SERVER_ERROR"
    assert body["remediationMessage"]
    assert "internal detail" not in r.text
    assert body["referenceToken"] and body["referenceToken"] in caplog.text
    assert "the probe exploded" in caplog.text
