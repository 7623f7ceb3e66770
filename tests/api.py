"""Calls the API's handlers in-process with the events API Gateway would send for a verified JWT."""

import json
import re
from dataclasses import dataclass
from typing import Any

from local.stack.api_events import http_api_event
from local.stack.handler_loader import load_handler
from local.stack.lambda_context import LocalLambdaContext
from local.stack.template import PhysicalResource, Route
from tests.conftest import TEMPLATE


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any


def _route_for(method: str, path: str) -> tuple[Route, dict[str, str]]:
    for route in TEMPLATE.routes():
        pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route.path) + "$"
        if route.method == method and (match := re.match(pattern, path)):
            return route, match.groupdict()
    raise LookupError(f"no route {method} {path} in template.yaml")


class Api:
    def __init__(self, physical: dict[str, PhysicalResource]) -> None:
        self.functions = TEMPLATE.functions(physical)

    def call(
        self,
        method: str,
        path: str,
        practice: str | None = "practice-a",
        query: str = "",
        body: str | bytes | None = None,
        route_path: str | None = None,
        headers: dict[str, str] | None = None,
        user: str = "user-1",
    ) -> ApiResponse:
        """route_path sends the event to the function serving that route even when `path` is not one of them."""
        route, path_parameters = _route_for(method, route_path or path)
        claims = {"sub": user, **({"practice_id": practice} if practice else {})} if route.authorized else None
        event = http_api_event(
            method,
            path,
            f"{route.method} {route.path}",
            path_parameters=path_parameters,
            query=query,
            headers={"content-type": "application/json", **(headers or {})},
            body=body,
            jwt_claims=claims,
        )
        function = self.functions[route.function]
        result = load_handler(function)(event, LocalLambdaContext(function.logical_id, function.timeout))
        text = result.get("body") or "null"
        is_json = "json" in result.get("headers", {}).get("Content-Type", "application/json")
        return ApiResponse(result["statusCode"], result.get("headers", {}), json.loads(text) if is_json else text)
