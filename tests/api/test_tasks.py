"""``/v1/tasks`` over raw HTTPS: listing, filters, paging, retry and cancel rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.http import Api, assert_vcf_error


def local_task(api: Api, token: str, directory: Path) -> dict:
    spec = {"backupLocations": [{"protocol": "LOCAL", "directoryPath": str(directory)}]}
    r = api.request("PATCH", "/v1/system/backup-configuration", token, json=spec)
    assert r.status_code == 202, r.text
    return api.wait_task(r.json()["id"], token)


def test_list_is_reachable_with_and_without_trailing_slash(
    api: Api, admin_token: str, tmp_path: Path
) -> None:
    done = local_task(api, admin_token, tmp_path)
    for path in ("/v1/tasks", "/v1/tasks/"):
        r = api.request("GET", path, admin_token)
        assert r.status_code == 200, path
        page = r.json()
        assert done["id"] in [t["id"] for t in page["elements"]]
        assert page["pageMetadata"]["totalElements"] >= 1


def test_filters_by_status_in_any_spelling_type_name_and_resource(
    api: Api, admin_token: str, tmp_path: Path
) -> None:
    ok = local_task(api, admin_token, tmp_path)
    failed = local_task(api, admin_token, tmp_path / "missing")
    assert (ok["status"], failed["status"]) == ("SUCCESSFUL", "FAILED")

    def ids(query: str) -> set[str]:
        r = api.request("GET", f"/v1/tasks?{query}", admin_token)
        assert r.status_code == 200, r.text
        return {t["id"] for t in r.json()["elements"]}

    assert ok["id"] in ids("taskStatus=SUCCESSFUL") and failed["id"] not in ids("taskStatus=SUCCESSFUL")
    assert failed["id"] in ids("taskStatus=Failed")
    assert {ok["id"], failed["id"]} <= ids("taskStatus=successful,FAILED")
    assert ok["id"] in ids("taskType=CONFIGURE_BACKUP")
    assert ids("taskType=NO_SUCH_TYPE") == set()
    assert ok["id"] in ids("taskName=backup%20config")
    assert ok["id"] in ids("resourceType=SDDC_MANAGER&resourceId=sddc-backup.test.local")
    assert ids("resourceId=other.host") == set()
    assert ids("completedAfter=32503680000000") == set()  # the year 3000
    assert ok["id"] in ids("completedAfter=0")


def test_paging_and_order(api: Api, admin_token: str, tmp_path: Path) -> None:
    for _ in range(3):
        local_task(api, admin_token, tmp_path)
    newest = api.request("GET", "/v1/tasks?pageSize=2&pageNumber=0", admin_token).json()
    assert len(newest["elements"]) == 2
    meta = newest["pageMetadata"]
    assert meta["pageSize"] == 2 and meta["totalPages"] == -(-meta["totalElements"] // 2)
    stamps = [t["creationTimestamp"] for t in newest["elements"]]
    assert stamps == sorted(stamps, reverse=True)
    second = api.request("GET", "/v1/tasks?pageSize=2&pageNumber=1", admin_token).json()
    assert not {t["id"] for t in second["elements"]} & {t["id"] for t in newest["elements"]}
    oldest = api.request("GET", "/v1/tasks?orderDirection=ASC&limit=2", admin_token).json()
    asc = [t["creationTimestamp"] for t in oldest["elements"]]
    assert asc == sorted(asc) and len(asc) == 2


@pytest.mark.parametrize(
    "query",
    [
        "taskStatus=SLEEPING",
        "pageSize=101",
        "pageSize=0",
        "pageNumber=-1",
        "orderDirection=UP",
        "orderBy=color",
        "limit=abc",
    ],
)
def test_bad_query_parameters_are_400(api: Api, admin_token: str, query: str) -> None:
    assert_vcf_error(api.request("GET", f"/v1/tasks?{query}", admin_token), 400)


def test_unknown_task_is_404_in_vcf_shape(api: Api, admin_token: str) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        assert_vcf_error(api.request(method, "/v1/tasks/no-such-task", admin_token), 404, "TASK_NOT_FOUND")


def test_failed_configuration_task_retries_under_the_same_id(
    api: Api, admin_token: str, tmp_path: Path
) -> None:
    target = tmp_path / "later"
    failed = local_task(api, admin_token, target)
    assert failed["status"] == "FAILED" and failed["isRetryable"] is True
    assert failed["resolutionStatus"] == "UNRESOLVED"
    target.mkdir()
    r = api.request("PATCH", f"/v1/tasks/{failed['id']}", admin_token)
    assert r.status_code == 200 and r.content == b""
    again = api.wait_task(failed["id"], admin_token)
    assert again["status"] == "SUCCESSFUL" and again["errors"] == []
    assert again["resolutionStatus"] == "RESOLVED" and again["isRetryable"] is False
    got = api.request("GET", "/v1/system/backup-configuration", admin_token).json()
    assert got["backupLocations"][0]["directoryPath"] == str(target)


def test_operator_may_not_retry_a_configuration_task(api: Api, admin_token: str, tmp_path: Path) -> None:
    from tests.conftest import USERS

    failed = local_task(api, admin_token, tmp_path / "missing")
    token = api.token("operator@local", USERS["operator@local"][1])
    assert_vcf_error(api.request("PATCH", f"/v1/tasks/{failed['id']}", token), 403, "INSUFFICIENT_PRIVILEGES")


def test_unknown_route_and_method_are_vcf_errors(api: Api, admin_token: str) -> None:
    assert_vcf_error(api.request("GET", "/v1/nothing-here", admin_token), 404, "RESOURCE_NOT_FOUND")
    assert_vcf_error(api.request("GET", "/nothing"), 404, "RESOURCE_NOT_FOUND")
    r = api.request("POST", "/v1/tasks", admin_token, json={})
    assert_vcf_error(r, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in r.headers["allow"]


def test_vcf_services_reports_operations_manager_up(api: Api, admin_token: str) -> None:
    r = api.request("GET", "/v1/vcf-services", admin_token)
    assert r.status_code == 200
    status = {e["name"]: e["status"] for e in r.json()["elements"]}
    assert status["OPERATIONS_MANAGER"] == "UP"
    assert status["STATE_STORE"] == "UP"
    assert_vcf_error(api.request("GET", "/v1/vcf-services"), 401)
