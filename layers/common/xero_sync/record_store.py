"""Imported Xero records in DynamoDB: one item per record, written only when the record changed.

Item: partition `{client_id}#{resource}`, sort key the Xero id; `body` is the record's JSON exactly as Xero returned
it (line items inside their parent; key order kept), compact-serialised and zlib-compressed (level 6; a typical
invoice shrinks 4-6x, far below DynamoDB's 400 KB item limit); `content_hash` is the SHA-256 of the record's
canonical JSON (sorted keys), so "unchanged" is decided by reading hashes (BatchGetItem, keys and hash only) and
an unchanged record costs no write. `updated_date_utc` and `status` are copied out for queries.

Writes go through BatchWriteItem (25 a request); PynamoDB resends unprocessed items with backoff, which is what
DynamoDB throttling looks like to a batch writer.

How many records each resource holds is kept beside its checkpoint (item `_count#{resource}` of the Checkpoints
table, for the client overview): every write adds what it inserted or deleted, and a whole re-read sets it to what
Xero showed. A run killed between a page's write and its count leaves the count off by that page until the
resource's next whole re-read (every pass for resources Xero cannot filter, the weekly reconciliation for others).
"""

import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from xero_sync.catalogue import ResourceSpec
from xero_sync.models import Checkpoint, XeroRecord
from xero_sync.xero_api import parse_ms_date

Record = dict[str, Any]
BATCH_GET_LIMIT = 100
COUNT_PREFIX = "_count#"


@dataclass
class Counts:
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    def add(self, other: "Counts") -> None:
        self.fetched += other.fetched
        self.inserted += other.inserted
        self.updated += other.updated
        self.deleted += other.deleted
        self.unchanged += other.unchanged

    def as_dict(self) -> dict[str, int]:
        return {
            "fetched": self.fetched,
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
        }


@dataclass
class Applied:
    counts: Counts
    changed: list[Record]  # inserted or updated records, as fetched
    previous: dict[str, Record]  # the stored version of updated records (only when asked for)


def content_hash(record: Record) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode_body(record: Record) -> bytes:
    return zlib.compress(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode(), 6)


def decode_body(body: bytes) -> Record:
    value = json.loads(zlib.decompress(body))
    if not isinstance(value, dict):
        raise ValueError("a stored record is not a JSON object")
    return value


def record_id(spec: ResourceSpec, record: Record) -> str:
    return str(record[spec.id_field])


def _updated(record: Record) -> datetime | None:
    ms = parse_ms_date(record.get("UpdatedDateUTC"))
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms is not None else None


class RecordStore:
    def __init__(self, client_id: str) -> None:
        self.client_id = client_id

    def partition(self, resource: str) -> str:
        return XeroRecord.partition_key(self.client_id, resource)

    def _stored(self, resource: str, ids: list[str], with_body: bool) -> dict[str, XeroRecord]:
        partition = self.partition(resource)
        attributes = ["xero_id", "content_hash", "body"] if with_body else ["xero_id", "content_hash"]
        found: dict[str, XeroRecord] = {}
        for start in range(0, len(ids), BATCH_GET_LIMIT):
            keys = [(partition, rid) for rid in ids[start : start + BATCH_GET_LIMIT]]
            for item in XeroRecord.batch_get(keys, attributes_to_get=attributes):
                found[item.xero_id] = item
        return found

    def apply(self, spec: ResourceSpec, records: list[Record], keep_previous: bool = False) -> Applied:
        """Stores what changed among `records` (one page); returns the counts and the changed records."""
        counts = Counts(fetched=len(records))
        by_id: dict[str, Record] = {}
        for record in records:
            by_id[record_id(spec, record)] = record  # a record seen twice in a page: the later copy wins
        stored = self._stored(spec.name, list(by_id), keep_previous)
        partition = self.partition(spec.name)
        changed: list[Record] = []
        previous: dict[str, Record] = {}
        with XeroRecord.batch_write() as batch:
            for rid, record in by_id.items():
                digest = content_hash(record)
                old = stored.get(rid)
                if old is not None and old.content_hash == digest:
                    counts.unchanged += 1
                    continue
                if old is None:
                    counts.inserted += 1
                else:
                    counts.updated += 1
                    if keep_previous and old.body:
                        previous[rid] = decode_body(old.body)
                status = record.get(spec.status_field) if spec.status_field else None
                batch.save(
                    XeroRecord(
                        partition=partition,
                        xero_id=rid,
                        updated_date_utc=_updated(record),
                        status=str(status) if status is not None else None,
                        body=encode_body(record),
                        content_hash=digest,
                    )
                )
                changed.append(record)
        counts.unchanged += len(records) - len(by_id)
        self.adjust_count(spec.name, counts.inserted)
        return Applied(counts, changed, previous)

    def stored_ids(self, resource: str) -> Iterator[str]:
        for item in XeroRecord.query(self.partition(resource), attributes_to_get=["xero_id"]):
            yield item.xero_id

    def delete(self, resource: str, ids: Iterable[str]) -> int:
        partition = self.partition(resource)
        deleted = 0
        with XeroRecord.batch_write() as batch:
            for rid in ids:
                batch.delete(XeroRecord(partition=partition, xero_id=rid))
                deleted += 1
        self.adjust_count(resource, -deleted)
        return deleted

    # --- how many records each resource holds -------------------------------------------------------------------
    def _count_item(self, resource: str) -> Checkpoint:
        return Checkpoint(client_id=self.client_id, resource=f"{COUNT_PREFIX}{resource}")

    def adjust_count(self, resource: str, delta: int) -> None:
        if delta:
            self._count_item(resource).update(
                actions=[Checkpoint.record_count.add(delta), Checkpoint.updated_at.set(datetime.now(UTC))]
            )

    def set_count(self, resource: str, count: int) -> None:
        """After a whole re-read: the resource holds exactly what Xero showed."""
        self._count_item(resource).update(
            actions=[Checkpoint.record_count.set(count), Checkpoint.updated_at.set(datetime.now(UTC))]
        )

    def counts(self) -> dict[str, int]:
        """Records stored per resource (resources never imported are left out)."""
        found = Checkpoint.query(self.client_id, Checkpoint.resource.startswith(COUNT_PREFIX))
        return {item.resource.removeprefix(COUNT_PREFIX): int(item.record_count or 0) for item in found}

    def bodies(self, resource: str, ids: list[str]) -> dict[str, Record]:
        return {rid: decode_body(item.body) for rid, item in self._stored(resource, ids, True).items() if item.body}

    def records(self, resource: str) -> Iterator[Record]:
        """Every stored record of a resource, in Xero id order (streamed page by page)."""
        for item in XeroRecord.query(self.partition(resource)):
            yield decode_body(item.body)
