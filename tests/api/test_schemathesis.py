"""Fuzzing the live server from its own OpenAPI document (``/v1/openapi.json``), with schemathesis.

A dedicated server (SQLite state store) is started for this module, not the shared ``server``: fuzzing
rewrites the backup configuration and spams failed logins, which trip the login throttling.

Every operation is fuzzed with positive and negative data (schemathesis' examples, coverage and fuzzing
phases) as admin: a Bearer token from POST /v1/tokens, applied by schemathesis to the operations that
declare the HTTPBearer scheme, except in the negative cases where it deliberately sends a missing or
broken credential. The /v1/tokens operations declare no scheme and are fuzzed without one. Each response
must not be a 5xx, each 4xx must be a VCF Error body (the 429 of login throttling included), and each
response must match its documented schema.

TLS is verified against the server's own certificate through schemathesis' ``tls-verify`` option: the
path goes out as ``verify=`` on every request, which requests honours over REQUESTS_CA_BUNDLE (only
``verify=True`` is replaced by the environment's bundle); each example asserts it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.support.fuzz import closed_loopback_port, keep_on_loopback, vcf_error_body, vcf_error_problems
from tests.support.http import Api
from tests.support.server import ServerProcess

SEED = 20240611  # fixed, so that a run, and a failure, reproduces
MAX_EXAMPLES = 40  # per operation in the fuzzing phase; the examples and coverage phases add their own
CLOSED_PORT = closed_loopback_port()
CHECKS = [not_a_server_error, vcf_error_body, response_schema_conformance]

schema = schemathesis.pytest.from_fixture("fuzz_schema")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("fuzz") / "data")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def fuzz_session(fuzz_server: ServerProcess) -> Iterator[requests.Session]:
    """One keep-alive connection for all cases (not a TLS handshake each); closed before the server stops."""
    with requests.Session() as session:
        session.trust_env = False  # no proxies or CA bundles from the environment
        session.verify = str(fuzz_server.cert)
        yield session


@pytest.fixture(scope="module")
def admin_bearer(fuzz_server: ServerProcess) -> str:
    api = Api(fuzz_server)
    try:
        return api.token()
    finally:
        api.session.close()


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_server: ServerProcess, admin_bearer: str) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": fuzz_server.base_url,
            "tls-verify": str(fuzz_server.cert),
            "request-timeout": 30,
            "auth": {"openapi": {"HTTPBearer": {"bearer": admin_bearer}}},
        }
    )
    return schemathesis.openapi.from_url(
        f"{fuzz_server.base_url}/v1/openapi.json", config=config, verify=str(fuzz_server.cert), timeout=30
    )


@pytest.fixture
def _lazy_schema_node_id(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's ``from_fixture`` reads ``request.node._nodeid``, which pytest 9.2 no longer has.

    It only uses it to put the operation in the reported node id, so the plain node id will do.
    """
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,  # no replay of examples saved by earlier runs: the seed alone decides
    suppress_health_check=[HealthCheck.too_slow],  # generating large bodies on 2 busy cores
)
@pytest.mark.usefixtures("_lazy_schema_node_id")
def test_no_5xx_and_every_4xx_is_a_vcf_error(
    case: schemathesis.Case, fuzz_server: ServerProcess, fuzz_session: requests.Session, admin_bearer: str
) -> None:
    keep_on_loopback(case, CLOSED_PORT)
    response = case.call(session=fuzz_session)
    assert response.verify == str(fuzz_server.cert)  # the pinned certificate, not the environment's bundle
    if case.headers and case.headers.get("Authorization") == f"Bearer {admin_bearer}":
        # Admin's own token: the request reaches the handler instead of stopping at the door.
        assert response.status_code not in (401, 403), (response.status_code, response.text)
    case.validate_response(response, checks=CHECKS, transport_kwargs={"session": fuzz_session})


def test_the_server_certificate_is_not_trusted_without_pinning(fuzz_server: ServerProcess) -> None:
    """With the environment's CA bundle the handshake fails, so the fuzzing did verify the pinned cert."""
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{fuzz_server.base_url}/v1/openapi.json", timeout=30)


@pytest.mark.parametrize(
    ("content_type", "content", "wrong"),
    [
        ("application/json", b'{"errorCode":"E","message":"m","remediationMessage":"r"}', None),
        (
            "application/json; charset=utf-8",
            b'{"errorCode":"E","message":"m","remediationMessage":"r"}',
            None,
        ),
        ("text/plain", b"Internal Server Error", "content type"),
        ("application/json", b'{"detail":"Not Found"}', "errorCode"),
        ("application/json", b'{"errorCode":"E","message":"","remediationMessage":"r"}', "message"),
        ("application/json", b'{"errorCode":"E","message":"m","remediationMessage":7}', "remediationMessage"),
        (
            "application/json",
            b'{"errorCode":"E","message":"m","remediationMessage":"r","arguments":[1]}',
            "arg",
        ),
        (
            "application/json",
            b'{"errorCode":"E","message":"m","remediationMessage":"r","arguments":"a"}',
            "arg",
        ),
        (
            "application/json",
            b'{"errorCode":"E","message":"m","remediationMessage":"r","context":{"a":1}}',
            "con",
        ),
        ("application/json", b'{"errorCode":"E","message":"m","remediationMessage":"r","context":[]}', "con"),
        ("application/json", b'[{"errorCode":"E"}]', "not an object"),
        ("application/json", b"{", "not JSON"),
    ],
)
def test_the_vcf_error_check_rejects_what_is_not_a_vcf_error(
    content_type: str, content: bytes, wrong: str | None
) -> None:
    problems = vcf_error_problems(content_type, content)
    if wrong is None:
        assert problems == []
    else:
        assert problems and any(wrong in problem for problem in problems), problems
