"""The data API's logic: a client's imported Xero data, read-only, as Xero shows it now (rendering.py).

Every read is scoped to the caller's practice (clients.load_client) and to one client's partition of one resource;
records come back in Xero id order. Costs: the organisation view is one GetItem (the client), one Query of the
Records partition of Organisation and one Query of the client's checkpoints (counts and marks live there too); a page
of records one Query (a filtered one at most MAX_FILTERED_QUERIES) or, for `ids`, one BatchGetItem, plus what
rendering resolves (one BatchGetItem per 100 distinct contacts the page names).
"""

import hashlib
import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from pynamodb.expressions.condition import Condition

from xero_sync.catalogue import BY_NAME, CATALOGUE, ResourceSpec
from xero_sync.clients import load_client
from xero_sync.errors import InvalidCursor, InvalidParameter, RecordNotFound, ResourceNotFound
from xero_sync.models import XeroRecord
from xero_sync.paging import decode_cursor, encode_cursor
from xero_sync.record_bodies import Record, decode_body
from xero_sync.record_store import MAX_ID_BYTES, RecordStore, ResourceState, is_key_text
from xero_sync.rendering import Renderer
from xero_sync.schemas import ResourceImport, XeroOrganisationView, XeroRecordPage
from xero_sync.xero_dates import from_ms

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_IDS = 100  # one BatchGetItem
# A filtered page reads the partition in Queries of this many records whatever its `limit` (Queries of `limit` read a
# sparse filter's partition one record a request), and at most MAX_FILTERED_QUERIES of them, so that a filter few
# records match never reads a large partition to its end in one request (the function's 29 s): the page then ends
# short, even empty, with a cursor where the reads stopped.
FILTERED_QUERY_SIZE = MAX_PAGE_SIZE
MAX_FILTERED_QUERIES = 10
# Lambda answers at most 6 MB, the body a JSON string inside it (quotes escaped): a page holds records while they take
# at most this much there, leaving the rest for the envelope and headers, and the next page starts after its last.
MAX_PAGE_BYTES = 5 * 1024 * 1024
RENDER_BATCH = 50  # records decoded and rendered at a time, until the page is full
ORGANISATION = BY_NAME["Organisation"]
# A cursor is "{filter fingerprint}|{last Xero id}": one from another client, resource or filter is refused, and so
# is one whose id no key can hold (any id the store holds may follow, newlines included).
_CURSOR_PATTERN = r"(?s)[0-9a-f]{16}\|.+"


@cache
def component_schemas() -> dict[str, Any]:
    """Xero's record schemas, as the OpenAPI document's components (xero_schemas.json, scripts/xero-schemas.py)."""
    document = json.loads(Path(__file__).with_name("xero_schemas.json").read_text())
    return dict(document["schemas"])


def resource_spec(resource: str) -> ResourceSpec:
    spec = BY_NAME.get(resource)
    if spec is None:
        raise ResourceNotFound([s.name for s in CATALOGUE])
    return spec


def _ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # a time without an offset is UTC, as Xero's
    return int(aware.timestamp() * 1000)


def organisation_view(practice_id: str, client_id: str) -> XeroOrganisationView:
    load_client(practice_id, client_id)
    store = RecordStore(client_id)
    organisation = next(iter(XeroRecord.query(store.partition(ORGANISATION.name), limit=1)), None)
    rendered = None
    if organisation is not None:
        body = decode_body(organisation.body, ORGANISATION.id_field, organisation.xero_id)
        (rendered,) = Renderer(client_id, store).render(ORGANISATION, [body])
    states = store.imports()  # one Query: each resource's checkpoint and its `_count#` item
    resources = []
    for spec in CATALOGUE:
        state = states.get(spec.name) or ResourceState()
        resources.append(
            ResourceImport(
                resource=spec.name,
                records=state.records or 0,
                last_imported_at=state.last_imported_at,
                last_changed_at=None if state.latest_updated_ms is None else from_ms(state.latest_updated_ms),
            )
        )
    return XeroOrganisationView(client_id=client_id, organisation=rendered, resources=resources)


def _fingerprint(
    client_id: str,
    resource: str,
    since_ms: int | None,
    status: str | None,
    contact: str | None,
    ids: list[str] | None,
) -> str:
    bound_to = [client_id, resource, since_ms, status, contact] + ([sorted(ids)] if ids is not None else [])
    return hashlib.sha256(json.dumps(bound_to).encode()).hexdigest()[:16]


def _parse_ids(ids: str) -> list[str]:
    wanted = list(dict.fromkeys(part.strip() for part in ids.split(",")))
    if any(not rid for rid in wanted):
        raise InvalidParameter("query.ids", "an empty id")
    # A key over DynamoDB's limit is its ValidationException, not a miss: no record has one (split_storable)
    if any(len(rid.encode()) > MAX_ID_BYTES for rid in wanted):
        raise InvalidParameter("query.ids", f"an id over {MAX_ID_BYTES} bytes")
    if len(wanted) > MAX_IDS:
        raise InvalidParameter("query.ids", f"at most {MAX_IDS} ids")
    return wanted


def _filter(since_ms: int | None, status: str | None, contact: str | None) -> Condition | None:
    parts: list[Condition] = []
    if since_ms is not None:
        parts.append(XeroRecord.updated_ms >= since_ms)
    if status is not None:
        parts.append(XeroRecord.status == status)
    if contact is not None:
        parts.append(XeroRecord.contact_id == contact)
    condition = parts[0] if parts else None
    for part in parts[1:]:
        condition = condition & part
    return condition


def _matches(item: XeroRecord, since_ms: int | None, status: str | None, contact: str | None) -> bool:
    return (
        (since_ms is None or (item.updated_ms is not None and item.updated_ms >= since_ms))
        and (status is None or item.status == status)
        and (contact is None or item.contact_id == contact)
    )


def _rendered_fitting(renderer: Renderer, spec: ResourceSpec, items: list[XeroRecord]) -> list[Record]:
    """The items' records, rendered, from the first, as many as fit in a page's MAX_PAGE_BYTES (always one: a page
    moves on). Decoded and rendered a few at a time: a page of large records stops once it is full, not after
    holding every record it read (its memory would grow with `limit`, not with the page)."""
    renderer.read_contacts(item.contact_id for item in items if item.contact_id is not None)
    records: list[Record] = []
    used = 0
    for start in range(0, len(items), RENDER_BATCH):
        batch = items[start : start + RENDER_BATCH]
        for record in renderer.render(spec, [decode_body(item.body, spec.id_field, item.xero_id) for item in batch]):
            used += len(json.dumps(json.dumps(record)))  # as it sits in the Lambda response: encoded, then escaped
            if used > MAX_PAGE_BYTES and records:
                return records
            records.append(record)
    return records


def _page(
    partition: str, condition: Condition | None, limit: int, after: str | None
) -> tuple[list[XeroRecord], str | None]:
    """Up to `limit` records of the partition after the id `after`, and the id the next page starts after (None once
    the partition is read to its end). Unfiltered, that is one Query of `limit` (more only past DynamoDB's 1 MB)."""
    start = {"pk": {"S": partition}, "id": {"S": after}} if after is not None else None
    size = limit if condition is None else FILTERED_QUERY_SIZE
    query = XeroRecord.query(partition, filter_condition=condition, page_size=size, last_evaluated_key=start)
    items: list[XeroRecord] = []
    for queries, answer in enumerate(query.page_iter, start=1):  # one DynamoDB Query answer at a time
        matched = answer.get("Items", [])
        room = limit - len(items)
        items += [XeroRecord.from_raw_data(raw) for raw in matched[:room]]
        if len(matched) > room:  # the page is full inside this answer: the next starts after its last record
            return items, items[-1].xero_id
        last_key = answer.get("LastEvaluatedKey")
        if not last_key:
            return items, None
        if len(items) == limit or (condition is not None and queries == MAX_FILTERED_QUERIES):
            return items, str(last_key["id"]["S"])
    return items, None


def list_records(
    practice_id: str,
    client_id: str,
    resource: str,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    updated_since: datetime | None = None,
    status: str | None = None,
    ids: str | None = None,
    contact_id: str | None = None,
) -> XeroRecordPage:
    """One page of a resource's records, filtered; the parameters are checked before the client is read."""
    spec = resource_spec(resource)
    if contact_id is not None and not spec.holds_contacts:
        holders = ", ".join(s.name for s in CATALOGUE if s.holds_contacts)
        raise InvalidParameter("query.contactId", f"{spec.name} records hold no contact (only {holders} do)")
    wanted = _parse_ids(ids) if ids is not None else None
    since_ms = _ms(updated_since) if updated_since is not None else None
    fingerprint = _fingerprint(client_id, spec.name, since_ms, status, contact_id, wanted)
    after = None
    if cursor is not None:
        token = decode_cursor(cursor, _CURSOR_PATTERN)
        cursor_fingerprint, after = token.split("|", 1)
        if cursor_fingerprint != fingerprint or not is_key_text(after):
            raise InvalidCursor()
    load_client(practice_id, client_id)
    store = RecordStore(client_id)
    partition = store.partition(spec.name)
    next_cursor = None
    if wanted is not None:  # in id order, as a Query reads them (UTF-8 bytes sort as code points)
        asked = [rid for rid in wanted if after is None or rid > after]
        found = XeroRecord.batch_get([(partition, rid) for rid in asked]) if asked else []
        items = sorted((i for i in found if _matches(i, since_ms, status, contact_id)), key=lambda i: i.xero_id)
    else:
        items, last_id = _page(partition, _filter(since_ms, status, contact_id), limit, after)
        if last_id is not None:
            next_cursor = encode_cursor(f"{fingerprint}|{last_id}")
    records = _rendered_fitting(Renderer(client_id, store), spec, items)
    if len(records) < len(items):
        next_cursor = encode_cursor(f"{fingerprint}|{items[len(records) - 1].xero_id}")
    return XeroRecordPage(resource=spec.name, items=records, next_cursor=next_cursor)


def get_record(practice_id: str, client_id: str, resource: str, xero_id: str) -> Record:
    spec = resource_spec(resource)
    load_client(practice_id, client_id)
    store = RecordStore(client_id)
    found = store.bodies(spec, [xero_id])  # BatchGetItem: the function reads records by Query and batch only
    if xero_id not in found:
        raise RecordNotFound()
    (record,) = Renderer(client_id, store).render(spec, [found[xero_id]])
    return record
