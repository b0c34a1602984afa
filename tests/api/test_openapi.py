"""The OpenAPI document: served live, camelCase, and equal to the committed snapshot."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.http import Api

SNAPSHOT = Path(__file__).parents[2] / "docs" / "openapi.json"
ROUTES = {
    ("post", "/v1/tokens"),
    ("patch", "/v1/tokens/access-token/refresh"),
    ("delete", "/v1/tokens/refresh-token"),
    ("get", "/v1/tasks"),
    ("get", "/v1/tasks/{task_id}"),
    ("patch", "/v1/tasks/{task_id}"),
    ("delete", "/v1/tasks/{task_id}"),
    ("get", "/v1/system/backup-configuration"),
    ("put", "/v1/system/backup-configuration"),
    ("patch", "/v1/system/backup-configuration"),
    ("get", "/v1/vcf-services"),
    ("post", "/v1/system/backup-configuration/validations"),
    ("get", "/v1/system/backup-configuration/backup-locations"),
    ("get", "/v1/backups"),
    ("post", "/v1/backups/tasks"),
    ("post", "/v1/backups/verifications"),
    ("post", "/v1/backups/retention"),
    ("post", "/v1/restores/tasks"),
    ("get", "/v1/restores/tasks/{task_id}"),
}


def test_live_document_matches_the_committed_snapshot(api: Api) -> None:
    r = api.request("GET", "/v1/openapi.json")
    assert r.status_code == 200
    live = r.json()
    assert live == json.loads(SNAPSHOT.read_text()), "the API changed: run `make openapi` and review the diff"


def test_document_describes_every_route_with_camelcase_models() -> None:
    doc = json.loads(SNAPSHOT.read_text())
    found = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert found == ROUTES
    for name, model in doc["components"]["schemas"].items():
        for field in model.get("properties", {}):
            assert "_" not in field, f"{name}.{field} is not camelCase"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "422" not in op["responses"], (method, path)
    assert list(doc["components"]["schemas"]["TokenPair"]["properties"]) == ["accessToken", "refreshToken"]
