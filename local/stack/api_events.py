"""API Gateway HTTP API (payload format 2.0) events, as API Gateway sends them to a Lambda integration (stage
$default). The one builder: the local front door (local/stack/gateway.py) builds its events with it from real requests,
the in-process test client (tests/api.py) from parts."""

import base64
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from local.stack.aws_engines import HOST
from local.stack.template import LOCAL_ACCOUNT

API_ID = "localapi"
_HOP_BY_HOP_HEADERS = {"connection", "keep-alive"}  # API Gateway never hands these to the integration


def http_api_event(
    method: str,
    path: str,
    route_key: str,
    path_parameters: Mapping[str, str] | None = None,
    query: str | Mapping[str, str] = "",
    headers: Mapping[str, str] | None = None,
    body: str | bytes | None = None,
    jwt_claims: Mapping[str, Any] | None = None,
    jwt_scopes: list[str] | None = None,
    source_ip: str = HOST,
    forwarded_proto: str | None = None,
    forwarded_port: int | str | None = None,
    protocol: str = "HTTP/1.1",
) -> dict[str, Any]:
    """`body`: text as it is, bytes base64-encoded (isBase64Encoded). `jwt_claims`/`jwt_scopes`: what the JWT
    authorizer passes (claims as strings, as it does). `forwarded_proto`/`forwarded_port`: the request came through
    the front door, so the event carries the X-Forwarded-* and X-Amzn-Trace-Id headers API Gateway adds."""
    now = time.time()
    raw_query = query if isinstance(query, str) else urlencode(query)
    lower_headers: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if name.lower() not in _HOP_BY_HOP_HEADERS:
            lower_headers[name.lower()] = value
    cookies = [c.strip() for c in lower_headers.pop("cookie", "").split(";") if c.strip()]
    if forwarded_proto is not None:
        lower_headers.setdefault("x-forwarded-for", source_ip)
        lower_headers.setdefault("x-forwarded-proto", forwarded_proto)
        lower_headers.setdefault("x-forwarded-port", "" if forwarded_port is None else str(forwarded_port))
        lower_headers.setdefault("x-amzn-trace-id", f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}")
    host = lower_headers.get("host", HOST)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": lower_headers,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT,
            "apiId": API_ID,
            "domainName": host.split(":")[0],
            "domainPrefix": host.split(".")[0].split(":")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": lower_headers.get("user-agent", ""),
            },
            "requestId": base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("="),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value  # repeated: joined with commas
    if params:
        event["queryStringParameters"] = params
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if jwt_claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": dict(jwt_claims), "scopes": jwt_scopes}}
    if body is not None:
        if isinstance(body, bytes):
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = body
    return event
