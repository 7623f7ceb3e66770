"""The local stack as a developer meets it: its front door serves the API's OpenAPI document and Swagger UI,
offline, and a running stack is never started a second time over itself."""

import re
from urllib.parse import urljoin

import pytest

from local.stack.offline_stack import OfflineStack
from local.stack.template import Template
from tests.e2e.helpers import Api


@pytest.fixture
def stack(any_stack: OfflineStack) -> OfflineStack:
    """The document and the page are the same on either kind of stack: whichever runs."""
    return any_stack


def test_a_running_stack_refuses_a_second_start_and_keeps_its_engines(stack: OfflineStack) -> None:
    engines = [stack.dynamodb.process, stack.moto.process]
    with pytest.raises(RuntimeError, match="already running"):
        stack.start()
    assert [stack.dynamodb.process, stack.moto.process] == engines
    assert all(engine is not None and engine.poll() is None for engine in engines)


def test_the_openapi_document_is_served_with_every_route_of_the_template(api: Api, stack: OfflineStack) -> None:
    response = api.get("/_local/openapi.json")

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    routes = Template().routes()
    assert {(route.method, route.path) for route in routes} <= operations
    # Every route the authorizer guards says so with the bearer scheme; the callback (no JWT) does not
    bearer = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert document["components"]["securitySchemes"]["jwt"] == bearer
    for route in routes:
        security = document["paths"][route.path][route.method.lower()]["security"]
        assert security == ([{"jwt": []}] if route.authorized else []), route
    assert stack.describe()["openapi"] == f"{stack.api_url}/_local/openapi.json"


def test_the_swagger_page_loads_its_assets_and_calls_the_api_with_a_bearer_token(
    api: Api, stack: OfflineStack, practice: str
) -> None:
    page_url = f"{stack.api_url}/_local/swagger"
    assert stack.describe()["swagger"] == page_url

    page = api.session.get(page_url, timeout=30)

    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    # Every asset the page references is served from the stack itself (no internet needed)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        url = urljoin(page_url, asset)
        assert url.startswith(f"{stack.api_url}/_local/"), url
        loaded = api.session.get(url, timeout=30)
        assert loaded.status_code == 200, (url, loaded.status_code)
        assert loaded.content, url
    # And the document it reads is this stack's
    (document_url,) = re.findall(r'"url": "([^"]+)"', page.text)
    assert api.session.get(urljoin(page_url, document_url), timeout=30).status_code == 200
    # And a request as the page sends it after Authorize (same origin, the bearer token) reaches the API
    response = api.get("/clients", headers={"Authorization": f"Bearer {stack.token(practice)}"})
    assert response.status_code == 200, response.text


def test_only_the_pages_own_assets_are_served(api: Api) -> None:
    for name in ("package.json", "index.html", "..%2F..%2Fpackage.json", "nothing.js"):
        assert api.get(f"/_local/swagger/assets/{name}").status_code == 404, name
