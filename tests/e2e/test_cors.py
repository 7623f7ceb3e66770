"""CORS on the local front door, as API Gateway applies the template's CorsConfiguration: the front end's origin
(the FrontendOrigin parameter) alone may call the API from a browser; preflights are answered by the gateway."""

import pytest
import requests

from local.stack.offline_stack import OfflineStack
from tests.e2e.helpers import Api

OTHER_ORIGIN = "https://evil.example"


@pytest.fixture
def frontend_origin(stack: OfflineStack) -> str:
    assert stack.template is not None
    return str(stack.template.parameter_values["FrontendOrigin"])


def invocations(stack: OfflineStack) -> int:
    """Invocations of the functions behind the API's routes (the queue workers may still be busy with the messages
    of the tests before: they are no preflight's doing)."""
    assert stack.functions is not None and stack.template is not None
    behind_routes = {route.function for route in stack.template.routes()}
    return sum(runtime.invocations for name, runtime in stack.functions.runtimes.items() if name in behind_routes)


def cors_headers(response: requests.Response) -> dict[str, str]:
    headers = {name.lower(): value for name, value in response.headers.items()}
    return {name: value for name, value in headers.items() if name.startswith("access-control-")}


def preflight(api: Api, path: str, origin: str, method: str = "GET") -> requests.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    return api.request("OPTIONS", path, headers={**headers, "Access-Control-Request-Headers": "authorization"})


def test_a_preflight_from_the_front_end_is_answered_by_the_gateway_without_a_token(
    stack: OfflineStack, api: Api, frontend_origin: str, practice: str
) -> None:
    before = invocations(stack)

    listing = preflight(api, "/clients", frontend_origin)
    deletion = preflight(api, "/clients/00000000-0000-4000-8000-000000000000", frontend_origin, "DELETE")

    for response in (listing, deletion):
        assert response.status_code == 204
        headers = cors_headers(response)
        assert headers["access-control-allow-origin"] == frontend_origin
        assert set(headers["access-control-allow-methods"].split(",")) == {"GET", "POST", "DELETE"}
        assert {"authorization", "content-type"} <= set(headers["access-control-allow-headers"].split(","))
        assert headers["access-control-max-age"] == "600"
        assert "access-control-allow-credentials" not in headers
    assert invocations(stack) == before  # no function ran, and no JWT was asked for
    # (where the request itself reaches its function)
    assert api.get("/clients", practice, headers={"Origin": frontend_origin}).status_code == 200
    assert invocations(stack) == before + 1


def test_a_preflight_from_another_origin_gets_no_cors_headers(stack: OfflineStack, api: Api) -> None:
    before = invocations(stack)

    response = preflight(api, "/clients", OTHER_ORIGIN)

    assert response.status_code == 204
    assert cors_headers(response) == {}
    assert invocations(stack) == before


def test_a_response_to_the_front_end_carries_its_origin_and_the_exposed_headers(
    api: Api, practice: str, frontend_origin: str
) -> None:
    response = api.get("/clients", practice, headers={"Origin": frontend_origin})

    assert response.status_code == 200
    assert cors_headers(response) == {
        "access-control-allow-origin": frontend_origin,
        "access-control-expose-headers": "retry-after",  # a 429's Retry-After, readable by the front end
    }


def test_a_response_to_another_origin_carries_no_cors_headers(api: Api, practice: str) -> None:
    response = api.get("/clients", practice, headers={"Origin": OTHER_ORIGIN})

    assert response.status_code == 200  # served (API Gateway does), but no browser lets that origin read it
    assert cors_headers(response) == {}
