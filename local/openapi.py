"""The whole API as one OpenAPI document, merged from each function's own resolver (Powertools builds each
function's part from its routes and models), with the JWT bearer scheme API Gateway enforces."""

import json
from collections.abc import Mapping
from typing import Any

from local.handlers import load_module
from local.template import Function, Template

TITLE = "Xero integration API"


def merged_openapi(template: Template, functions: Mapping[str, Function]) -> dict[str, Any]:
    routes = template.routes()
    document: dict[str, Any] = {
        "openapi": "3.0.3",
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
    for route in routes:
        operation = document["paths"].get(route.path, {}).get(route.method.lower())
        if operation is not None:
            operation["security"] = [{"jwt": []}] if route.authorized else []
    return document
