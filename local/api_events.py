"""API Gateway HTTP API (payload format 2.0) events, as API Gateway sends them to a Lambda integration."""

import base64
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode


def http_api_event(
    method: str,
    path: str,
    route_key: str,
    path_parameters: Mapping[str, str] | None = None,
    query: str | Mapping[str, str] = "",
    headers: Mapping[str, str] | None = None,
    body: str | bytes | None = None,
    jwt_claims: Mapping[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    raw_query = query if isinstance(query, str) else urlencode(query)
    lower_headers = {name.lower(): value for name, value in (headers or {}).items()}
    cookies = [c.strip() for c in lower_headers.pop("cookie", "").split(";") if c.strip()]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": lower_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": lower_headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lower_headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        # API Gateway joins repeated parameters with commas.
        params: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            params[name] = f"{params[name]},{value}" if name in params else value
        event["queryStringParameters"] = params
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if jwt_claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": dict(jwt_claims), "scopes": None}}
    if body is not None:
        if isinstance(body, bytes):
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = body
    return event
