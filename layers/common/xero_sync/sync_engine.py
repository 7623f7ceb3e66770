"""The sync engine: imports one Xero organisation into DynamoDB, all of it the first time, then what changed.

One generic pass walks every resource of the catalogue (no per-resource fetch loop):
- kinds of pass: `initial` (nothing imported yet), `full` (a reconciliation: asked for, or the resource's last one
  is older than FULL_RECONCILIATION_SECONDS) and `incremental` (If-Modified-Since from the resource's checkpoint,
  frozen for the whole pass, or Journals from the last JournalNumber). Resources Xero cannot filter, and those whose
  deletes make records vanish (Items, ContactGroups), are re-read whole on every pass and diffed.
- every page is stored (only changed records are written) and then checkpointed, so a run stopped anywhere resumes
  from its next page; a pass's mark (Xero's clock when it began, less an overlap) becomes the resource's
  If-Modified-Since only when the pass completes.
- a whole re-read removes from storage what Xero no longer shows (the sweep). A whole re-read resumed mid-way
  cannot know every id, so it skips the sweep and does not count as a reconciliation (the next run repeats it).
- Journals are append-only: read on from the last JournalNumber, and re-read from the start only by a full sync
  asked for (mode "full"), not by the periodic reconciliation;
- up to five resources are read at once (Xero's in-flight limit per organisation, also enforced by the client).

Each record is stored as Xero sent it. Copies of other records inside it (a document's contact, a payment's invoice's
contact, a contact's groups, a group's members) are resolved when read (rendering.py), so a renamed contact or a
deleted group costs no read here. What Xero changes in a record's own data without a new UpdatedDateUTC is caught on
the next incremental pass rather than a week later: a document created or changed for a contact can flip the
contact's IsCustomer/IsSupplier, so the contacts of changed documents are re-read after every pass (by IDs, one call
for up to 40), except those whose document changed before a whole read of the contacts began (Xero's clock: users
keep changing the organisation while a sync runs). They are saved in the `_dependents` checkpoint, with the document's
stamp, before the documents are written (once they are, the next pass finds them unchanged), so an interruption does
not lose them.

Hostile answers (record_store.split_storable: entries that are not records, records without their id or stamp, a
record over DynamoDB's item limit): the rest of the page is stored, each rejected record is counted and its reason
kept in the run (counts and errors per resource, GET /clients/{id}/syncs), its stored version is left as it was, and
the pass does not move its resource's mark (If-Modified-Since, Journals offset, reconciliation date) nor sweep: the
next run reads those records again rather than skipping them for ever.
"""

import math
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pynamodb.exceptions import DoesNotExist

from xero_sync.catalogue import BY_NAME, CATALOGUE, Paging, ResourceSpec
from xero_sync.config import get_settings
from xero_sync.models import Checkpoint
from xero_sync.observability import logger
from xero_sync.record_bodies import Record
from xero_sync.record_store import Applied, Counts, RecordStore, record_id, split_storable
from xero_sync.schemas import RunProgress, RunWait, SyncMode
from xero_sync.tokens import TokenRefreshBusy, TokenSaveFailed, TokenSetRevoked
from xero_sync.xero_api import (
    Forbidden,
    NotOffered,
    OrganisationOffline,
    Page,
    RateLimited,
    Stopped,
    Unauthorized,
    WaitReason,
    XeroApi,
    XeroApiError,
    parse_ms_date,
)
from xero_sync.xero_identity import XeroUnavailable

DEPENDENTS = "_dependents"  # its pending_contacts: contacts to re-read, each "{ContactID}@{document's stamp, ms}"
# The token set could not be refreshed for now (Xero's token endpoint away, another holder kept the lease, the
# rotated set could not be saved): the run is tried again in a few minutes rather than failed, so a refresh whose
# answer or save was lost is retried well within Xero's 30-minute grace for the refresh token kept (the next
# nightly run would be hours too late).
_TOKEN_UNAVAILABLE = (XeroUnavailable, TokenRefreshBusy, TokenSaveFailed)
# A sweep that would remove more than this many records and this share of the stored ones reads the resource again.
MASS_DELETION_RECORDS, MASS_DELETION_SHARE = 10, 0.2
IDS_PER_CALL = 40  # contact ids per GET /Contacts?IDs= (keeps the URL well under 2,000 characters)
CONTACTS, REPEATING_INVOICES = BY_NAME["Contacts"], BY_NAME["RepeatingInvoices"]
# Read the longest first, so the pole of the tent starts at once.
_ORDER = {"Journals": 0, "Invoices": 1, "Payments": 2, "BankTransactions": 3, "Contacts": 4}

PassKind = Literal["initial", "full", "incremental"]
OutcomeKind = Literal["done", "partial", "continue", "deferred", "failed", "needs_relink"]
# Warnings a pass leaves on its resource in the run: it ended without proof it read everything, so it swept nothing
# and moved no mark (the next run reads it again), or a mass deletion was or was not confirmed by a second read.
PAGINATION_MISSING = "pagination_missing"  # a pageSize answer without Xero's `pagination` object
PAGINATION_MISMATCH = "pagination_mismatch"  # fewer records read than Xero's itemCount says there are
SWEEP_UNCONFIRMED = "sweep_unconfirmed"  # a mass deletion the confirming whole read could not prove
SWEEP_CONFIRMED = "mass_deletion_confirmed"  # a mass deletion a second whole read confirmed


@dataclass(frozen=True)
class EngineOptions:
    """The engine's settings (`options_from_settings`: their values and defaults are config.Settings')."""

    full_interval: timedelta
    ims_overlap: timedelta
    time_margin_seconds: float
    workers: int
    offline_retry_seconds: int  # a 503 that outlasts the retries, or a token set not refreshable for now


@dataclass
class Outcome:
    kind: OutcomeKind
    delay_seconds: int = 0
    resumes_at: datetime | None = None
    waiting_reason: WaitReason | None = None  # what the run waits on until resumes_at
    error_code: str | None = None
    failed_resources: list[str] = field(default_factory=list)  # a partial run's resources not imported this time


MAX_ERRORS_PER_RESOURCE = 20  # reasons kept per resource and run (the count has them all)


@dataclass
class RunTotals:
    counts: dict[str, Counts] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)  # why records were rejected, per resource
    warnings: dict[str, list[str]] = field(default_factory=dict)  # codes above, per resource
    not_entitled: set[str] = field(default_factory=set)
    unavailable: set[str] = field(default_factory=set)  # resources Xero does not offer the organisation (404, 410)
    failed: dict[str, str] = field(default_factory=dict)  # resource -> error code: not imported this time
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, resource: str, counts: Counts, errors: list[str] | None = None) -> None:
        with self.lock:
            self.counts.setdefault(resource, Counts()).add(counts)
            if errors:
                kept = self.errors.setdefault(resource, [])
                kept.extend(errors[: MAX_ERRORS_PER_RESOURCE - len(kept)])

    def warn(self, resource: str, code: str) -> None:
        logger.warning("a pass ended without proof", extra={"resource": resource, "warning": code})
        with self.lock:
            codes = self.warnings.setdefault(resource, [])
            if code not in codes:
                codes.append(code)


class _OutOfTime(Exception):
    pass


class UnprovenRead(Exception):
    """A whole read that cannot prove it saw every record (`code`: PAGINATION_MISSING or PAGINATION_MISMATCH)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _end_of_pages(spec: ResourceSpec, result: Page, page: int, fetched: int | None) -> bool:
    """Whether `page` was the last, as Xero proves it: on the pageSize endpoints its `pagination` (pageCount, and
    itemCount against the records read when `fetched` is known), elsewhere the page sizes Xero guarantees (a page
    shorter than 100 is the last; an unpaged list is whole). Raises UnprovenRead where the proof is missing or
    disagrees: a sweep after it could delete records that were only not read."""
    if spec.paging is Paging.NONE:
        return True
    if spec.paging is not Paging.PAGE_SIZE:
        return len(result.records) < spec.page_size
    page_count = (result.pagination or {}).get("pageCount")
    if not isinstance(page_count, int):
        raise UnprovenRead(PAGINATION_MISSING)
    if page < page_count:
        return False
    item_count = (result.pagination or {}).get("itemCount")
    if fetched is not None and isinstance(item_count, int) and fetched < item_count:
        raise UnprovenRead(PAGINATION_MISMATCH)
    return True


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _ims_header(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class SyncEngine:
    def __init__(
        self,
        client_id: str,
        api: XeroApi,
        store: RecordStore | None = None,
        mode: SyncMode = "incremental",
        run_id: str | None = None,
        options: EngineOptions | None = None,
        remaining_seconds: Callable[[], float] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        after_page: Callable[[str, int], None] | None = None,
    ) -> None:
        self.client_id = client_id
        self.api = api
        self.store = store or RecordStore(client_id)
        self.mode = mode
        self.run_id = run_id
        self.options = options or options_from_settings()
        self.remaining_seconds = remaining_seconds
        self.clock = clock
        self.after_page = after_page  # a test hook: called after each page is stored and checkpointed
        self.totals = RunTotals()
        self.stop = api.stop
        # When (Xero's clock) this run's whole read of the contacts began, once known: a contact whose document
        # changed before it needs no re-read.
        self._contacts_read_from: datetime | None = None
        self._resources_done = 0  # in this run, earlier invocations included

    # --- the run ------------------------------------------------------------------------------------------------
    def run(self) -> Outcome:
        specs = sorted(CATALOGUE, key=lambda s: _ORDER.get(s.name, 10))
        todo = []
        for spec in specs:
            cp = self._checkpoint(spec.name)
            if self._done_in_this_run(cp):  # by an earlier invocation of this run (a continuation)
                if spec is CONTACTS and cp.last_pass_whole:
                    self._contacts_read_from = cp.last_pass_began
                self._resources_done += 1
                continue
            if cp.unavailable_since is not None and not self._retry_unavailable(cp):
                self.totals.unavailable.add(spec.name)  # not offered: asked again at the next reconciliation
                self._resources_done += 1
                continue
            todo.append(spec)
        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="sync") as pool:
            futures: list[Future[None]] = [pool.submit(self._resource, spec) for spec in todo]
            for future in futures:
                error = future.exception()
                if error is not None:
                    errors.append(error)
        outcome = self._outcome(errors)
        if outcome is not None:
            return outcome
        try:
            self._follow_up()
        except BaseException as error:
            outcome = self._outcome([error])
            if outcome is not None:
                return outcome
            raise
        if self.totals.failed:
            failed = sorted(self.totals.failed)
            return Outcome("partial", error_code=self.totals.failed[failed[0]], failed_resources=failed)
        return Outcome("done")

    def progress(self, records_before: int = 0) -> RunProgress:
        """How far this run is (for the run's heartbeat): resources done of all, records read, what it waits on."""
        with self.totals.lock:
            records = records_before + sum(c.fetched for c in self.totals.counts.values())
            done = self._resources_done
        wait = self.api.waiting()
        return RunProgress(
            resources_done=done,
            resources_total=len(CATALOGUE),
            records_so_far=records,
            waiting_on=RunWait(reason=wait[0], until=wait[1]) if wait else None,
            published_at=self.clock(),
        )

    def _resource(self, spec: ResourceSpec) -> None:
        try:
            if spec.paging is Paging.OFFSET:
                self._journals(spec)
            else:
                self._pass(spec)
            with self.totals.lock:
                self._resources_done += 1
        except NotOffered as error:
            self._mark_unavailable(spec, error)
        except Unauthorized as error:
            if spec.name != "Journals":
                raise
            # Xero gates Journals by plan: a 401 with a token that works everywhere else means "not entitled".
            logger.info("Journals not entitled for this organisation", extra={"detail": str(error)})
            with self.totals.lock:
                self.totals.not_entitled.add(spec.name)
                self._resources_done += 1
        except (RateLimited, Forbidden, TokenSetRevoked, _OutOfTime, *_TOKEN_UNAVAILABLE):
            self.stop.set()  # nobody else should start another call
            raise
        except OrganisationOffline:
            raise  # the whole organisation: the run is tried again later
        except XeroApiError as error:
            # This resource alone failed (its answers kept failing, or were unusable): the others are imported and
            # checkpointed, the run ends partial, and this one keeps its checkpoint for the next run.
            logger.warning("a resource failed", extra={"resource": spec.name, "code": error.code, "detail": str(error)})
            with self.totals.lock:
                self.totals.failed[spec.name] = error.code

    def _retry_unavailable(self, cp: Checkpoint) -> bool:
        """A resource Xero did not offer is asked again by a full sync, or once a reconciliation is due."""
        assert cp.unavailable_since is not None
        return self.mode == "full" or cp.unavailable_since < self.clock() - self.options.full_interval

    def _mark_unavailable(self, spec: ResourceSpec, error: NotOffered) -> None:
        logger.info("resource not offered to this organisation", extra={"resource": spec.name, "detail": str(error)})
        cp = self._checkpoint(spec.name)
        cp.unavailable_since = cp.unavailable_since or self.clock()
        # A pass Xero stopped offering part-way is abandoned: the next one starts afresh.
        cp.pass_kind = cp.pass_since = cp.pass_mark = cp.next_page = cp.pass_resumed = cp.pass_rejected = None
        self._save(cp)
        with self.totals.lock:
            self.totals.unavailable.add(spec.name)
            self._resources_done += 1

    def _outcome(self, errors: list[BaseException]) -> Outcome | None:
        real = [e for e in errors if not isinstance(e, Stopped)]
        if not real:
            return None if not errors else Outcome("continue")
        for error in real:
            if isinstance(error, TokenSetRevoked):
                logger.warning("Xero no longer accepts the token set", extra={"detail": error.reason})
                return Outcome("needs_relink", error_code="token_revoked")
            if isinstance(error, Forbidden):
                logger.warning("Xero refused the organisation", extra={"detail": str(error)})
                return Outcome("needs_relink", error_code="xero_forbidden")
        for error in real:
            if not isinstance(error, (RateLimited, OrganisationOffline, _OutOfTime, *_TOKEN_UNAVAILABLE)):
                code = error.code if isinstance(error, XeroApiError) else "sync_error"
                logger.exception("sync failed", exc_info=error)
                return Outcome("failed", error_code=code)
        now = self.clock()
        day = [e for e in real if isinstance(e, RateLimited) and e.problem == "day"]
        if day:
            wait = max(e.retry_after for e in day)
            resumes_at = now + timedelta(seconds=wait)
            return Outcome("deferred", math.ceil(wait), resumes_at, waiting_reason="daily_limit")
        waits: list[tuple[float, WaitReason]] = [
            (e.retry_after, "rate_limit") for e in real if isinstance(e, RateLimited)
        ]
        offline = float(self.options.offline_retry_seconds)
        waits += [(offline, "organisation_offline") for e in real if isinstance(e, OrganisationOffline)]
        waits += [(offline, "xero_retry") for e in real if isinstance(e, _TOKEN_UNAVAILABLE)]
        if waits:
            wait, reason = max(waits)
            return Outcome("continue", math.ceil(wait), now + timedelta(seconds=wait), waiting_reason=reason)
        return Outcome("continue")

    def _check_time(self) -> None:
        if self.stop.is_set():
            raise Stopped
        if self.remaining_seconds is not None and self.remaining_seconds() < self.options.time_margin_seconds:
            raise _OutOfTime

    # --- checkpoints --------------------------------------------------------------------------------------------
    def _checkpoint(self, resource: str) -> Checkpoint:
        try:
            return Checkpoint.get(self.client_id, resource, consistent_read=True)
        except DoesNotExist:
            return Checkpoint(client_id=self.client_id, resource=resource, updated_at=self.clock())

    def _save(self, checkpoint: Checkpoint) -> None:
        checkpoint.run_id = self.run_id
        checkpoint.updated_at = self.clock()
        checkpoint.save()

    def _done_in_this_run(self, checkpoint: Checkpoint) -> bool:
        return self.run_id is not None and checkpoint.run_id == self.run_id and checkpoint.pass_kind is None

    def _kind(self, checkpoint: Checkpoint) -> PassKind:
        if checkpoint.full_synced_at is None:
            return "initial" if checkpoint.modified_since is None and checkpoint.journal_offset is None else "full"
        if self.mode == "full" or checkpoint.full_synced_at < self.clock() - self.options.full_interval:
            return "full"
        return "incremental"

    # --- one resource -------------------------------------------------------------------------------------------
    def _plan(self, spec: ResourceSpec, cp: Checkpoint) -> tuple[PassKind, int, datetime | None, bool]:
        """(kind, first page, If-Modified-Since, resumed) of the pass this run makes over a paged/listed resource."""
        if cp.pass_kind is not None and cp.next_page is not None:
            kind: PassKind = cp.pass_kind  # type: ignore[assignment]
            return kind, int(cp.next_page), cp.pass_since, True
        kind = self._kind(cp)
        since = None
        if kind == "incremental" and spec.incremental and cp.modified_since is not None:
            since = cp.modified_since - self.options.ims_overlap
        return kind, 1, since, False

    def _pass(self, spec: ResourceSpec) -> None:
        cp = self._checkpoint(spec.name)
        kind, page, since, resumed = self._plan(spec, cp)
        mark = cp.pass_mark if resumed else None
        whole = since is None
        if spec is CONTACTS and whole:
            self._contacts_read_from = mark  # a resumed read began when its first page was read
        reconcile = kind != "incremental"
        seen: set[str] = set()
        fresh = self._first_import(spec, kind, resumed)
        rejected = resumed and bool(cp.pass_rejected)
        unproven: str | None = None
        fetched = 0
        while True:
            self._check_time()
            params = dict(spec.params)
            if spec.paging is Paging.PAGE_SIZE:
                params.update(page=str(page), pageSize=str(spec.page_size))
            elif spec.paging is Paging.PAGE:
                params["page"] = str(page)
            asked = self.clock()
            result = self.api.list(spec.name, spec.key, params, _ims_header(since) if since else None)
            if mark is None:
                # When the read began, by Xero's clock when it tells (changes are stamped by that clock): a change
                # stamped before it shows on these pages.
                mark = _utc(result.read_after_ms) if result.read_after_ms is not None else asked
                if spec is CONTACTS and whole:
                    self._contacts_read_from = mark
            records, problems = split_storable(spec, result.records)
            if problems:
                self.totals.add(spec.name, Counts(fetched=len(problems), rejected=len(problems)), problems)
            if spec.detail_by_id:
                records = self._with_details(spec, records, reconcile)
            applied = self._store(spec, records, may_be_stored=seen if fresh else None)
            rejected = rejected or bool(problems or applied.rejected)
            seen.update(applied.stored_ids)
            fetched += len(result.records)
            try:
                if _end_of_pages(spec, result, page, None if resumed else fetched):
                    break
            except UnprovenRead as proof:
                unproven = proof.code  # what was read is stored; the end of the read is not known
                self.totals.warn(spec.name, proof.code)
                break
            page += 1
            cp.pass_kind, cp.pass_since, cp.pass_mark, cp.next_page = kind, since, mark, page
            cp.pass_resumed, cp.pass_rejected = resumed, rejected or None
            self._save(cp)
            if self.after_page:
                self.after_page(spec.name, page - 1)
        resumed = resumed or bool(cp.pass_resumed)
        self._count(spec, seen, whole and not resumed and not rejected and not unproven)
        if not rejected and not unproven:  # otherwise the mark stays: the next pass reads those records again
            cp.modified_since = mark
            if kind == "initial" or (kind == "full" and not resumed):
                cp.full_synced_at = self.clock()
        cp.pass_kind = cp.pass_since = cp.pass_mark = cp.next_page = cp.pass_resumed = cp.pass_rejected = None
        cp.unavailable_since = None
        cp.imported_at = self.clock()
        # For the contacts' re-read (_follow_up, and a continuation of this run): whether this pass read everything,
        # and when it began.
        cp.last_pass_whole, cp.last_pass_began = whole and not unproven, mark
        self._save(cp)

    def _journals(self, spec: ResourceSpec) -> None:
        cp = self._checkpoint(spec.name)
        if cp.pass_kind is not None:
            kind: PassKind = cp.pass_kind  # type: ignore[assignment]
            offset = int(cp.next_page or 0)
            resumed = True
        else:
            kind = self._kind(cp)
            if kind == "full" and self.mode != "full":
                # Journals are append-only (never edited or deleted): the periodic reconciliation, which would cost
                # a call per 100 of them, skips them; a full sync asked for re-reads them.
                kind = "incremental"
            offset = 0 if kind != "incremental" else int(cp.journal_offset or 0)
            resumed = False
        whole = kind != "incremental"
        seen: set[str] = set()
        fresh = self._first_import(spec, kind, resumed)
        rejected = resumed and bool(cp.pass_rejected)
        while True:
            self._check_time()
            result = self.api.list(spec.name, spec.key, {"offset": str(offset)})
            applied = self._store(spec, result.records, may_be_stored=seen if fresh else None)
            rejected = rejected or bool(applied.rejected)
            seen.update(applied.stored_ids)
            numbers = [
                int(r["JournalNumber"])
                for r in result.records
                if isinstance(r, dict) and isinstance(r.get("JournalNumber"), int)
            ]
            previous_offset, offset = offset, max([offset, *numbers])
            if len(result.records) < spec.page_size:
                break
            if offset == previous_offset:  # a full page that names no later journal: reading on would loop
                rejected = True
                break
            cp.pass_kind, cp.next_page, cp.pass_resumed, cp.pass_rejected = kind, offset, resumed, rejected or None
            if kind == "incremental" and not rejected:
                cp.journal_offset = max(offset, int(cp.journal_offset or 0))
            self._save(cp)
            if self.after_page:
                self.after_page(spec.name, offset)
        resumed = resumed or bool(cp.pass_resumed)
        self._count(spec, seen, whole and not resumed and not rejected)
        if not rejected:  # otherwise the offset stays: the next pass reads the rejected journals again
            cp.journal_offset = max(offset, int(cp.journal_offset or 0))
            if kind == "initial" or (kind == "full" and not resumed):
                cp.full_synced_at = self.clock()
        cp.pass_kind = cp.next_page = cp.pass_resumed = cp.pass_rejected = None
        cp.unavailable_since = None
        cp.imported_at = self.clock()
        self._save(cp)

    def _first_import(self, spec: ResourceSpec, kind: PassKind, resumed: bool) -> bool:
        """Whether this pass is the first import of a resource none of whose records is stored: then the only stored
        records it can meet are those it wrote itself (follow-ups write only after every pass), and the rest of its
        pages need no read of a stored version. A pass resumed, or begun again after a writer died, has some."""
        return kind == "initial" and not resumed and self.store.is_empty(spec.name)

    def _count(self, spec: ResourceSpec, seen: set[str], read_whole: bool) -> None:
        """At the end of a pass: a whole re-read sweeps what Xero no longer shows and sets the count to what it
        showed; any other pass makes sure no earlier write was left uncounted."""
        if read_whole:
            self._sweep(spec, seen)
            self.store.set_count(spec.name, len(seen))
        else:
            self.store.settle_count(spec.name)

    def _store(self, spec: ResourceSpec, records: list[Any], may_be_stored: set[str] | None = None) -> Applied:
        def remember_contacts(changed: list[Record]) -> None:
            # Saved before the records are written: once they are, the next pass finds them unchanged and would
            # never see their contacts' flips again.
            if spec.holds_contacts and spec is not REPEATING_INVOICES:
                self._remember_contacts(changed)

        applied = self.store.apply(spec, records, before_write=remember_contacts, may_be_stored=may_be_stored)
        self.totals.add(spec.name, applied.counts, applied.rejected)
        if applied.rejected:
            logger.warning("records not stored", extra={"resource": spec.name, "rejected": len(applied.rejected)})
        return applied

    def _sweep(self, spec: ResourceSpec, seen: set[str]) -> None:
        """Removes what a whole, proven read did not show. A mass removal (over max(10 records, 20 %) of what is
        stored) must be confirmed by a second whole read first: only records absent from both go."""
        stored = list(self.store.stored_ids(spec.name))
        gone = [rid for rid in stored if rid not in seen]
        if not gone:
            return
        if len(gone) > max(MASS_DELETION_RECORDS, MASS_DELETION_SHARE * len(stored)):
            try:
                again = {
                    record_id(spec, r)
                    for page in read_pages(self.api, spec, before_call=self._check_time)
                    for r in split_storable(spec, page)[0]
                }
            except UnprovenRead as proof:
                self.totals.warn(spec.name, SWEEP_UNCONFIRMED)
                logger.warning("mass deletion not confirmed", extra={"resource": spec.name, "why": proof.code})
                return
            gone = [rid for rid in gone if rid not in again]
            self.totals.warn(spec.name, SWEEP_CONFIRMED)
            if not gone:
                return
        deleted = self.store.delete(spec.name, gone)
        self.totals.add(spec.name, Counts(deleted=deleted))

    def _with_details(self, spec: ResourceSpec, listed: list[Record], reconcile: bool) -> list[Record]:
        """The list leaves out what only GET /{name}/{id} shows: read that for new and changed records (all of them
        on a reconciliation); keep the stored record for the others."""
        # A reconciliation reads every record's details: what is stored does not matter.
        stored = {} if reconcile else self.store.bodies(spec, [record_id(spec, r) for r in listed])
        out: list[Record] = []
        for record in listed:
            rid = record_id(spec, record)
            old = stored.get(rid)
            if not reconcile and old is not None and _same_listing(old, record):
                out.append(old)
                continue
            out.append(self._detail(spec, rid))
        return out

    def _detail(self, spec: ResourceSpec, rid: str) -> Record:
        self._check_time()
        return _first(self.api.get(f"{spec.name}/{rid}", {}), spec)

    # --- contacts whose documents changed (IsCustomer/IsSupplier, which Xero flips without a stamp) -------------
    def _remember_contacts(self, documents: list[Record]) -> None:
        """Saves the contacts of changed documents for _follow_up, each with its latest document's stamp; those a
        whole read of the contacts in this run began after shows as they are now are left out."""
        latest: dict[str, int | None] = {}  # contact -> its latest document's stamp (None: unknown)
        for document in documents:
            if cid := _contact_of(document):
                ms = parse_ms_date(document.get("UpdatedDateUTC"))
                latest[cid] = None if ms is None or latest.get(cid, 0) is None else max(ms, latest.get(cid) or 0)
        read_from = self._contacts_read_from
        pending = {
            cid if ms is None else f"{cid}@{ms}"
            for cid, ms in latest.items()
            if read_from is None or ms is None or _utc(ms) >= read_from
        }
        if pending:
            Checkpoint(client_id=self.client_id, resource=DEPENDENTS).update(
                actions=[Checkpoint.pending_contacts.add(pending), Checkpoint.updated_at.set(self.clock())]
            )

    def _follow_up(self) -> None:
        """After every pass: re-reads by IDs the contacts saved by _remember_contacts, but those whose document
        changed before this run's read of the contacts began, when it read them whole. Each entry is cleared once
        done (a continuation picks up the rest)."""
        entries = set(self._checkpoint(DEPENDENTS).pending_contacts or ())
        if not entries:
            return
        contacts = self._checkpoint(CONTACTS.name)
        read_from = contacts.last_pass_began if contacts.last_pass_whole else None
        due: dict[str, set[str]] = {}
        for entry in entries:
            cid, _, ms = entry.partition("@")
            if read_from is None or not ms or _utc(int(ms)) >= read_from:
                due.setdefault(cid, set()).add(entry)
        item = Checkpoint(client_id=self.client_id, resource=DEPENDENTS)
        shown = entries.difference(*due.values())
        if shown:
            item.update(actions=[Checkpoint.pending_contacts.delete(shown)])
        ids = sorted(due)
        for start in range(0, len(ids), IDS_PER_CALL):
            self._check_time()
            chunk = ids[start : start + IDS_PER_CALL]
            params = {**CONTACTS.params, "IDs": ",".join(chunk), "page": "1", "pageSize": str(CONTACTS.page_size)}
            self._store(CONTACTS, self.api.list(CONTACTS.name, CONTACTS.key, params).records)
            item.update(actions=[Checkpoint.pending_contacts.delete(set().union(*(due[cid] for cid in chunk)))])


def read_pages(
    api: XeroApi,
    spec: ResourceSpec,
    before_call: Callable[[], None] | None = None,
    details: bool = False,
) -> Iterator[list[Record]]:
    """A whole read of one resource, page by page, as Xero shows it (no If-Modified-Since; with `details`, each
    record the list abbreviates is read on its own). Raises UnprovenRead when Xero's answers cannot prove its end."""
    page, offset, fetched = 1, 0, 0
    while True:
        if before_call:
            before_call()
        params = dict(spec.params)
        if spec.paging is Paging.PAGE_SIZE:
            params.update(page=str(page), pageSize=str(spec.page_size))
        elif spec.paging is Paging.PAGE:
            params["page"] = str(page)
        elif spec.paging is Paging.OFFSET:
            params["offset"] = str(offset)
        result = api.list(spec.name, spec.key, params)
        records = result.records
        fetched += len(records)
        if details and spec.detail_by_id:
            records = [_first(api.get(f"{spec.name}/{record_id(spec, r)}", {}), spec) for r in records]
        yield records
        if spec.paging is Paging.OFFSET:
            numbers = [int(r["JournalNumber"]) for r in result.records if isinstance(r.get("JournalNumber"), int)]
            offset = max([offset, *numbers])
            if len(result.records) < spec.page_size:
                return
        elif _end_of_pages(spec, result, page, fetched):
            return
        page += 1


def _first(body: dict[str, Any], spec: ResourceSpec) -> Record:
    records = body.get(spec.key)
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        raise XeroApiError(f"Xero's answer for one {spec.name} record holds no record")
    record: Record = records[0]
    return record


def _contact_of(record: Record) -> str | None:
    contact = record.get("Contact")
    if not isinstance(contact, dict):
        invoice = record.get("Invoice")  # Payments hold the contact inside their invoice
        contact = invoice.get("Contact") if isinstance(invoice, dict) else None
    value = contact.get("ContactID") if isinstance(contact, dict) else None
    return str(value) if value else None


def _same_listing(stored: Record, listed: Record) -> bool:
    """Whether a stored record (with its details) matches what the list shows now, details aside."""
    return {k: v for k, v in stored.items() if k != "Contacts"} == {k: v for k, v in listed.items() if k != "Contacts"}


def total_counts(totals: RunTotals) -> dict[str, dict[str, int]]:
    return {name: counts.as_dict() for name, counts in sorted(totals.counts.items())}


def merged_counts(previous: dict[str, Any], totals: RunTotals) -> dict[str, dict[str, Any]]:
    """A run's counts per resource (and the reasons records were rejected) after one more invocation's."""
    merged: dict[str, dict[str, Any]] = {}
    for name in set(previous) | set(totals.counts) | set(totals.warnings):
        old = previous.get(name) or {}
        new = totals.counts[name].as_dict() if name in totals.counts else {}
        entry: dict[str, Any] = {k: int(old.get(k, 0)) + int(new.get(k, 0)) for k in Counts().as_dict()}
        errors = [*(old.get("errors") or []), *totals.errors.get(name, [])][:MAX_ERRORS_PER_RESOURCE]
        if errors:
            entry["errors"] = errors
        warnings = list(dict.fromkeys([*(old.get("warnings") or []), *totals.warnings.get(name, [])]))
        if warnings:
            entry["warnings"] = warnings
        merged[name] = entry
    return merged


def options_from_settings() -> EngineOptions:
    settings = get_settings()
    return EngineOptions(
        full_interval=timedelta(seconds=settings.full_reconciliation_seconds),
        ims_overlap=timedelta(seconds=settings.ims_overlap_seconds),
        time_margin_seconds=settings.sync_time_margin_seconds,
        workers=settings.xero_max_in_flight,
        offline_retry_seconds=settings.xero_retry_later_seconds,
    )
