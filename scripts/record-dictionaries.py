"""Builds layers/common/xero_sync/record_dictionaries.json: per resource, a zlib preset dictionary of what every record
of it repeats (its property names, nested ones included, and its enumerated values), from Xero's own OpenAPI
description of the Accounting API (vendor/xero-openapi/xero_accounting.yaml), not from any organisation's data.

    .venv/bin/python scripts/record-dictionaries.py [path/to/xero_accounting.yaml]
    .venv/bin/python scripts/record-dictionaries.py --rerender   # no spec needed: see below

A property is rendered as a record spells it, `,"Name":"` (the comma before it, the opening quote of a text value):
zlib then matches the whole run, not the name alone (version 1 had `"Name":`; version 2 stores the medium benchmark
organisation's bodies 4.6 % smaller). `--rerender` builds a new version from the current one's fragments, which its
text gives back exactly, for a checkout without the spec (version 2 was made so, from version 1).

The file is append-only: a stored record names its dictionary by checksum (zlib's DICTID), so a dictionary once used
must stay readable. Regenerating adds the new dictionaries under a new version and keeps the old ones.
"""

import json
import re
import sys
import zlib
from pathlib import Path
from typing import Any

import yaml

from xero_sync.catalogue import BY_NAME, CATALOGUE

REPO = Path(__file__).resolve().parent.parent

SPEC = REPO / "vendor" / "xero-openapi" / "xero_accounting.yaml"
OUT = REPO / "layers" / "common" / "xero_sync" / "record_dictionaries.json"
DEPTH = 3  # Invoice -> LineItems -> LineItem -> Tracking: deeper shapes repeat little
# Xero's JSON date, as every record carries it: "UpdatedDateUTC":"/Date(1439434356790+0000)/"
DATE_FRAGMENTS = ['"/Date(', '+0000)/"']
WINDOW = 32 * 1024  # zlib's window: a longer dictionary's start is never reached


def fragments(schemas: dict[str, Any], name: str, depth: int = 0, seen: frozenset[str] = frozenset()) -> list[str]:
    if name in seen or depth > DEPTH:
        return []
    out: list[str] = []
    for prop, definition in (schemas.get(name, {}).get("properties") or {}).items():
        out.append(f'"{prop}":')
        out += [f'"{value}"' for value in definition.get("enum", [])]
        ref = definition.get("$ref") or (definition.get("items") or {}).get("$ref")
        if ref:
            out += fragments(schemas, ref.rsplit("/", 1)[-1], depth + 1, seen | {name})
    return out


def render(tokens: list[str]) -> str:
    """Each fragment once, in the schema's order (where in the window they sit makes no measurable difference)."""
    ordered = [f',{token}"' if token.endswith(":") else token for token in dict.fromkeys(tokens)]
    return "".join(DATE_FRAGMENTS + ordered).encode()[-WINDOW:].decode(errors="ignore")


def dictionary(schemas: dict[str, Any], resource: str) -> str:
    return render(fragments(schemas, BY_NAME[resource].xero_schema))


def recovered_tokens(text: str) -> list[str]:
    """The fragments a stored dictionary was rendered from (version 1's `"Name":` or a later `,"Name":"`)."""
    body = text.removeprefix("".join(DATE_FRAGMENTS))
    pattern = r',("[^"]*":)"|("[^"]*")' if body.startswith(",") else r'("[^"]*":)|("[^"]*")'
    tokens = [name or value for name, value in re.findall(pattern, body)]
    if "".join(DATE_FRAGMENTS) + "".join(tokens) != text and render(tokens) != text:
        raise SystemExit("a stored dictionary does not read back as fragments: rebuild from the spec instead")
    return tokens


def save(existing: dict[str, Any], built: dict[str, str], source: str) -> None:
    current = existing["versions"].get(existing.get("current", ""))
    if current == built:
        print(f"{OUT.name}: unchanged (version {existing['current']})")
        return
    version = str(len(existing["versions"]) + 1)
    existing["versions"][version] = built
    existing["current"] = version
    existing["source"] = source
    OUT.write_text(json.dumps(existing, indent=1, sort_keys=True) + "\n")
    checksums = {name: zlib.adler32(text.encode()) for name, text in built.items()}
    print(f"{OUT.name}: version {version}, {len(built)} dictionaries, ids {checksums}")


def main() -> None:
    existing = json.loads(OUT.read_text()) if OUT.exists() else {"versions": {}}
    if sys.argv[1:] == ["--rerender"]:
        current = existing["versions"][existing["current"]]
        built = {name: render(recovered_tokens(text)) for name, text in current.items()}
        save(existing, built, existing["source"])
        return
    spec = Path(sys.argv[1]) if len(sys.argv) > 1 else SPEC
    document = yaml.safe_load(spec.read_text())
    schemas = document["components"]["schemas"]
    built = {s.name: dictionary(schemas, s.name) for s in CATALOGUE}
    save(existing, built, f"{spec.name} (Xero-OpenAPI, info.version {document['info']['version']})")


if __name__ == "__main__":
    main()
