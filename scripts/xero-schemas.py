"""Builds layers/common/xero_sync/xero_schemas.json: the JSON schema of each catalogue resource's records, derived from
Xero's own OpenAPI description of the Accounting API (vendor/xero-openapi/xero_accounting.yaml), for the data API's
OpenAPI document (functions/xero_data).

    .venv/bin/python scripts/xero-schemas.py           # rewrite the file
    .venv/bin/python scripts/xero-schemas.py --check   # exit 1 if the shipped file is not what the spec gives

Each resource's schema (Invoices -> Invoice) and every schema it reaches through $ref become components named
`Xero{name}`. What describes a record Xero answers is kept (type, properties, items, enum, format, description,
$ref); what constrains a request is dropped (`required`, `maxLength`: a stored record is what Xero sent, not what it
accepts), and so are examples, defaults, readOnly, external links and `x-` extensions. No other change: the spec's
OpenAPI 3.0 schemas hold nothing 3.1 reads differently (no `nullable`).
"""

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from xero_sync.catalogue import CATALOGUE

REPO = Path(__file__).resolve().parent.parent

SPEC = REPO / "vendor" / "xero-openapi" / "xero_accounting.yaml"
OUT = REPO / "layers" / "common" / "xero_sync" / "xero_schemas.json"
PREFIX = "Xero"
KEPT = {"type", "properties", "items", "enum", "format", "description", "$ref"}
REF = "#/components/schemas/"


def _converted(node: Any, reached: set[str]) -> Any:
    if isinstance(node, list):
        return [_converted(item, reached) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            name = value.removeprefix(REF)
            reached.add(name)
            out[key] = f"{REF}{PREFIX}{name}"
        elif key == "properties":
            out[key] = {name: _converted(prop, reached) for name, prop in value.items()}
        elif key in KEPT:
            out[key] = _converted(value, reached)
    return out


def derive(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    resources = {resource.name: resource.xero_schema for resource in CATALOGUE}
    components: dict[str, Any] = {}
    pending = sorted(set(resources.values()))
    while pending:
        name = pending.pop()
        if f"{PREFIX}{name}" in components:
            continue
        reached: set[str] = set()
        components[f"{PREFIX}{name}"] = {"title": f"{PREFIX}{name}", **_converted(schemas[name], reached)}
        pending.extend(sorted(reached))
    return {
        "source": f"{SPEC.name} (Xero-OpenAPI, info.version {spec['info']['version']})",
        "resources": {name: f"{PREFIX}{schema}" for name, schema in resources.items()},
        "schemas": dict(sorted(components.items())),
    }


def rendered(spec_path: Path = SPEC) -> str:
    with spec_path.open("rb") as handle:
        spec = yaml.load(handle, Loader=yaml.CSafeLoader)
    return json.dumps(derive(spec), indent=1, sort_keys=True) + "\n"


def main() -> None:
    text = rendered()
    if sys.argv[1:] == ["--check"]:
        if not OUT.exists() or OUT.read_text() != text:
            raise SystemExit(f"{OUT.name} is not what {SPEC.name} gives: run scripts/xero-schemas.py")
        return
    OUT.write_text(text)
    document = json.loads(text)
    print(f"{OUT.name}: {len(document['resources'])} resources, {len(document['schemas'])} schemas")


if __name__ == "__main__":
    main()
