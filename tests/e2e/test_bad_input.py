"""Bad input, through the front door, to any function gets a typed 4xx error body: never a 500, never a trace."""

import re
import uuid
from typing import Any

import pytest

from local.stack.api_events import http_api_event
from local.stack.offline_stack import OfflineStack
from local.stack.template import Template
from tests.e2e.helpers import Api

TEMPLATE_ROUTES = Template().routes()
UNKNOWN_CLIENT = "00000000-0000-4000-8000-000000000000"


def _error(response: Any) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    assert "Traceback" not in response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}, body
    assert re.fullmatch(r"[a-z_]+", body["error"]["code"])
    assert body["error"]["message"]
    return body["error"]


def _concrete(path: str, client_id: str) -> str:
    return path.replace("{clientId}", client_id)


def test_a_path_outside_every_route_gets_api_gateways_not_found(api: Api, practice: str) -> None:
    for path in ("/nope", f"/clients/{UNKNOWN_CLIENT}/nope", "/clients/a/b/c"):
        response = api.get(path, practice)

        assert response.status_code == 404
        assert response.json() == {"message": "Not Found"}


def test_a_method_without_a_route_gets_api_gateways_not_found(api: Api, practice: str) -> None:
    response = api.request("PUT", "/clients", practice)

    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


def test_a_route_the_function_does_not_know_gets_its_typed_not_found(stack: OfflineStack) -> None:
    # A route the template sends to a function that has no such route (as a template/handler drift would).
    event = http_api_event(
        "GET",
        f"/clients/{UNKNOWN_CLIENT}/nope",
        "GET /clients/{clientId}/nope",
        jwt_claims={"practice_id": "p"},
    )
    assert stack.functions is not None

    response = stack.functions.invoke("ClientsFunction", event)

    assert response["statusCode"] == 404
    assert '"code":"route_not_found"' in response["body"]


def test_an_invalid_client_id_is_a_validation_error(api: Api, practice: str) -> None:
    response = api.get("/clients/not-a-uuid", practice)

    assert response.status_code == 422
    error = _error(response)
    assert error["code"] == "validation_error"
    assert error["details"][0]["location"].replace("_", "").lower().endswith("clientid")
    assert "not-a-uuid" not in response.text  # the rejected input is never echoed back


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("limit=0", 422, "validation_error"),
        ("limit=101", 422, "validation_error"),
        ("limit=abc", 422, "validation_error"),
        ("cursor=", 422, "validation_error"),
        ("cursor=Zm9yZ2Vk", 400, "invalid_cursor"),  # base64 of "forged": not a sort key this API gave out
        ("cursor=%%%%", 400, "invalid_cursor"),
        (f"cursor={'A' * 300}", 422, "validation_error"),
    ],
)
def test_invalid_query_parameters_are_typed_errors(
    api: Api, practice: str, seed_client: Any, query: str, status: int, code: str
) -> None:
    client = seed_client(practice, "Lima Ltd")

    for path in ("/clients", f"/clients/{client.client_id}/syncs"):
        response = api.get(f"{path}?{query}", practice)

        assert response.status_code == status, (path, response.text)
        assert _error(response)["code"] == code


def test_a_cursor_from_another_client_cannot_reach_into_it(api: Api, practice: str, seed_client: Any) -> None:
    # A well-formed cursor only ever continues the caller's own partition.
    other_practice = f"{practice}-b"
    for name in ("Mike", "November", "Oscar"):
        seed_client(other_practice, name)
    first = api.get("/clients?limit=1", other_practice).json()

    response = api.get(f"/clients?limit=1&cursor={first['nextCursor']}", practice)

    assert response.status_code == 200
    assert response.json()["items"] == []


def test_malformed_json_is_a_typed_bad_request(api: Api, practice: str, seed_client: Any) -> None:
    # Given a linked client (Sync Now takes an optional JSON body)
    client = seed_client(practice, "Papa Ltd")

    # When the body is not JSON
    response = api.post(
        f"/clients/{client.client_id}/sync",
        practice,
        data='{"mode": "full",',
        headers={"Content-Type": "application/json"},
    )

    # Then it is refused as such, and nothing was queued
    assert response.status_code == 400, response.text
    assert _error(response)["code"] == "malformed_json"
    assert api.get(f"/clients/{client.client_id}", practice).json()["currentRun"] is None


def test_a_body_of_the_wrong_shape_is_a_validation_error(api: Api, practice: str, seed_client: Any) -> None:
    client = seed_client(practice, "Quebec Ltd")

    response = api.post(f"/clients/{client.client_id}/sync", practice, json={"mode": "everything"})

    assert response.status_code == 422, response.text
    assert _error(response)["code"] == "validation_error"


@pytest.mark.parametrize("route", [r for r in TEMPLATE_ROUTES if r.method == "POST"], ids=lambda r: r.path)
def test_malformed_json_on_any_post_route_is_never_a_server_error(api: Api, practice: str, route: Any) -> None:
    response = api.request(
        route.method,
        _concrete(route.path, UNKNOWN_CLIENT),
        practice if route.authorized else None,
        data='{"mode": "full",',
        headers={"Content-Type": "application/json"},
    )

    # A route that reads no body may ignore it; any error is typed, and never the server's fault.
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        _error(response)


@pytest.mark.parametrize("route", TEMPLATE_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_an_oversized_body_is_refused_on_every_route(api: Api, practice: str, route: Any) -> None:
    response = api.request(
        route.method,
        _concrete(route.path, str(uuid.uuid4())),
        practice if route.authorized else None,
        data='{"padding": "' + "x" * (16 * 1024) + '"}',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413, response.text
    assert _error(response)["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "route", [r for r in TEMPLATE_ROUTES if "{clientId}" in r.path], ids=lambda r: f"{r.method} {r.path}"
)
def test_a_garbage_client_id_is_refused_on_every_route(api: Api, practice: str, route: Any) -> None:
    response = api.request(route.method, _concrete(route.path, "x' OR 1=1 --"), practice)

    assert response.status_code == 422, response.text
    assert _error(response)["code"] == "validation_error"
