"""``GET /metrics``: the service's Prometheus metrics, for any authenticated user (READ).

Not part of the VCF API, so it is left out of the OpenAPI document. Prometheus scrapes it over HTTPS
with ``basic_auth`` (a VIEWER user is enough) and the server's CA; see docs/observability.md.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sddc_backup.api.deps import Reader
from sddc_backup.services.metrics import CONTENT_TYPE, ServiceMetrics

router = APIRouter()


def metrics_of(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


@router.get("/metrics", include_in_schema=False)
async def get_metrics(request: Request, _: Reader) -> Response:
    """The metrics in the Prometheus text format."""
    return Response(await metrics_of(request).exposition(), media_type=CONTENT_TYPE)
