"""Reading a resource page by page: one iterator per paging style of the catalogue (catalogue.Paging).

Each yields the answers in order, each with where the next page begins (the checkpoint's `next_page`: a page number,
or for offset paging the last number read) and whether the read ends there, with or without proof it saw every
record. The end is decided when the answer comes, and acted on by the caller after it stored the page: what was read
is stored either way. Nothing is called before the caller asks for the next page.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from xero_sync.catalogue import OFFSET_GAP_MAX, Paging, ResourceSpec
from xero_sync.engine.outcomes import (
    PAGINATION_MISMATCH,
    PAGINATION_MISSING,
    PAGINATION_RESUMED,
    PAGINATION_STALLED,
    NotTheRecordAskedFor,
    OutOfSequence,
    PageRepeated,
    UnprovenRead,
)
from xero_sync.record_bodies import Record
from xero_sync.record_store import record_id
from xero_sync.xero_api import Page, XeroApi

Fetch = Callable[[dict[str, str]], Page]  # one list call, given the paging parameters


@dataclass(frozen=True)
class PageRead:
    answer: Page
    position: int  # where this page began
    next_position: int  # where the next one begins
    last: bool
    unproven: str | None = None  # the read ends here without proof it saw everything (a PAGINATION_* warning)


def start_of(spec: ResourceSpec) -> int:
    """The position of a read from the beginning."""
    return 0 if spec.paging is Paging.OFFSET else 1


def paging_params(spec: ResourceSpec, position: int) -> dict[str, str]:
    """The query parameters that ask for the page at `position`."""
    if spec.paging is Paging.PAGE_SIZE:
        return {"page": str(position), "pageSize": str(spec.page_size)}
    if spec.paging is Paging.PAGE:
        return {"page": str(position)}
    if spec.paging is Paging.OFFSET:
        return {"offset": str(position)}
    return {}


def _with_pagination(spec: ResourceSpec, fetch: Fetch, page: int, from_start: bool) -> Iterator[PageRead]:
    """pageSize endpoints: Xero's `pagination` proves the end (pageCount; itemCount against the distinct records
    read: a record shown twice, as a list that shifted between two pages shows one, does not stand for the one it
    pushed out). A missing or disagreeing proof ends the read unproven: without both counts, a short list would pass
    for the whole of it. So does a read resumed from another invocation's checkpoint: the ids it read there are not
    at hand, and no checkpoint could hold them (100,000 invoices name 3.6 MB of ids; an item holds 400 KB), so its
    mark stays and the next run reads from the old one (a day's changes, or, for a first import, everything again)."""
    fetched: set[object] = set()  # each record's id (a record without one counts on its own)
    while True:
        answer = fetch(paging_params(spec, page))
        fetched.update(_identity(spec, r) for r in answer.records)
        pagination = answer.pagination or {}
        page_count = _count(pagination, "pageCount")
        if page_count is None:
            yield PageRead(answer, page, page + 1, last=True, unproven=PAGINATION_MISSING)
            return
        if page < page_count:
            yield PageRead(answer, page, page + 1, last=False)
            page += 1
            continue
        item_count = _count(pagination, "itemCount")
        if item_count is None:
            yield PageRead(answer, page, page + 1, last=True, unproven=PAGINATION_MISSING)
            return
        if not from_start:
            yield PageRead(answer, page, page + 1, last=True, unproven=PAGINATION_RESUMED)
            return
        short = len(fetched) < item_count
        yield PageRead(answer, page, page + 1, last=True, unproven=PAGINATION_MISMATCH if short else None)
        return


def _count(pagination: dict[str, Any], name: str) -> int | None:
    """One of the counts of Xero's `pagination`, when it is one (an integer: JSON's true is not)."""
    value = pagination.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _identity(spec: ResourceSpec, record: Any) -> object:
    rid = record.get(spec.id_field) if isinstance(record, dict) else None
    return rid if isinstance(rid, str) else object()


def _numbered(spec: ResourceSpec, fetch: Fetch, page: int, from_start: bool) -> Iterator[PageRead]:
    """`page` endpoints: 100 a page, and a shorter page is the last. A page that repeats the one before is refused
    (PageRepeated): an endpoint that ignores `page` answers the same full page for ever, and the read never ends."""
    before: list[Any] | None = None
    while True:
        answer = fetch(paging_params(spec, page))
        if before is not None and _repeats(spec, answer.records, before):
            raise PageRepeated(f"{spec.name} page {page} repeats page {page - 1}")
        last = len(answer.records) < spec.page_size
        yield PageRead(answer, page, page + 1, last=last)
        if last:
            return
        before = answer.records
        page += 1


def _repeats(spec: ResourceSpec, records: list[Any], before: list[Any]) -> bool:
    """Whether a page holds what the page before held: the same records, or records of the same ids (one may have
    changed between the two calls)."""
    ids = {_identity(spec, r) for r in records}
    return records == before or (bool(ids) and ids == {_identity(spec, r) for r in before})


def _by_offset(spec: ResourceSpec, fetch: Fetch, offset: int, from_start: bool) -> Iterator[PageRead]:
    """Offset endpoints (Journals): each call reads on from the last number read; a shorter page is the last. A
    full page that names no later number ends the read unproven: reading on would loop. A page whose numbers do not
    rise in sequence from the offset asked for is refused (OutOfSequence): reading on from its last number could
    skip records Xero has."""
    while True:
        answer = fetch(paging_params(spec, offset))
        numbers = [
            int(r[spec.offset_field])
            for r in answer.records
            if isinstance(r, dict) and isinstance(r.get(spec.offset_field), int)
        ]
        for earlier, later in pairwise([offset, *numbers]):
            if not 0 < later - earlier <= OFFSET_GAP_MAX:
                raise OutOfSequence(f"{spec.name} from offset {offset}: {later} after {earlier}")
        following = numbers[-1] if numbers else offset
        if len(answer.records) < spec.page_size:
            yield PageRead(answer, offset, following, last=True)
            return
        if following == offset:
            yield PageRead(answer, offset, following, last=True, unproven=PAGINATION_STALLED)
            return
        yield PageRead(answer, offset, following, last=False)
        offset = following


def _unpaged(spec: ResourceSpec, fetch: Fetch, position: int, from_start: bool) -> Iterator[PageRead]:
    """Endpoints that answer their whole list in one call."""
    yield PageRead(fetch({}), position, position + 1, last=True)


_READERS = {
    Paging.PAGE_SIZE: _with_pagination,
    Paging.PAGE: _numbered,
    Paging.OFFSET: _by_offset,
    Paging.NONE: _unpaged,
}


def pages(spec: ResourceSpec, fetch: Fetch, position: int, from_start: bool) -> Iterator[PageRead]:
    """The pages of one read of `spec` from `position`; `from_start`: the read began at the first page in this
    invocation (so the records it counted are all the read's)."""
    return _READERS[spec.paging](spec, fetch, position, from_start)


def read_whole(
    api: XeroApi,
    spec: ResourceSpec,
    before_call: Callable[[], None] | None = None,
    details: bool = False,
) -> Iterator[list[Record]]:
    """A whole read of one resource, page by page, as Xero shows it (no If-Modified-Since; with `details`, each
    record the list abbreviates is read on its own). Raises UnprovenRead when Xero's answers cannot prove its end."""

    def fetch(params: dict[str, str]) -> Page:
        if before_call:
            before_call()
        return api.list(spec.name, spec.key, {**spec.params, **params})

    for read in pages(spec, fetch, start_of(spec), from_start=True):
        records = read.answer.records
        if details and spec.detail_by_id:
            records = [read_record(api, spec, record_id(spec, r)) for r in records]
        yield records
        if read.unproven:
            raise UnprovenRead(read.unproven)


def read_record(api: XeroApi, spec: ResourceSpec, rid: str) -> Record:
    """GET /{name}/{id}: the one record asked for. Any other answer (no record, several, another one) is refused
    (NotTheRecordAskedFor): stored as the record asked for, it would stand for one record twice and for the one asked
    for not at all, and the sweep would delete that one."""
    records = api.get(f"{spec.name}/{rid}", {}).get(spec.key)
    if not isinstance(records, list) or len(records) != 1:
        raise NotTheRecordAskedFor(f"Xero's answer for {spec.name}/{rid} holds no single record")
    record = records[0]
    if not isinstance(record, dict) or record.get(spec.id_field) != rid:
        raise NotTheRecordAskedFor(f"Xero's answer for {spec.name}/{rid} holds another record")
    return record
