"""The data API's record schemas are Xero's: the shipped file is exactly what scripts/xero-schemas.py derives from the
vendored OpenAPI description, and every catalogue resource has one."""

import importlib.util
import json
from pathlib import Path

from xero_sync.catalogue import CATALOGUE
from xero_sync.xero_data import component_schemas

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "xero-schemas.py"


def load_script():
    spec = importlib.util.spec_from_file_location("xero_schemas_script", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_schemas_are_what_the_vendored_spec_gives():
    script = load_script()

    assert script.OUT.read_text() == script.rendered()


def test_every_resource_has_its_schema_and_every_reference_resolves():
    document = json.loads(load_script().OUT.read_text())
    schemas = component_schemas()
    assert set(document["resources"]) == {spec.name for spec in CATALOGUE}
    assert document["resources"]["Invoices"] == "XeroInvoice" and "LineItems" in schemas["XeroInvoice"]["properties"]
    assert set(document["resources"].values()) <= set(schemas)
    refs = {ref.removeprefix("#/components/schemas/") for ref in _refs(schemas)}
    assert refs <= set(schemas)
    # Request constraints are not a stored record's: dropped
    assert not any(key in {"required", "maxLength", "example"} for key in _keys(schemas))


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _keys(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "properties":
                yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)
