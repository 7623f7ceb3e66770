"""Rate limits with Xero's values and headers, latency, scripted faults and call statistics (facts file §2)."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from tests.tooling.emulator.helpers import Xero


def _burst(xero: Xero, token: str, tenant_id: str, count: int) -> list[requests.Response]:
    """`count` calls released at the same instant, each on its own connection."""
    barrier = threading.Barrier(count)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def call() -> None:
        barrier.wait()
        response = requests.get(
            f"{xero.base_url}/api.xro/2.0/Organisation",
            timeout=30,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json", "xero-tenant-id": tenant_id},
        )
        with lock:
            results.append(response)

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_every_response_carries_the_three_limit_headers_counting_down(connected) -> None:
    xero, tenant_id, tokens = connected
    first = xero.get("Organisation", tokens["access_token"], tenant_id)
    second = xero.get("Contacts", tokens["access_token"], tenant_id)
    assert first.headers["X-MinLimit-Remaining"] == "59" and second.headers["X-MinLimit-Remaining"] == "58"
    assert first.headers["X-DayLimit-Remaining"] == "4999" and second.headers["X-DayLimit-Remaining"] == "4998"
    assert int(first.headers["X-AppMinLimit-Remaining"]) == 9999


def test_the_61st_call_in_a_minute_gets_429_minute_with_retry_after(connected) -> None:
    xero, tenant_id, tokens = connected
    token = tokens["access_token"]
    statuses = [xero.get("Organisation", token, tenant_id).status_code for _ in range(60)]
    assert statuses == [200] * 60
    # When the 61st call arrives within the minute
    response = xero.get("Organisation", token, tenant_id)
    # Then Xero answers 429 naming the minute limit, with Retry-After
    assert response.status_code == 429
    assert response.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-MinLimit-Remaining"] == "0"
    # And once the window has passed, calls go through again
    xero.admin("POST", "/clock", json={"advance": 60})
    assert xero.get("Organisation", token, tenant_id).status_code == 200
    stats = xero.admin("GET", "/stats").json()["tenants"][tenant_id]
    assert stats["rateLimited"] == {"minute": 1} and stats["calls"]["GET /Organisation"] == 62


def test_daily_limit_gives_429_day_with_a_long_retry_after(connected) -> None:
    xero, tenant_id, tokens = connected
    xero.admin("POST", "/config", json={"rateLimits": {"tenantPerDay": 3}})
    token = tokens["access_token"]
    assert [xero.get("Organisation", token, tenant_id).status_code for _ in range(3)] == [200] * 3
    response = xero.get("Organisation", token, tenant_id)
    assert response.status_code == 429 and response.headers["X-Rate-Limit-Problem"] == "day"
    assert int(response.headers["Retry-After"]) > 3600
    assert response.headers["X-DayLimit-Remaining"] == "0"


def test_the_sixth_concurrent_call_gets_429_concurrent(connected) -> None:
    # Given calls that take 1.5 s each (long enough to overlap even on a busy machine)
    xero, tenant_id, tokens = connected
    xero.admin("POST", "/config", json={"latencyMs": 1500})
    # When six calls for one tenant arrive together
    responses = _burst(xero, tokens["access_token"], tenant_id, 6)
    # Then five are served and one is refused for concurrency (no Retry-After: Xero sends it for minute/day only)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 200, 200, 200, 429]
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["X-Rate-Limit-Problem"] == "concurrent" and "Retry-After" not in refused.headers
    stats = xero.admin("GET", "/stats").json()["tenants"][tenant_id]
    assert stats["maxInFlight"] == 5 and stats["rateLimited"] == {"concurrent": 1}


def test_app_minute_limit_spans_tenants(xero: Xero) -> None:
    a = xero.create_org("Alpha Ltd", seed=1)
    b = xero.create_org("Beta Ltd", seed=2)
    token = xero.login([a["tenantId"], b["tenantId"]])["access_token"]
    xero.admin("POST", "/config", json={"rateLimits": {"appPerMinute": 3}})
    for tenant in (a, b, a):
        assert xero.get("Organisation", token, tenant["tenantId"]).status_code == 200
    response = xero.get("Organisation", token, b["tenantId"])
    assert response.status_code == 429 and response.headers["X-Rate-Limit-Problem"] == "appminute"
    assert response.headers["X-AppMinLimit-Remaining"] == "0" and int(response.headers["Retry-After"]) >= 1


def test_time_scale_shortens_windows_and_retry_after(connected) -> None:
    xero, tenant_id, tokens = connected
    xero.admin("POST", "/config", json={"rateLimits": {"timeScale": 60, "tenantPerMinute": 2}})
    token = tokens["access_token"]
    assert [xero.get("Organisation", token, tenant_id).status_code for _ in range(2)] == [200, 200]
    refused = xero.get("Organisation", token, tenant_id)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    time.sleep(1.05)
    assert xero.get("Organisation", token, tenant_id).status_code == 200


def test_rate_limits_can_be_switched_off(connected) -> None:
    xero, tenant_id, tokens = connected
    xero.admin("POST", "/config", json={"rateLimits": {"enabled": False, "tenantPerMinute": 5}})
    codes = {xero.get("Organisation", tokens["access_token"], tenant_id).status_code for _ in range(8)}
    assert codes == {200}


def test_latency_has_a_base_and_a_per_record_cost(connected) -> None:
    xero, tenant_id, tokens = connected
    count = len(xero.records(tenant_id, "Invoices"))
    xero.admin("POST", "/config", json={"latencyMs": 150, "perRecordLatencyMs": 50})
    started = time.monotonic()
    xero.get("Invoices", tokens["access_token"], tenant_id, page=1)
    elapsed = time.monotonic() - started
    assert elapsed >= 0.15 + count * 0.05 - 0.01
    started = time.monotonic()
    xero.get("Organisation", tokens["access_token"], tenant_id)  # one record
    assert 0.15 + 0.05 - 0.01 <= time.monotonic() - started < 0.15 + count * 0.05


@pytest.mark.parametrize(
    ("kind", "status", "problem"),
    [("429-minute", 429, "minute"), ("429-day", 429, "day"), ("500", 500, None), ("503", 503, None)],
)
def test_scripted_error_faults_answer_the_next_n_calls(connected, kind: str, status: int, problem: str) -> None:
    xero, tenant_id, tokens = connected
    token = tokens["access_token"]
    created = xero.admin("POST", "/faults", json={"kind": kind, "count": 2, "tenantId": tenant_id, "path": "Invoices"})
    assert created.status_code == 201
    # Other paths are not affected
    assert xero.get("Contacts", token, tenant_id).status_code == 200
    first, second = (xero.get("Invoices", token, tenant_id, page=1) for _ in range(2))
    assert first.status_code == second.status_code == status
    if problem:
        assert first.headers["X-Rate-Limit-Problem"] == problem and int(first.headers["Retry-After"]) > 0
    if status == 500:
        assert first.json()["Title"] == "An error occurred"
    if status == 503:
        assert first.headers["Content-Type"].startswith("text/plain")
    # The third call is normal again
    assert xero.get("Invoices", token, tenant_id, page=1).status_code == 200


def test_fault_for_another_tenant_does_not_fire(connected) -> None:
    xero, tenant_id, tokens = connected
    xero.admin("POST", "/faults", json={"kind": "500", "count": 1, "tenantId": "11111111-1111-4111-8111-111111111111"})
    assert xero.get("Invoices", tokens["access_token"], tenant_id).status_code == 200
    assert len(xero.admin("GET", "/faults").json()["faults"]) == 1
    assert xero.admin("DELETE", "/faults").status_code == 204
    assert xero.admin("GET", "/faults").json()["faults"] == []


def test_timeout_fault_holds_the_connection_then_closes_it_without_an_answer(connected) -> None:
    xero, tenant_id, tokens = connected
    xero.admin("POST", "/faults", json={"kind": "timeout", "holdSeconds": 0.6, "path": "/api.xro/2.0/Invoices"})
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        xero.get("Invoices", tokens["access_token"], tenant_id, timeout=10)
    assert time.monotonic() - started >= 0.6
    # A client with a shorter timeout sees a read timeout
    xero.admin("POST", "/faults", json={"kind": "timeout", "holdSeconds": 1.0})
    with pytest.raises(requests.ReadTimeout):
        xero.get("Invoices", tokens["access_token"], tenant_id, timeout=0.3)
    time.sleep(0.8)  # let the held connection finish before the emulator stops
    assert xero.get("Invoices", tokens["access_token"], tenant_id).status_code == 200


def test_reset_fault_drops_the_connection(connected) -> None:
    xero, tenant_id, tokens = connected
    xero.admin("POST", "/faults", json={"kind": "reset", "count": 1})
    with pytest.raises(requests.ConnectionError):
        xero.get("Invoices", tokens["access_token"], tenant_id, timeout=10)
    assert xero.get("Invoices", tokens["access_token"], tenant_id).status_code == 200


def test_malformed_fault_returns_a_truncated_json_body(connected) -> None:
    xero, tenant_id, tokens = connected
    xero.admin("POST", "/faults", json={"kind": "malformed", "path": "Invoices"})
    response = xero.get("Invoices", tokens["access_token"], tenant_id, page=1)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_faults_can_target_the_token_endpoint(connected) -> None:
    xero, _, tokens = connected
    xero.admin("POST", "/faults", json={"kind": "503", "path": "/connect/token"})
    assert xero.refresh(tokens["refresh_token"]).status_code == 503
    assert xero.refresh(tokens["refresh_token"]).status_code == 200


def test_bad_fault_kind_is_refused(xero: Xero) -> None:
    response = xero.admin("POST", "/faults", json={"kind": "explode"})
    assert response.status_code == 400 and "kind must be one of" in response.json()["error"]


def _invoices(connected, fault: dict) -> tuple[list, list]:
    """The first page of invoices as Xero answers it, then with the fault."""
    xero, tenant_id, tokens = connected
    clean = xero.get("Invoices", tokens["access_token"], tenant_id, page=1).json()["Invoices"]
    xero.admin("POST", "/faults", json={"path": "Invoices", **fault})
    spoiled = xero.get("Invoices", tokens["access_token"], tenant_id, page=1)
    assert spoiled.status_code == 200
    return clean, spoiled.json()["Invoices"]


def test_huge_page_fault_repeats_the_records_far_past_the_page_size(connected) -> None:
    clean, spoiled = _invoices(connected, {"kind": "huge-page", "records": 2500})
    assert len(spoiled) == 2500 and {r["InvoiceID"] for r in spoiled} == {r["InvoiceID"] for r in clean}


def test_missing_fields_fault_drops_the_id_and_stamp_of_the_first_records(connected) -> None:
    clean, spoiled = _invoices(connected, {"kind": "missing-fields", "records": 2})
    assert all("InvoiceID" not in r and "UpdatedDateUTC" not in r for r in spoiled[:2])
    assert spoiled[2:] == clean[2:]
    _, named = _invoices(connected, {"kind": "missing-fields", "fields": ["Status"]})
    assert "Status" not in named[0] and "InvoiceID" in named[0]


def test_wrong_types_fault_gives_fields_other_json_types_and_adds_entries_that_are_not_records(connected) -> None:
    clean, spoiled = _invoices(connected, {"kind": "wrong-types"})
    assert (spoiled[0]["InvoiceID"], type(spoiled[0]["UpdatedDateUTC"]), type(spoiled[0]["Status"])) == (
        12345,
        int,
        list,
    )
    assert spoiled[1 : len(clean)] == clean[1:] and spoiled[len(clean) :] == ["not a record", None, 7]


def test_oversized_record_fault_pads_the_first_record_past_dynamodbs_item_limit_even_compressed(connected) -> None:
    import zlib

    _, spoiled = _invoices(connected, {"kind": "oversized-record"})
    assert len(zlib.compress(json.dumps(spoiled[0]).encode(), 9)) > 400 * 1024


def test_no_pagination_fault_answers_the_page_without_its_pagination_object(connected) -> None:
    xero, tenant_id, tokens = connected
    token = tokens["access_token"]
    clean = xero.get("Invoices", token, tenant_id, page=1, pageSize=5).json()
    assert clean["pagination"]["pageSize"] == 5
    xero.admin("POST", "/faults", json={"kind": "no-pagination", "path": "Invoices", "count": 2})
    assert "pagination" in xero.get("Contacts", token, tenant_id, page=1).json()  # another path: not matched
    spoiled = xero.get("Invoices", token, tenant_id, page=1, pageSize=5)
    assert spoiled.status_code == 200
    assert "pagination" not in spoiled.json()
    assert {k: v for k, v in spoiled.json().items() if k not in ("Id", "DateTimeUTC")} == {
        k: v for k, v in clean.items() if k not in ("Id", "DateTimeUTC", "pagination")
    }
    assert "pagination" not in xero.get("Invoices", token, tenant_id, page=2, pageSize=5).json()
    assert "pagination" in xero.get("Invoices", token, tenant_id, page=1, pageSize=5).json()  # count spent


@pytest.mark.parametrize(("kind", "status", "title"), [("not-offered", 404, "NotFound"), ("gone", 410, "Gone")])
def test_not_offered_and_gone_faults_answer_the_collection_as_an_endpoint_the_organisation_lacks(
    connected, kind: str, status: int, title: str
) -> None:
    xero, tenant_id, tokens = connected
    token = tokens["access_token"]
    xero.admin("POST", "/faults", json={"kind": kind, "path": "Quotes", "tenantId": tenant_id})
    assert xero.get("Invoices", token, tenant_id).status_code == 200  # other resources are offered
    refused = xero.get("Quotes", token, tenant_id, page=1)
    assert refused.status_code == status
    body = refused.json()
    assert (body["Title"], body["Status"]) == (title, status) and body["Detail"]
    assert xero.get("Quotes", token, tenant_id, page=1).status_code == 200
    calls = xero.admin("GET", "/stats").json()["tenants"][tenant_id]["statuses"]
    assert calls.get(str(status)) == 1


def test_a_name_with_lone_surrogates_is_sent_as_json_escapes(xero: Xero) -> None:
    org = xero.admin("POST", "/orgs", json={"name": "Lone \ud800 Ltd", "seed": 1, "size": "tiny"})
    assert org.status_code == 201 and "\\ud800" in org.text
    assert org.json()["name"] == "Lone \ud800 Ltd"
