"""Response helpers with Xero's error bodies (facts file §5.4)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from werkzeug.wrappers import Response


def dumps(body: Any) -> str:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates (a name typed so in Xero): sent as the JSON escapes Xero sends
        return json.dumps(body, separators=(",", ":"))
    return text


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status=status, headers=headers or {}, content_type="application/json; charset=utf-8")


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    """The problem-details body Xero's API gateway answers 401/403 with."""
    body = {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }
    return json_response(body, status, headers)


def unauthorized(detail: str = "AuthenticationUnsuccessful", headers: dict[str, str] | None = None) -> Response:
    merged = {"WWW-Authenticate": 'Bearer error="invalid_token"', **(headers or {})}
    return problem(401, "Unauthorized", detail, merged)


def forbidden(headers: dict[str, str] | None = None) -> Response:
    return problem(403, "Forbidden", "AuthenticationUnsuccessful", headers)


def validation_error(message: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [{"ValidationErrors": [{"Message": message}]}],
    }
    return json_response(body, 400, headers)


def query_parse_error(message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message}
    return json_response(body, 400, headers)


def not_found(headers: dict[str, str] | None = None) -> Response:
    return problem(404, "NotFound", "The resource you're looking for cannot be found", headers)


def gone(headers: dict[str, str] | None = None) -> Response:
    """410, shaped as the 404 (Xero's 410 body is not documented)."""
    return problem(410, "Gone", "The resource you're looking for is no longer available", headers)


def server_error(headers: dict[str, str] | None = None) -> Response:
    body = {
        "Title": "An error occurred",
        "Detail": "An error occurred in Xero. Check the API Status page "
        "http://status.developer.xero.com for current service status.",
        "Status": 500,
        "Instance": str(uuid.uuid4()),
    }
    return json_response(body, 500, headers)


def unavailable(headers: dict[str, str] | None = None) -> Response:
    # "When the API is offline, you'll get just plain text."
    return Response(
        "The Xero API is temporarily unavailable",
        status=503,
        headers=headers or {},
        content_type="text/plain; charset=utf-8",
    )


def rate_limited(problem_kind: str, retry_after: int | None, headers: dict[str, str] | None = None) -> Response:
    merged = dict(headers or {})
    merged["X-Rate-Limit-Problem"] = problem_kind
    if retry_after is not None:
        merged["Retry-After"] = str(retry_after)
    body = {
        "Title": "Too Many Requests",
        "Status": 429,
        "Detail": f"Rate limit exceeded: {problem_kind}",
        "Instance": str(uuid.uuid4()),
    }
    return json_response(body, 429, merged)


def oauth_error(error: str, status: int = 400) -> Response:
    return json_response({"error": error}, status, {"Cache-Control": "no-store", "Pragma": "no-cache"})
