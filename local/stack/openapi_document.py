"""The whole API as one OpenAPI document, merged from each function's own resolver (Powertools builds each
function's part from its routes and models), with the JWT bearer scheme API Gateway enforces."""

import json
from collections.abc import Mapping
from typing import Any

from local.stack.handler_loader import load_module
from local.stack.template import Function, Template

TITLE = "Xero integration API"


# What API Gateway itself answers, before or instead of a function: {"message": ...}.
GATEWAY_MESSAGE = {
    "type": "object",
    "properties": {"message": {"type": "string"}},
    "required": ["message"],
    "title": "ApiGatewayMessage",
}
# 401: the JWT authorizer refused the token (authorized routes); 404: no route matched (a path parameter holding
# a "/" reaches no route); 413: over HTTP API's 10 MB payload quota.
_GATEWAY_ANSWERS = {"401": "the JWT authorizer refused the token", "404": "no such route", "413": "over 10 MB"}


def merged_openapi(template: Template, functions: Mapping[str, Function]) -> dict[str, Any]:
    routes = template.routes()
    document: dict[str, Any] = {
        "openapi": "3.1.0",  # what Powertools generates each function's part as
        "info": {"title": TITLE, "version": "1"},
        "paths": {},
        "components": {
            "schemas": {},
            "securitySchemes": {"jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
    for function_id in sorted({route.function for route in routes}):
        resolver = load_module(functions[function_id]).app
        part = json.loads(resolver.get_openapi_json_schema())
        for path, operations in part.get("paths", {}).items():
            document["paths"].setdefault(path, {}).update(operations)
        document["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))
    document["components"]["schemas"]["ApiGatewayMessage"] = GATEWAY_MESSAGE
    for route in routes:
        operation = document["paths"].get(route.path, {}).get(route.method.lower())
        if operation is not None:
            operation["security"] = [{"jwt": []}] if route.authorized else []
            _add_gateway_answers(operation, route.authorized)
    return document


def _add_gateway_answers(operation: dict[str, Any], authorized: bool) -> None:
    """API Gateway's own answers join the function's under the same status (either body may come back)."""
    for status, description in _GATEWAY_ANSWERS.items():
        if status == "401" and not authorized:
            continue
        response = operation.setdefault("responses", {}).setdefault(status, {"description": description})
        content = response.setdefault("content", {}).setdefault("application/json", {})
        own = content.get("schema")
        gateway = {"$ref": "#/components/schemas/ApiGatewayMessage"}
        content["schema"] = {"anyOf": [own, gateway]} if own else gateway
