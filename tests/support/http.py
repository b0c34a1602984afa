"""A raw-HTTP client for the real server: requests, with the server's certificate pinned."""

from __future__ import annotations

import time
from typing import Any

import requests

from tests.support.server import ADMIN, ADMIN_PASSWORD, ServerProcess

TERMINAL = {"SUCCESSFUL", "FAILED", "CANCELLED"}


class Api:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.trust_env = False  # the machine's CA bundle variables would override verify=
        self.session.verify = str(server.cert)
        # No idle keep-alive connections: a graceful stop of the server would wait for them.
        self.session.headers["Connection"] = "close"

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(
            method, self.server.base_url + path, headers=headers, timeout=30, **kwargs
        )

    def token(self, username: str = ADMIN, password: str = ADMIN_PASSWORD) -> str:
        r = self.request("POST", "/v1/tokens", json={"username": username, "password": password})
        assert r.status_code == 201, r.text
        return str(r.json()["accessToken"])

    def wait_task(
        self, task_id: str, token: str, timeout: float = 30.0, prefix: str = "/v1/tasks"
    ) -> dict[str, Any]:
        """Poll ``{prefix}/{task_id}`` until the task ends (any status spelling: "Successful" too)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.request("GET", f"{prefix}/{task_id}", token)
            assert r.status_code == 200, r.text
            task: dict[str, Any] = r.json()
            if task["status"].upper() in TERMINAL:
                return task
            assert time.monotonic() < deadline, f"task {task_id} still {task['status']}"
            time.sleep(0.05)


def assert_vcf_error(response: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """``response`` has ``status`` and a VCF Error body (with ``code`` when given); returns the body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("errorCode"), str) and body["errorCode"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("remediationMessage"), str) and body["remediationMessage"], body
    assert all(isinstance(a, str) for a in body.get("arguments", [])), body
    assert all(isinstance(v, str) for v in body.get("context", {}).values()), body
    if code is not None:
        assert body["errorCode"] == code, body
    return body
