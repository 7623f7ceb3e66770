"""Scripted failures: the next N matching calls fail in a chosen way."""

from __future__ import annotations

import itertools
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
)
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
        }


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
        fault = Fault(next(self._ids), kind, count, spec.get("tenantId"), spec.get("path"), float(hold), retry_after)
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
