"""Hostile input through the front door, on every route: deeply nested JSON, bodies of other content types, and
unicode edge cases in parameters get a clean typed 4xx (docs/architecture.md "API errors"), never a 500.
(Oversized bodies and malformed JSON: test_bad_input.py; awkward names from Xero: test_sync_hostile.py.)"""

import uuid
from typing import Any
from urllib.parse import quote

import pytest

from local.stack.template import Template
from tests.e2e.helpers import Api
from tests.e2e.test_bad_input import _concrete, _error

ROUTES = Template().routes()
DEEP = {
    "array": "[" * 5000 + "]" * 5000,
    "object": '{"a":' * 2500 + "1" + "}" * 2500,
    "inside a field": '{"mode":' + "[" * 7000 + "]" * 7000 + "}",
}
OTHER_TYPES = {
    "text/plain": b'{"mode": "full"}',
    "application/xml": b"<mode>full</mode>",
    "multipart/form-data; boundary=x": b'--x\r\nContent-Disposition: form-data; name="mode"\r\n\r\nfull\r\n--x--\r\n',
    "application/octet-stream": bytes(range(256)),
    "image/png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
}
AWKWARD_TEXT = {
    "nul": "a\x00b",
    "emoji": "\U0001f600\U0001f468\u200d\U0001f469",
    "rtl override": "\u202eevil\u202c",
    "lone surrogate escape": "%ED%A0%80",  # UTF-8 of U+D800, not decodable
    "bad utf-8": "%FF%FE",
    "multi-byte long": "\u20ac" * 2000,  # 6,000 bytes: over DynamoDB's 2,048-byte key limit
}


def _call(api: Api, practice: str, route: Any, **kwargs: Any) -> Any:
    path = _concrete(route.path, str(uuid.uuid4()))
    return api.request(route.method, path, practice if route.authorized else None, allow_redirects=False, **kwargs)


def _clean(response: Any) -> None:
    """A 2xx/3xx, or a typed 4xx error body: never the server's fault."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        _error(response)


@pytest.mark.parametrize("shape", DEEP)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_deeply_nested_json_is_a_clean_4xx(api: Api, practice: str, route: Any, shape: str) -> None:
    response = _call(api, practice, route, data=DEEP[shape], headers={"Content-Type": "application/json"})

    _clean(response)


@pytest.mark.parametrize("content_type", OTHER_TYPES)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_a_body_of_another_content_type_is_a_clean_4xx(api: Api, practice: str, route: Any, content_type: str) -> None:
    response = _call(api, practice, route, data=OTHER_TYPES[content_type], headers={"Content-Type": content_type})

    _clean(response)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/octet-stream"])
def test_sync_now_with_a_body_that_is_not_json_is_unsupported_media_type(
    api: Api, practice: str, seed_client: Any, content_type: str
) -> None:
    # Regression: Powertools' "unsupported content type" fell through to a 500
    client = seed_client(practice, "Romeo Ltd")

    response = api.post(
        f"/clients/{client.client_id}/sync",
        practice,
        data=OTHER_TYPES[content_type],
        headers={"Content-Type": content_type},
    )

    assert response.status_code == 415, response.text
    assert _error(response)["code"] == "unsupported_media_type"
    assert api.get(f"/clients/{client.client_id}", practice).json()["currentRun"] is None


@pytest.mark.parametrize("text", AWKWARD_TEXT)
def test_unicode_edge_cases_in_query_parameters_are_clean(api: Api, practice: str, text: str) -> None:
    value = AWKWARD_TEXT[text] if text.startswith(("lone", "bad")) else quote(AWKWARD_TEXT[text])

    for path in (f"/clients?cursor={value}", f"/clients?limit={value}"):
        _clean(api.get(path, practice))
    # A link completion: any state that is not one we issued is refused without a lookup
    raw = AWKWARD_TEXT[text]
    for completion in ({"state": raw}, {"state": raw, "code": raw}, {"state": "s" * 43, "error": raw}):
        response = api.post("/xero/link-completions", practice, json=completion)
        assert response.status_code in (400, 413, 422), response.text
        assert _error(response)["code"] in ("invalid_state", "validation_error", "payload_too_large")


@pytest.mark.parametrize("text", AWKWARD_TEXT)
def test_unicode_edge_cases_in_path_ids_are_a_validation_error(api: Api, practice: str, text: str) -> None:
    value = AWKWARD_TEXT[text] if text.startswith(("lone", "bad")) else quote(AWKWARD_TEXT[text], safe="")

    response = api.get(f"/clients/{value}", practice)

    assert response.status_code in (404, 422), response.text
    if response.status_code == 422:
        assert _error(response)["code"] == "validation_error"
