"""Xero's official OpenAPI documents, loaded once, with validators for the response schema of each operation."""

from __future__ import annotations

import copy
import functools
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

SPEC_DIR = Path(__file__).resolve().parents[3] / "vendor" / "xero-openapi"


@functools.cache
def load(name: str) -> dict[str, Any]:
    with (SPEC_DIR / name).open("rb") as handle:
        return yaml.load(handle, Loader=yaml.CSafeLoader)


def _identity_format_checker() -> Any:
    """The identity spec types createdDateUtc/updatedDateUtc as date-time, yet its own example (and Xero) gives naive
    UTC timestamps with 7 fractional digits ("2019-12-07T18:46:19.5165400"). Accept exactly that form too, so the
    emulator can stay faithful to what Xero sends."""
    checker = copy.deepcopy(oas30_format_checker)
    strict = oas30_format_checker

    @checker.checks("date-time")
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if strict.conforms(value, "date-time"):
            return True
        match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,7})?", value)
        if not match:
            return False
        datetime.fromisoformat(match.group(1))
        return True

    return checker


def response_schema(spec: dict[str, Any], path: str, method: str = "get", status: str = "200") -> dict[str, Any]:
    operation = spec["paths"][path][method]
    return operation["responses"][status]["content"]["application/json"]["schema"]


def errors(spec_name: str, schema: dict[str, Any], instance: Any) -> list[str]:
    """Validation errors of `instance` against `schema`, whose $refs resolve inside the named spec."""
    spec = load(spec_name)
    root = {"components": spec["components"], **schema}
    checker = _identity_format_checker() if spec_name == "xero-identity.yaml" else oas30_format_checker
    validator = OAS30ReadValidator(root, format_checker=checker)
    found = []
    for error in validator.iter_errors(instance):
        where = "/".join(str(p) for p in error.absolute_path)
        found.append(f"{where}: {error.message[:300]}")
        if len(found) >= 20:
            break
    return found
