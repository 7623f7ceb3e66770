"""Imported Xero records in DynamoDB: one item per record, written only when the record changed.

Item (models.XeroRecord): partition `{client_id}#{resource}`, sort key the Xero id; `body` is the record's JSON
exactly as Xero returned it, compressed (record_bodies.py); its UpdatedDateUTC (epoch ms), status and, on resources
that hold contacts, its contact's ContactID are copied out (the data API filters on them).
"Unchanged" is decided against the stored body (BatchGetItem; its read units are the whole item's, whatever it
projects): the same record encodes to the same bytes, and bytes that differ are decoded and compared as canonical
JSON (sorted keys), so a new dictionary or zlib build rewrites nothing. An unchanged record costs no write.
Xero's UpdatedDateUTC only moves forward: a record whose stamp is older than the stored one's is an earlier version
(a stale answer) and is counted unchanged, the stored one kept; a record without a stamp, or stored without one, is
compared by its body alone.
A first import into an empty partition reads only what it wrote itself (a record Xero showed on two pages).

Writes go through BatchWriteItem (25 a request); PynamoDB resends unprocessed items with backoff, which is what
DynamoDB throttling looks like to a batch writer.

How many records each resource holds is kept beside its checkpoint (item `_count#{resource}` of the Checkpoints
table, for the client overview): every write adds what it inserted or deleted, and a whole re-read sets it to what
Xero showed. A write that changes the count is marked in flight on that item first and unmarked as it is counted,
so a writer that dies in between (a killed Lambda, writes that failed half-way) leaves the mark behind; the end of
the resource's next pass finds it and counts the stored records again (`settle_count`). The same item keeps the
latest UpdatedDateUTC written (`latest_updated_ms`, raised by a conditional write after each write of stamped
records): when the resource's data last changed in Xero.

What cannot be stored is rejected, never half-stored, and the stored version (if any) is kept as it was: an entry
of the list that is not a JSON object, a record without its id (or with one that is not text a key can hold), a
record of a stamped resource without a Xero UpdatedDateUTC, a record whose item would be over DynamoDB's 400 KB.
Text Xero sends with lone surrogates (valid JSON escapes, not encodable as UTF-8) is kept exactly, as escapes.
"""

import json
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from xero_sync.catalogue import ResourceSpec
from xero_sync.ids import is_uuid
from xero_sync.models import (
    COUNT_PREFIX,
    PassCheckpoint,
    RecordCount,
    XeroRecord,
    checkpoint_items,
    condition_failed,
)
from xero_sync.record_bodies import Record, decode_body, encode_body
from xero_sync.xero_dates import parse_ms_date

BATCH_GET_LIMIT = 100
# DynamoDB's item limit is 400 KB with its attribute names and the other attributes: the body gets what is left.
MAX_BODY_BYTES = 400 * 1024 - 4 * 1024
MAX_ID_BYTES = 1024  # a sort key's limit


@dataclass
class Counts:
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    rejected: int = 0  # fetched but not storable (see the module's docstring); their reasons go to the run

    def add(self, other: "Counts") -> None:
        for name, value in other.as_dict().items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return {name: int(value) for name, value in asdict(self).items()}


@dataclass
class Applied:
    counts: Counts
    changed: list[Record]  # inserted or updated records, as fetched
    stored_ids: set[str] = field(default_factory=set)  # every id the page holds that is stored (changed or not)
    rejected: list[str] = field(default_factory=list)  # why each rejected record was not stored


def _canonical(record: Record) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def clean_text(value: Any) -> str | None:
    """A string attribute DynamoDB can hold (lone surrogates replaced); None for anything that is not text."""
    if not isinstance(value, str):
        return None
    return value.encode("utf-8", "replace").decode()


def is_key_text(value: Any) -> bool:
    """Text a record's sort key can hold: a non-empty string, no lone surrogates, at most MAX_ID_BYTES of UTF-8."""
    return isinstance(value, str) and bool(value) and clean_text(value) == value and len(value.encode()) <= MAX_ID_BYTES


def split_storable(spec: ResourceSpec, records: list[Any]) -> tuple[list[Record], list[str]]:
    """The records of a page that can be stored, and why each of the others cannot."""
    good: list[Record] = []
    problems: list[str] = []
    for position, record in enumerate(records, start=1):
        problem = _problem(spec, record)
        if problem is None:
            good.append(record)
        else:
            problems.append(f"record {position} of a page: {problem}")
    return good, problems


def _problem(spec: ResourceSpec, record: Any) -> str | None:
    if not isinstance(record, dict):
        return f"not a JSON object ({type(record).__name__})"
    rid = record.get(spec.id_field)
    if not isinstance(rid, str) or not rid:
        return f"no {spec.id_field}" if rid is None else f"{spec.id_field} is not a non-empty string"
    if not is_key_text(rid):
        return f"{spec.id_field} is not text a key can hold"
    if spec.stamped and parse_ms_date(record.get("UpdatedDateUTC")) is None:
        return f"{spec.id_field} {rid}: no Xero UpdatedDateUTC"
    return None


def _stamp(record: Record) -> int | None:
    """Xero's UpdatedDateUTC of a record, in epoch milliseconds."""
    return parse_ms_date(record.get("UpdatedDateUTC"))


def _older(updated_ms: int | None, stored_ms: float | None) -> bool:
    """Whether a record stamped `updated_ms` is an earlier version than the one stored, stamped `stored_ms`."""
    return updated_ms is not None and stored_ms is not None and updated_ms < stored_ms


def record_id(spec: ResourceSpec, record: Record) -> str:
    return str(record[spec.id_field])


# Where a record names its contact when it has no Contact of its own: a payment's is its document's.
CONTACT_HOLDERS = ("Invoice", "CreditNote", "Prepayment", "Overpayment")


def contact_of(record: Record, holders: tuple[str, ...] = CONTACT_HOLDERS) -> str | None:
    """The ContactID of the contact a record belongs to (its Contact, or that of its document under one of
    `holders`), or None."""
    for holder in (record, *(record.get(key) for key in holders)):
        contact = holder.get("Contact") if isinstance(holder, dict) else None
        if isinstance(contact, dict) and (cid := clean_text(contact.get("ContactID"))):
            return cid
    return None


def _filterable_contact(record: Record) -> str | None:
    """The record's ContactID as the data API's `contactId` filter reads it: a UUID (stored as its 16 bytes), as
    Xero's ids are; anything else Xero might send cannot be filtered on."""
    contact = contact_of(record)
    return contact if contact is not None and is_uuid(contact) else None


@dataclass
class ResourceState:
    """What the checkpoints say of one resource of a client (RecordStore.imports)."""

    records: int | None = None  # None: nothing counted yet (no `_count#` item)
    latest_updated_ms: int | None = None
    checkpoint: PassCheckpoint | None = None

    @property
    def unavailable_since(self) -> datetime | None:
        return self.checkpoint.unavailable_since if self.checkpoint else None

    @property
    def imported(self) -> bool:
        """Whether a pass over the resource ever completed (a mark was moved)."""
        cp = self.checkpoint
        return cp is not None and bool(cp.full_synced_at or cp.modified_since or cp.journal_offset)

    @property
    def last_imported_at(self) -> datetime | None:
        """When a pass over the resource last completed. Checkpoints saved before `imported_at` existed: their last
        save, unless it was a page of a pass still in progress."""
        cp = self.checkpoint
        if cp is None or not self.imported:
            return None
        return cp.imported_at or (cp.updated_at if cp.pass_kind is None else None)


class RecordStore:
    def __init__(self, client_id: str) -> None:
        self.client_id = client_id

    def partition(self, resource: str) -> str:
        return XeroRecord.partition_key(self.client_id, resource)

    def _stored(self, resource: str, ids: list[str]) -> dict[str, XeroRecord]:
        """The stored items of these ids (their bodies and stamps), by id."""
        partition = self.partition(resource)
        attributes = [XeroRecord.xero_id.attr_name, XeroRecord.body.attr_name, XeroRecord.updated_ms.attr_name]
        found: dict[str, XeroRecord] = {}
        for start in range(0, len(ids), BATCH_GET_LIMIT):
            keys = [(partition, rid) for rid in ids[start : start + BATCH_GET_LIMIT]]
            for item in XeroRecord.batch_get(keys, attributes_to_get=attributes):
                found[item.xero_id] = item
        return found

    def apply(
        self,
        spec: ResourceSpec,
        records: list[Any],
        before_write: Callable[[list[Record]], None] | None = None,
        may_be_stored: Collection[str] | None = None,
    ) -> Applied:
        """Stores what changed among `records` (one page); returns the counts, the changed records and what was
        rejected (the stored version of a rejected record, if any, is left as it was). `before_write` gets the
        changed records before they are written: what it saves about them survives a writer that dies right after
        the write (the next pass finds those records unchanged). `may_be_stored`: the
        only ids of the resource that can be stored, when the caller knows (a first import into an empty partition:
        the ids it wrote so far); the others are new, and no stored version of theirs is read."""
        storable, rejected = split_storable(spec, records)
        counts = Counts(fetched=len(records), rejected=len(rejected))
        by_id: dict[str, Record] = {}
        for record in storable:
            rid = record_id(spec, record)
            kept = by_id.get(rid)
            # A record seen twice in a page: its latest version wins (the later copy, when they are stamped alike).
            if kept is None or not _older(_stamp(record), _stamp(kept)):
                by_id[rid] = record
        duplicates = len(storable) - len(by_id)
        bodies = {rid: encode_body(record, spec.name, spec.id_field) for rid, record in by_id.items()}
        for rid in [rid for rid, body in bodies.items() if len(body) > MAX_BODY_BYTES]:
            rejected.append(f"{spec.id_field} {rid}: over DynamoDB's 400 KB item limit ({len(bodies[rid]) // 1024} KB)")
            counts.rejected += 1
            del by_id[rid]
        maybe = list(by_id) if may_be_stored is None else [rid for rid in by_id if rid in may_be_stored]
        stored = self._stored(spec.name, maybe)
        partition = self.partition(spec.name)
        changed: list[Record] = []
        items: list[XeroRecord] = []
        for rid, record in by_id.items():
            updated_ms = _stamp(record)
            held = stored.get(rid)
            if held is None:
                counts.inserted += 1
            elif (
                held.body == bodies[rid]
                or _older(updated_ms, held.updated_ms)  # a stale answer: the stored version is later
                or _canonical(decode_body(held.body, spec.id_field, rid)) == _canonical(record)
            ):
                counts.unchanged += 1
                continue
            else:
                counts.updated += 1
            items.append(
                XeroRecord(
                    partition=partition,
                    xero_id=rid,
                    updated_ms=updated_ms,
                    status=clean_text(record.get(spec.status_field)) if spec.status_field else None,
                    contact_id=_filterable_contact(record) if spec.holds_contacts else None,
                    body=bodies[rid],
                )
            )
            changed.append(record)
        if before_write is not None and changed:
            before_write(changed)
        with self._counted(spec.name, counts.inserted), XeroRecord.batch_write() as batch:
            for item in items:
                batch.save(item)
        stamps = [int(item.updated_ms) for item in items if item.updated_ms is not None]
        if stamps:
            self._raise_latest_updated(spec.name, max(stamps))
        counts.unchanged += duplicates
        return Applied(counts, changed, set(by_id), rejected)

    def is_empty(self, resource: str) -> bool:
        """Whether no record of the resource is stored (one Query of at most one key)."""
        keys = XeroRecord.query(
            self.partition(resource), limit=1, consistent_read=True, attributes_to_get=[XeroRecord.xero_id.attr_name]
        )
        return next(iter(keys), None) is None

    def stored_ids(self, resource: str) -> Iterator[str]:
        for item in XeroRecord.query(self.partition(resource), attributes_to_get=[XeroRecord.xero_id.attr_name]):
            yield item.xero_id

    def delete(self, resource: str, ids: Iterable[str]) -> int:
        partition = self.partition(resource)
        gone = list(ids)
        with self._counted(resource, -len(gone)), XeroRecord.batch_write() as batch:
            for rid in gone:
                batch.delete(XeroRecord(partition=partition, xero_id=rid))
        return len(gone)

    # --- how many records each resource holds -------------------------------------------------------------------
    def _count_item(self, resource: str) -> RecordCount:
        return RecordCount(client_id=self.client_id, resource=f"{COUNT_PREFIX}{resource}")

    @contextmanager
    def _counted(self, resource: str, delta: int) -> Iterator[None]:
        """Around a write that changes how many records the resource holds: marked in flight before it, counted
        (and unmarked) after it. If the write or its count never happens, the mark stays for settle_count."""
        if not delta:
            yield
            return
        self._count_item(resource).update(
            actions=[RecordCount.count_writes_in_flight.add(1), RecordCount.updated_at.set(datetime.now(UTC))]
        )
        yield
        self.adjust_count(resource, delta)

    def _raise_latest_updated(self, resource: str, updated_ms: int) -> None:
        """Moves the resource's latest-change mark up to `updated_ms` (never down: a conditional write)."""
        try:
            self._count_item(resource).update(
                actions=[RecordCount.latest_updated_ms.set(updated_ms), RecordCount.updated_at.set(datetime.now(UTC))],
                condition=RecordCount.latest_updated_ms.does_not_exist() | (RecordCount.latest_updated_ms < updated_ms),
            )
        except UpdateError as error:
            if not condition_failed(error):
                raise

    def adjust_count(self, resource: str, delta: int) -> None:
        """A marked write happened: its records are counted and its mark taken off."""
        self._count_item(resource).update(
            actions=[
                RecordCount.record_count.add(delta),
                RecordCount.count_writes_in_flight.add(-1),
                RecordCount.updated_at.set(datetime.now(UTC)),
            ]
        )

    def set_count(self, resource: str, count: int) -> None:
        """The resource holds exactly `count` records (a whole re-read showed them all, or they were counted)."""
        self._count_item(resource).update(
            actions=[
                RecordCount.record_count.set(count),
                RecordCount.count_writes_in_flight.remove(),
                RecordCount.updated_at.set(datetime.now(UTC)),
            ]
        )

    def settle_count(self, resource: str) -> None:
        """After a pass over the resource (its only writer): a write left marked in flight died before it was
        counted, so the count is taken again from the stored records themselves."""
        try:
            item = RecordCount.get(self.client_id, f"{COUNT_PREFIX}{resource}", consistent_read=True)
        except DoesNotExist:
            return
        if item.count_writes_in_flight:
            self.set_count(resource, XeroRecord.count(self.partition(resource), consistent_read=True))

    def imports(self) -> dict[str, "ResourceState"]:
        """Per resource ever imported or tried, from one Query of the client's checkpoints: its pass checkpoint and,
        beside it, its `_count#` item (records stored, the latest UpdatedDateUTC written)."""
        states: dict[str, ResourceState] = {}
        for item in checkpoint_items(self.client_id):
            if isinstance(item, RecordCount):
                state = states.setdefault(item.resource.removeprefix(COUNT_PREFIX), ResourceState())
                state.records = int(item.record_count or 0)
                state.latest_updated_ms = None if item.latest_updated_ms is None else int(item.latest_updated_ms)
            elif isinstance(item, PassCheckpoint):  # not the engine's own items (PendingContacts)
                states.setdefault(item.resource, ResourceState()).checkpoint = item
        return states

    def counts(self) -> dict[str, int]:
        """Records stored per resource (resources never imported are left out)."""
        found = RecordCount.query(self.client_id, RecordCount.resource.startswith(COUNT_PREFIX))
        return {item.resource.removeprefix(COUNT_PREFIX): int(item.record_count or 0) for item in found}

    def bodies(self, spec: ResourceSpec, ids: list[str]) -> dict[str, Record]:
        return {rid: decode_body(item.body, spec.id_field, rid) for rid, item in self._stored(spec.name, ids).items()}

    def records(self, spec: ResourceSpec) -> Iterator[Record]:
        """Every stored record of a resource, in Xero id order (streamed page by page)."""
        for item in XeroRecord.query(self.partition(spec.name)):
            yield decode_body(item.body, spec.id_field, item.xero_id)
