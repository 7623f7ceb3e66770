"""What a client's records take in DynamoDB against the JSON Xero sent for them.

- item bytes: DynamoDB's own measure of an item (attribute names plus values: UTF-8 strings, binary as is, numbers
  about one byte per two digits), the figure behind the 400 KB item limit and write units;
- billed bytes: item bytes plus the 100 bytes DynamoDB adds to each item for its indexing, what storage is billed on;
- raw JSON bytes: every record as compact JSON (UTF-8), exactly what the API's list answers hold for it.
"""

import json
from dataclasses import dataclass
from typing import Any

from local.cli.stack_client import RECORD_BODY, StackHandle
from xero_sync.catalogue import CATALOGUE

ITEM_OVERHEAD_BYTES = 100  # "DynamoDB adds 100 bytes of overhead to each item for indexing" (storage billing)


@dataclass(frozen=True)
class Storage:
    items: int
    item_bytes: int
    body_bytes: int  # of item_bytes, the compressed bodies (the rest: keys, attribute names, UpdatedDateUTC, status)
    raw_json_bytes: int

    @property
    def billed_bytes(self) -> int:
        return self.item_bytes + ITEM_OVERHEAD_BYTES * self.items

    def as_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "itemBytes": self.item_bytes,
            "bodyBytes": self.body_bytes,
            "billedBytes": self.billed_bytes,
            "rawJsonBytes": self.raw_json_bytes,
            "billedToRaw": round(self.billed_bytes / self.raw_json_bytes, 3) if self.raw_json_bytes else None,
        }


def value_bytes(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "B":
        return len(inner)
    if kind == "N":
        digits = inner.lstrip("-").replace(".", "").strip("0")
        return (len(digits) + 1) // 2 + 1
    if kind in ("SS", "BS"):
        return sum(len(v.encode()) if isinstance(v, str) else len(v) for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_bytes(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(value_bytes(v) + 1 for v in inner)
    return 1  # BOOL, NULL


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


def measure(handle: StackHandle, client_id: str, tenant_id: str) -> Storage:
    items = size = bodies = raw = 0
    for spec in CATALOGUE:
        for item in handle.record_items(client_id, spec.name):
            items += 1
            size += item_bytes(item)
            bodies += len(item[RECORD_BODY]["B"])
        records = handle.emulator_admin("GET", f"/orgs/{tenant_id}/records/{spec.name}")["records"]
        raw += sum(len(json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode()) for r in records)
    return Storage(items, size, bodies, raw)
