"""The OpenAPI document, produced without a database or a network."""

from __future__ import annotations

from typing import Any, cast

from sddc_backup.api.application import build_api
from sddc_backup.api.deps import ApiServices


def openapi_document() -> dict[str, Any]:
    # Routes do not touch their services while the schema is generated.
    return build_api(cast(ApiServices, None)).openapi()
