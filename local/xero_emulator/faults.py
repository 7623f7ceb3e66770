"""Scripted failures: the next N matching calls fail in a chosen way.

Most kinds replace the answer (a 429, a 5xx, no answer at all). The hostile kinds answer as Xero would, then spoil
the list in the answer: `malformed` cuts the body, `huge-page` repeats its records far past any page size,
`missing-fields` drops fields (by default the id and UpdatedDateUTC) from the first records, `wrong-types` gives
fields the wrong JSON types and slips entries that are not records into the list, and `oversized-record` pads the
first record with incompressible text past DynamoDB's 400 KB item limit; `no-pagination` drops the `pagination`
object the pageSize endpoints send. `not-offered` answers 404 as Xero does for an endpoint the organisation does not
offer, `gone` 410. On the token endpoint, `opaque-token` answers an access token that is not a JWT and
`no-auth-event` one without its `authentication_event_id`.
"""

from __future__ import annotations

import base64
import itertools
import math
import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

KINDS = (
    "429-minute",
    "429-day",
    "429-concurrent",
    "429-appminute",
    "500",
    "503",
    "timeout",
    "reset",
    "malformed",
    "huge-page",
    "missing-fields",
    "wrong-types",
    "oversized-record",
    "no-pagination",
    "not-offered",
    "gone",
    "opaque-token",
    "no-auth-event",
)
# Kinds that spoil a real answer (its record list, or its `pagination` object) instead of replacing the answer.
LIST_KINDS = frozenset({"huge-page", "missing-fields", "wrong-types", "oversized-record", "no-pagination"})
# Kinds that spoil a token endpoint's answer: an access token that is not a JWT, or one without its consent's id.
TOKEN_KINDS = frozenset({"opaque-token", "no-auth-event"})
HUGE_PAGE_RECORDS = 3000
OVERSIZED_BYTES = 800_000  # base64 of random bytes: about 600 KB once zlib has done its best
ALIASES = {"429": "429-minute", "rate-limit": "429-minute", "connection-reset": "reset"}


@dataclass
class Fault:
    id: int
    kind: str
    remaining: int
    tenant_id: str | None = None
    path: str | None = None
    hold_seconds: float = 30.0  # timeout: how long to hold the connection before closing it without an answer
    retry_after: int | None = None  # 429 kinds: Retry-After to send (default: 60, or 3600 for day)
    records: int | None = None  # hostile kinds: records spoiled (default 1), or a huge page's length (3000)
    fields: tuple[str, ...] | None = None  # missing-fields: which (default: the id and UpdatedDateUTC)
    size_bytes: int | None = None  # oversized-record: the padding's length (default 800 000)

    def matches(self, tenant_id: str | None, path: str) -> bool:
        if self.tenant_id and (tenant_id or "").lower() != self.tenant_id.lower():
            return False
        if self.path:
            wanted = self.path.lower()
            lowered = path.lower()
            if wanted.startswith("/"):
                return lowered.startswith(wanted)
            # A bare resource name ("Invoices") matches /api.xro/2.0/Invoices and /api.xro/2.0/Invoices/{id}.
            return lowered.startswith(f"/api.xro/2.0/{wanted}") and lowered[len(f"/api.xro/2.0/{wanted}") :][:1] in (
                "",
                "/",
            )
        return True

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {
            "id": data["id"],
            "kind": data["kind"],
            "remaining": data["remaining"],
            "tenantId": data["tenant_id"],
            "path": data["path"],
            "holdSeconds": data["hold_seconds"],
            "retryAfter": data["retry_after"],
            "records": data["records"],
            "fields": list(data["fields"]) if data["fields"] is not None else None,
            "bytes": data["size_bytes"],
        }

    def spoil(self, body: dict[str, Any], list_key: str, id_field: str) -> dict[str, Any]:
        """The answer with its record list (or its `pagination`) spoiled as this fault's kind says (answers without
        one are kept)."""
        if self.kind == "no-pagination":
            return {key: value for key, value in body.items() if key != "pagination"}
        items = body.get(list_key)
        if not isinstance(items, list) or not items:
            return body
        spoiled = [dict(item) if isinstance(item, dict) else item for item in items]
        first = spoiled[: self.records or 1]
        if self.kind == "huge-page":
            wanted = self.records or HUGE_PAGE_RECORDS
            spoiled = (spoiled * math.ceil(wanted / len(spoiled)))[:wanted]
        elif self.kind == "missing-fields":
            for record in first:
                for name in self.fields or (id_field, "UpdatedDateUTC"):
                    record.pop(name, None)
        elif self.kind == "wrong-types":
            for record in first:
                record[id_field] = 12345
                record["UpdatedDateUTC"] = 1_700_000_000
                record["Status"] = ["not", "a", "status"]
            spoiled += ["not a record", None, 7]
        elif self.kind == "oversized-record":
            noise = random.Random(self.id).randbytes((self.size_bytes or OVERSIZED_BYTES) * 3 // 4)
            first[0]["EmulatorPadding"] = base64.b64encode(noise).decode()
        return {**body, list_key: spoiled}


class FaultBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> Fault:
        kind = ALIASES.get(str(spec.get("kind", "")), str(spec.get("kind", "")))
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        count = spec.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise ValueError("count must be a positive integer")
        hold = spec.get("holdSeconds", 30.0)
        if not isinstance(hold, int | float) or hold < 0:
            raise ValueError("holdSeconds must be a non-negative number")
        retry_after = spec.get("retryAfter")
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise ValueError("retryAfter must be a non-negative integer")
        records = spec.get("records")
        if records is not None and (not isinstance(records, int) or records < 1):
            raise ValueError("records must be a positive integer")
        fields = spec.get("fields")
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            raise ValueError("fields must be a list of field names")
        size = spec.get("bytes")
        if size is not None and (not isinstance(size, int) or size < 1):
            raise ValueError("bytes must be a positive integer")
        fault = Fault(
            next(self._ids),
            kind,
            count,
            spec.get("tenantId"),
            spec.get("path"),
            float(hold),
            retry_after,
            records,
            tuple(fields) if fields is not None else None,
            size,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, tenant_id: str | None, path: str) -> Fault | None:
        """The first matching fault, consuming one of its calls."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(tenant_id, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]
