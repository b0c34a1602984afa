"""Logging in, tokens, Basic auth, roles and throttling, over raw HTTPS against the real server."""

from __future__ import annotations

import base64
import subprocess
import time

import jwt

from tests.conftest import USERS
from tests.support.http import Api, assert_vcf_error
from tests.support.server import ADMIN, ADMIN_PASSWORD


def test_token_pair_is_compact_json_with_access_token_first(api: Api) -> None:
    r = api.request("POST", "/v1/tokens", json={"username": ADMIN, "password": ADMIN_PASSWORD})
    assert r.status_code == 201
    assert r.content.startswith(b'{"accessToken":"')
    assert b"\n" not in r.content and b", " not in r.content
    body = r.json()
    assert list(body) == ["accessToken", "refreshToken"]
    assert body["refreshToken"]["id"]
    assert jwt.decode(body["accessToken"], options={"verify_signature": False})["sub"] == ADMIN


def test_awk_extracts_the_access_token_from_the_exact_response_bytes(api: Api) -> None:
    r = api.request("POST", "/v1/tokens", json={"username": ADMIN, "password": ADMIN_PASSWORD})
    awk = subprocess.run(["awk", "-F", '"', "{print $4}"], input=r.content, capture_output=True, check=True)
    token = awk.stdout.decode().strip()
    assert token == r.json()["accessToken"]
    assert api.request("GET", "/v1/tasks", token).status_code == 200


def test_wrong_password_is_401_in_vcf_shape(api: Api) -> None:
    r = api.request("POST", "/v1/tokens", json={"username": ADMIN, "password": "wrong-password"})
    assert_vcf_error(r, 401, "INVALID_CREDENTIALS")


def test_missing_password_is_400(api: Api) -> None:
    assert_vcf_error(api.request("POST", "/v1/tokens", json={"username": ADMIN}), 400, "INVALID_INPUT")
    r = api.request("POST", "/v1/tokens", json={"username": "", "password": "x"})
    assert_vcf_error(r, 400, "MISSING_CREDENTIALS")


def test_request_without_token_is_401_with_a_challenge(api: Api) -> None:
    r = api.request("GET", "/v1/system/backup-configuration")
    assert_vcf_error(r, 401, "Unauthenticated")
    assert "Bearer" in r.headers["www-authenticate"] and "Basic" in r.headers["www-authenticate"]


def test_bad_and_forged_tokens_are_401(api: Api, admin_token: str) -> None:
    assert_vcf_error(api.request("GET", "/v1/tasks", "not-a-jwt"), 401, "Unauthenticated")
    claims = jwt.decode(admin_token, options={"verify_signature": False})
    forged = jwt.encode(claims, b"k" * 32, algorithm="HS256")
    assert_vcf_error(api.request("GET", "/v1/tasks", forged), 401, "Unauthenticated")
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert_vcf_error(api.request("GET", "/v1/tasks", unsigned), 401, "Unauthenticated")


def test_basic_auth_with_a_local_user_is_accepted(api: Api) -> None:
    r = api.session.get(api.server.base_url + "/v1/tasks", auth=(ADMIN, ADMIN_PASSWORD), timeout=30)
    assert r.status_code == 200
    assert_vcf_error(
        api.session.get(api.server.base_url + "/v1/tasks", auth=(ADMIN, "nope"), timeout=30), 401
    )


def test_malformed_basic_header_is_401(api: Api) -> None:
    r = api.request("GET", "/v1/tasks", headers={"Authorization": "Basic !!!not-base64"})
    assert_vcf_error(r, 401, "Unauthenticated")
    no_colon = base64.b64encode(b"admin@local").decode()
    assert_vcf_error(api.request("GET", "/v1/tasks", headers={"Authorization": f"Basic {no_colon}"}), 401)


def test_refresh_accepts_the_id_json_quoted_and_raw(api: Api) -> None:
    pair = api.request("POST", "/v1/tokens", json={"username": ADMIN, "password": ADMIN_PASSWORD}).json()
    refresh_id = pair["refreshToken"]["id"]
    headers = {"Content-Type": "application/json"}
    for body in (f'"{refresh_id}"', refresh_id):
        r = api.request("PATCH", "/v1/tokens/access-token/refresh", data=body, headers=headers)
        assert r.status_code == 200, r.text
        new_token = r.json()
        assert isinstance(new_token, str) and r.text == f'"{new_token}"'
        assert api.request("GET", "/v1/tasks", new_token).status_code == 200


def test_refresh_with_unknown_or_empty_id_fails_cleanly(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    r = api.request("PATCH", "/v1/tokens/access-token/refresh", data='"no-such-id"', headers=headers)
    assert_vcf_error(r, 404, "REFRESH_TOKEN_NOT_FOUND")
    r = api.request("PATCH", "/v1/tokens/access-token/refresh", data="", headers=headers)
    assert_vcf_error(r, 400, "INVALID_REFRESH_TOKEN_ID")


def test_deleted_refresh_token_can_no_longer_refresh(api: Api) -> None:
    pair = api.request("POST", "/v1/tokens", json={"username": ADMIN, "password": ADMIN_PASSWORD}).json()
    refresh_id = pair["refreshToken"]["id"]
    headers = {"Content-Type": "application/json"}
    r = api.request("DELETE", "/v1/tokens/refresh-token", data=f'"{refresh_id}"', headers=headers)
    assert r.status_code == 204
    r = api.request("PATCH", "/v1/tokens/access-token/refresh", data=refresh_id, headers=headers)
    assert_vcf_error(r, 404, "REFRESH_TOKEN_NOT_FOUND")


def test_viewer_reads_but_may_not_write(api: Api) -> None:
    password = USERS["viewer@local"][1]
    token = api.token("viewer@local", password)
    assert api.request("GET", "/v1/system/backup-configuration", token).status_code == 200
    r = api.request("PATCH", "/v1/system/backup-configuration", token, json={"backupSchedules": []})
    assert_vcf_error(r, 403, "INSUFFICIENT_PRIVILEGES")
    r = api.request("PATCH", "/v1/tasks/some-task", token)
    assert_vcf_error(r, 403, "INSUFFICIENT_PRIVILEGES")


def test_operator_may_not_change_the_backup_configuration(api: Api) -> None:
    token = api.token("operator@local", USERS["operator@local"][1])
    r = api.request("PUT", "/v1/system/backup-configuration", token, json={})
    assert_vcf_error(r, 403, "INSUFFICIENT_PRIVILEGES")


def test_repeated_failed_logins_are_throttled(api: Api) -> None:
    body = {"username": "throttled@local", "password": "wrong"}
    statuses = [api.request("POST", "/v1/tokens", json=body).status_code for _ in range(6)]
    assert statuses[:5] == [401] * 5
    r = api.request("POST", "/v1/tokens", json=body)
    assert_vcf_error(r, 429, "TOO_MANY_FAILED_LOGINS")
    assert int(r.headers["retry-after"]) >= 1
    # Throttling one name does not lock out another.
    assert (
        api.request("POST", "/v1/tokens", json={"username": ADMIN, "password": ADMIN_PASSWORD}).status_code
        == 201
    )


def test_expired_access_token_is_401_telling_how_to_refresh(api: Api) -> None:
    key = base64.b64decode((api.server.data_dir / "token-signing.key").read_bytes())
    expired = jwt.encode({"sub": ADMIN, "exp": int(time.time()) - 600}, key, algorithm="HS256")
    body = assert_vcf_error(api.request("GET", "/v1/tasks", expired), 401, "Unauthenticated")
    assert "expired" in body["message"] and "refresh" in body["remediationMessage"]


def test_token_of_a_user_that_does_not_exist_is_401(api: Api) -> None:
    key = base64.b64decode((api.server.data_dir / "token-signing.key").read_bytes())
    ghost = jwt.encode({"sub": "ghost@local", "exp": int(time.time()) + 600}, key, algorithm="HS256")
    assert_vcf_error(api.request("GET", "/v1/tasks", ghost), 401, "Unauthenticated")
