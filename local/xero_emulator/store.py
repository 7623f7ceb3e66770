"""In-memory organisations and their records.

Records are stored exactly as the paged API shows them (with line items). A stored record is never mutated: edits
replace it with a changed copy, so responses can be serialised outside the organisation's lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from local.xero_emulator.resources import RESOURCES


class Table:
    """The records of one resource in one organisation, in creation order."""

    def __init__(self, id_field: str, alt_keys: tuple[str, ...]) -> None:
        self.id_field = id_field
        self.alt_keys = alt_keys
        self.records: dict[str, dict[str, Any]] = {}
        # When each record last changed (ms). Kept apart from the JSON because some resources (BankTransfers,
        # Journals) show no UpdatedDateUTC yet still answer If-Modified-Since.
        self.modified: dict[str, int] = {}
        self._alt: dict[str, str] = {}
        self.version = 0

    def put(self, record: dict[str, Any], modified_ms: int) -> None:
        rid = str(record[self.id_field])
        self.records[rid] = record
        self.modified[rid] = modified_ms
        for key in self.alt_keys:
            value = record.get(key)
            if value not in (None, ""):
                self._alt[str(value).lower()] = rid
        self.version += 1

    def remove(self, rid: str) -> dict[str, Any] | None:
        record = self.records.pop(rid, None)
        self.modified.pop(rid, None)
        if record is not None:
            for key in self.alt_keys:
                value = record.get(key)
                if value not in (None, "") and self._alt.get(str(value).lower()) == rid:
                    del self._alt[str(value).lower()]
            self.version += 1
        return record

    def find(self, key: str) -> dict[str, Any] | None:
        """By id (case-insensitive) or by one of the alternative keys (InvoiceNumber, ContactNumber...)."""
        record = self.records.get(key) or self.records.get(key.lower())
        if record is not None:
            return record
        rid = self._alt.get(key.lower())
        return self.records.get(rid) if rid else None

    def __len__(self) -> int:
        return len(self.records)


@dataclass
class Organisation:
    tenant_id: str
    name: str
    user_ids: list[str]
    seed: Any
    size: str
    tables: dict[str, Table] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    journal_ids: list[str] = field(default_factory=list)  # index n-1 holds JournalNumber n
    journals_by_source: dict[str, list[str]] = field(default_factory=dict)
    # Per-organisation document numbering, continued by /changes.
    counters: dict[str, int] = field(default_factory=dict)
    last_change_ms: int = 0

    def __post_init__(self) -> None:
        for name, resource in RESOURCES.items():
            self.tables.setdefault(name, Table(resource.id_field, resource.alt_keys))

    def table(self, name: str) -> Table:
        return self.tables[name]

    def counts(self) -> dict[str, int]:
        return {name: len(table) for name, table in self.tables.items()}

    def next_number(self, counter: str) -> int:
        self.counters[counter] = self.counters.get(counter, 0) + 1
        return self.counters[counter]
