"""Look at what the sync stored for a client: export it, or verify it against a full read from Xero.

    export_client(client_id, out_dir)  -> one JSONL file per resource ({Resource}.jsonl), each line a record in
                                          Xero's JSON shape (as Xero shows it now: rendering.py), sorted by Xero id
    verify_client(client_id)           -> the differences between what is stored and a full read from Xero now
                                          (none expected after a sync, with no changes in Xero since)

Both run in this process with the functions' environment (tables, Xero URLs), as the local stack sets it:
`python -m local verify` (local/cli/export_verify.py) points it at the running stack first; the integration tests
call it on moto.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xero_sync.catalogue import CATALOGUE, ResourceSpec
from xero_sync.models import Client
from xero_sync.record_bodies import Record
from xero_sync.record_store import RecordStore, record_id
from xero_sync.rendering import Renderer


@dataclass(frozen=True)
class Difference:
    resource: str
    xero_id: str
    kind: str  # "missing" (in Xero, not stored), "extra" (stored, not in Xero) or "changed"
    fields: list[str] = field(default_factory=list)  # top-level keys that differ, for "changed"

    def __str__(self) -> str:
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.resource} {self.xero_id}: {self.kind}{detail}"


def find_client(client_id: str) -> Client:
    """A client by its id alone (the client-id index names its practice)."""
    keys = list(Client.by_client_id.query(client_id, limit=2))
    if len(keys) != 1:
        raise LookupError(f"no client {client_id}")
    return Client.get(keys[0].practice_id, client_id)


def export_client(client_id: str, out_dir: str | Path) -> dict[str, int]:
    """Writes {Resource}.jsonl for every resource (empty files included); returns the records written per resource."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = RecordStore(client_id)
    renderer = Renderer(client_id, store)
    written: dict[str, int] = {}
    for spec in CATALOGUE:
        count = 0
        with (out / f"{spec.name}.jsonl").open("w", encoding="utf-8") as file:
            for record in renderer.render_all(spec, store.records(spec)):  # streamed, a page at a time in memory
                file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                count += 1
        written[spec.name] = count
    return written


def verify_client(
    client_id: str, api: Any = None, stored_records: Callable[[ResourceSpec], Iterable[Record]] | None = None
) -> list[Difference]:
    """Reads the whole organisation from Xero (as a full sync would, paced the same way) and compares it, record by
    record, with what is stored as a reader sees it (rendering.py). `api` is an XeroApi to read through (by default
    one on the client's token set); `stored_records` what a reader sees of a resource (by default read from the
    Records table through the renderer; the CLI reads it through the data API)."""
    from xero_sync.engine import read_whole
    from xero_sync.sync_worker import client_api

    if api is None:
        client = find_client(client_id)
        if not client.token_set_id:
            raise LookupError(f"client {client_id} has no Xero token set (never linked, or unlinked)")
        api = client_api(client.tenant_id, client.token_set_id)
    if stored_records is None:
        store = RecordStore(client_id)
        renderer = Renderer(client_id, store)
        stored_records = lambda spec: renderer.render_all(spec, store.records(spec))  # noqa: E731
    differences: list[Difference] = []
    for spec in CATALOGUE:
        xero: dict[str, dict[str, Any]] = {}
        for page in read_whole(api, spec, details=True):
            xero.update((record_id(spec, r), r) for r in page)
        stored = {record_id(spec, r): r for r in stored_records(spec)}
        for rid in sorted(xero.keys() - stored.keys()):
            differences.append(Difference(spec.name, rid, "missing"))
        for rid in sorted(stored.keys() - xero.keys()):
            differences.append(Difference(spec.name, rid, "extra"))
        for rid in sorted(xero.keys() & stored.keys()):
            if xero[rid] != stored[rid]:
                theirs, ours = xero[rid], stored[rid]
                keys = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
                differences.append(Difference(spec.name, rid, "changed", keys))
    return differences
