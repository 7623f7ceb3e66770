"""The front door's access log: one JSON line per request in the template's own format (the HttpApi stage's
AccessLogSettings), with who called (practice, user), from where, which route, how it ended and how long it took;
never the query string."""

import json
from typing import Any

import pytest

from local.stack.offline_stack import OfflineStack
from tests.e2e.helpers import Api, eventually


def access_line(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, Any] | None:
    for record in caplog.records:
        if record.name == "local.stack.gateway" and f'"requestId":"{request_id}"' in record.getMessage():
            entry: dict[str, Any] = json.loads(record.getMessage())
            return entry
    return None


def test_a_requests_access_line_names_the_practice_the_user_the_source_the_route_status_and_latency(
    stack: OfflineStack, api: Api, practice: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a practice's user
    token = stack.token(practice, user_id="user-of-the-practice")

    # When they list their clients with a query string
    with caplog.at_level("INFO", logger="local.stack.gateway"):
        response = api.request("GET", "/clients?limit=7", token=token)
        request_id = response.headers["apigw-requestid"]
        entry = eventually(lambda: access_line(caplog, request_id), timeout=5)

    # Then one line says who, from where, what and how it ended, in the template's fields
    assert response.status_code == 200
    assert entry is not None and stack.template is not None
    assert set(entry) == set(json.loads(stack.template.access_log_format()))
    assert (entry["practice"], entry["sub"]) == (practice, "user-of-the-practice")
    assert (entry["sourceIp"], entry["routeKey"], entry["status"]) == ("127.0.0.1", "GET /clients", "200")
    assert int(entry["responseLatency"]) >= int(entry["integrationLatency"]) >= 0
    assert entry["requestTime"] != "-" and entry["error"] == "-"
    # And no line of the front door carries the query string
    assert not [r for r in caplog.records if r.name == "local.stack.gateway" and "limit" in r.getMessage()]


def test_a_refused_requests_access_line_has_no_caller_and_says_why(
    stack: OfflineStack, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="local.stack.gateway"):
        response = api.request("GET", "/clients", token="not-a-jwt")
        entry = eventually(lambda: access_line(caplog, response.headers["apigw-requestid"]), timeout=5)

    assert response.status_code == 401
    assert entry is not None
    assert (entry["practice"], entry["sub"], entry["status"]) == ("-", "-", "401")
    assert (entry["routeKey"], entry["error"]) == ("GET /clients", "Unauthorized")
    assert entry["authorizerError"] != "-" and entry["integrationLatency"] == "-"
