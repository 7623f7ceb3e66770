"""The passes over one resource: read its pages, store each (only changed records are written) and checkpoint it,
then, after a whole read, sweep what Xero no longer shows.

- Every page is stored and then checkpointed, so a run stopped anywhere resumes from its next page; a pass's mark
  (Xero's clock when it began, less an overlap; for offset paging, the last number read) becomes the resource's
  mark only when the pass completes.
- A whole re-read removes from storage what Xero no longer shows (the sweep); a second whole read confirms the
  removal first (one that rejects a record confirms nothing), unless the records vanish when deleted in Xero and
  the removal is neither a mass one nor all. A whole re-read resumed mid-way cannot know every id, so it skips the
  sweep and does not count as a reconciliation (the next run repeats it); a pageSize read resumed cannot prove its
  end either, so it moves no mark (pages.py).
- Hostile answers (record_store.split_storable): the rest of the page is stored, each rejected record is counted
  with its reason, and the pass moves no mark and sweeps nothing: the next run reads those records again.
- The contacts of changed documents (catalogue `flips_contact_roles`: Xero flips the contact's IsCustomer/IsSupplier
  without a new stamp) are saved before the documents are written, and re-read by IDs after every pass
  (`follow_up`), but those whose document changed before a whole read of the contacts in this run began.
"""

from datetime import UTC, datetime
from typing import Any

from xero_sync.catalogue import CONTACT_LIST, Deletes, ResourceSpec
from xero_sync.engine.context import Context
from xero_sync.engine.outcomes import SWEEP_CONFIRMED, SWEEP_REFUSED, SWEEP_UNCONFIRMED, UnprovenRead
from xero_sync.engine.pages import pages, paging_params, read_record, read_whole
from xero_sync.engine.plan import Plan, plan_pass
from xero_sync.models import PassCheckpoint
from xero_sync.observability import logger
from xero_sync.record_bodies import Record
from xero_sync.record_store import Applied, Counts, contact_of, record_id, split_storable
from xero_sync.xero_api import NotOffered, Page
from xero_sync.xero_dates import from_ms, parse_ms_date

# A sweep that would remove more than this many records and this share of the stored ones reads the resource again.
MASS_DELETION_RECORDS, MASS_DELETION_SHARE = 10, 0.2
# How far behind ours Xero's clock (an answer's DateTimeUTC) may be and still place a pass's mark.
XERO_CLOCK_TRUSTED_MS = 24 * 3600 * 1000
IDS_PER_CALL = 40  # contact ids per GET /Contacts?IDs= (keeps the URL well under 2,000 characters)
# Where a changed document names the contact to re-read: its own Contact, or a payment's invoice's. (Narrower than
# record_store's holders, as the engine always looked: widening it would change which contacts are re-read.)
_ROLE_HOLDERS = ("Invoice",)


def _ims_header(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class Passes:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # --- reads whose mark is a time (If-Modified-Since) -------------------------------------------------------------
    def by_date(self, spec: ResourceSpec) -> None:
        ctx = self.ctx
        cp = ctx.checkpoints.load(spec.name)
        plan = plan_pass(spec, cp, ctx.mode, ctx.clock, ctx.options)
        mark = cp.pass_mark if plan.resumed else None
        if spec.contact_list and plan.whole:
            ctx.contacts_read_from = mark  # a resumed read began when its first page was read
        seen: set[str] = set()
        fresh = self._first_import(spec, plan)
        rejected = plan.resumed and bool(cp.pass_rejected)
        unproven: str | None = None
        asked: list[datetime] = []

        def fetch(params: dict[str, str]) -> Page:
            ctx.check_time()
            asked.append(ctx.clock())
            header = _ims_header(plan.since) if plan.since else None
            return ctx.api.list(spec.name, spec.key, {**spec.params, **params}, header)

        for read in pages(spec, fetch, plan.start, from_start=not plan.resumed):
            if mark is None:
                # When the read began, by Xero's clock when it tells (changes are stamped by that clock): a change
                # stamped before it shows on these pages. Never later than by ours, with no allowance: a time ahead
                # of ours is Xero's clock or an odd answer, and the earlier of the two is right either way (a mark
                # too early only reads a few changes again; one too late skips those in between until a
                # reconciliation). A time a day or more behind ours is not Xero's clock.
                began, ours = read.answer.read_after_ms, asked[-1]
                trusted = began is not None and ours.timestamp() * 1000 - began < XERO_CLOCK_TRUSTED_MS
                mark = min(from_ms(began), ours) if trusted and began is not None else ours
                if spec.contact_list and plan.whole:
                    ctx.contacts_read_from = mark
            records, problems = split_storable(spec, read.answer.records)
            if problems:
                ctx.totals.add(spec.name, Counts(fetched=len(problems), rejected=len(problems)), problems)
            if spec.detail_by_id:
                records = self._with_details(spec, records, plan.reconciles)
            applied = self.store(spec, records, may_be_stored=seen if fresh else None)
            rejected = rejected or bool(problems or applied.rejected)
            seen.update(applied.stored_ids)
            if read.unproven:
                unproven = read.unproven  # what was read is stored; the end of the read is not known
                ctx.totals.warn(spec.name, read.unproven)
            if read.last:
                break
            cp.pass_kind, cp.pass_since, cp.pass_mark, cp.next_page = plan.kind, plan.since, mark, read.next_position
            cp.pass_resumed, cp.pass_rejected = plan.resumed, rejected or None
            ctx.checkpoints.save(cp)
        resumed = plan.resumed or bool(cp.pass_resumed)
        self._count(spec, seen, plan.whole and not resumed and not rejected and not unproven)
        if not rejected and not unproven:  # otherwise the mark stays: the next pass reads those records again
            cp.modified_since = mark
            if plan.kind == "initial" or (plan.kind == "full" and not resumed):
                cp.full_synced_at = ctx.clock()
        clear_pass(cp)
        cp.imported_at = ctx.clock()
        # For the contacts' re-read (follow_up, and a continuation of this run): whether this pass read everything,
        # and when it began.
        cp.last_pass_whole, cp.last_pass_began = plan.whole and not unproven, mark
        ctx.checkpoints.save(cp)

    # --- reads whose mark is the last number read (offset paging) ---------------------------------------------------
    def by_offset(self, spec: ResourceSpec) -> None:
        ctx = self.ctx
        cp = ctx.checkpoints.load(spec.name)
        plan = plan_pass(spec, cp, ctx.mode, ctx.clock, ctx.options)
        seen: set[str] = set()
        fresh = self._first_import(spec, plan)
        rejected = plan.resumed and bool(cp.pass_rejected)
        offset = plan.start

        def fetch(params: dict[str, str]) -> Page:
            ctx.check_time()
            return ctx.api.list(spec.name, spec.key, {**spec.params, **params}, None)

        for read in pages(spec, fetch, plan.start, from_start=not plan.resumed):
            applied = self.store(spec, read.answer.records, may_be_stored=seen if fresh else None)
            rejected = rejected or bool(applied.rejected)
            seen.update(applied.stored_ids)
            offset = read.next_position
            if read.unproven:  # a full page that names no later number: read again by the next pass
                rejected = True
            if read.last:
                break
            cp.pass_kind, cp.next_page, cp.pass_resumed, cp.pass_rejected = (
                plan.kind,
                offset,
                plan.resumed,
                rejected or None,
            )
            if plan.kind == "incremental" and not rejected:
                cp.journal_offset = offset
            ctx.checkpoints.save(cp)
        resumed = plan.resumed or bool(cp.pass_resumed)
        self._count(spec, seen, plan.whole and not resumed and not rejected)
        if not rejected:  # otherwise the offset stays: the next pass reads the rejected records again
            # Where the read ended, not the greater of it and the old offset: a whole read begins at the first number,
            # so a full sync brings back an offset an odd answer once moved past what Xero has.
            cp.journal_offset = offset
            if plan.kind == "initial" or (plan.kind == "full" and not resumed):
                cp.full_synced_at = ctx.clock()
        clear_pass(cp)
        cp.imported_at = ctx.clock()
        ctx.checkpoints.save(cp)

    def _first_import(self, spec: ResourceSpec, plan: Plan) -> bool:
        """Whether this pass is the first import of a resource none of whose records is stored: then the only stored
        records it can meet are those it wrote itself (follow-ups write only after every pass), and the rest of its
        pages need no read of a stored version. A pass resumed, or begun again after a writer died, has some."""
        return plan.kind == "initial" and not plan.resumed and self.ctx.store.is_empty(spec.name)

    # --- storing ----------------------------------------------------------------------------------------------------
    def store(self, spec: ResourceSpec, records: list[Any], may_be_stored: set[str] | None = None) -> Applied:
        def remember_contacts(changed: list[Record]) -> None:
            # Saved before the records are written: once they are, the next pass finds them unchanged and would
            # never see their contacts' flips again.
            if spec.flips_contact_roles:
                self._remember_contacts(changed)

        ctx = self.ctx
        applied = ctx.store.apply(spec, records, before_write=remember_contacts, may_be_stored=may_be_stored)
        ctx.totals.add(spec.name, applied.counts, applied.rejected)
        if applied.rejected:
            logger.warning("records not stored", extra={"resource": spec.name, "rejected": len(applied.rejected)})
        return applied

    def _count(self, spec: ResourceSpec, seen: set[str], read_whole_: bool) -> None:
        """At the end of a pass: a whole re-read sweeps what Xero no longer shows and sets the count to what is
        stored after it; any other pass makes sure no earlier write was left uncounted."""
        if read_whole_ and not spec.append_only:  # Xero never removes an append-only resource's records
            self.ctx.store.set_count(spec.name, self._sweep(spec, seen))
        else:
            self.ctx.store.settle_count(spec.name)

    def _sweep(self, spec: ResourceSpec, seen: set[str]) -> int:
        """Removes what a whole, proven read did not show; returns how many records are stored after it. A second
        whole read must confirm a removal first, and only records absent from both go, unless the resource's records
        vanish when deleted (catalogue `deletes`) and the removal is neither a mass one (over max(10 records, 20 %)
        of what is stored) nor all of them: Xero shows other deletions as a status, so a record it leaves out of a
        list once is not known to be gone. A confirming read that cannot prove its end, or rejects a record (which
        could be one it showed again), confirms nothing: the sweep waits for the next reconciliation. A whole read
        that shows none of what is stored deletes nothing where Xero shows deletions as a status (an empty answer,
        not every record deleted)."""
        ctx = self.ctx
        stored = list(ctx.store.stored_ids(spec.name))
        gone = [rid for rid in stored if rid not in seen]
        if not gone:
            return len(stored)
        if len(gone) == len(stored) and spec.deletes is not Deletes.VANISH:
            # A whole read that shows none of them, where Xero shows a deletion as a status: not a deletion.
            ctx.totals.warn(spec.name, SWEEP_REFUSED)
            logger.warning("deletion refused: a whole read showed none", extra={"resource": spec.name})
            return len(stored)
        mass = len(gone) > max(MASS_DELETION_RECORDS, MASS_DELETION_SHARE * len(stored))
        if mass or spec.deletes is not Deletes.VANISH or len(gone) == len(stored):
            again: set[str] = set()
            rejected: list[str] = []
            why: str | None = None
            try:
                for page in read_whole(ctx.api, spec, before_call=ctx.check_time):
                    records, problems = split_storable(spec, page)
                    again.update(record_id(spec, r) for r in records)
                    rejected.extend(problems)
            except UnprovenRead as proof:
                why = proof.code
            if rejected:  # counted as the pass counts the records it rejects
                ctx.totals.add(spec.name, Counts(fetched=len(rejected), rejected=len(rejected)), rejected)
            # A record the confirming read rejected (no stamp, no id) may be one it showed again: as after a pass that
            # rejected one, nothing is swept.
            if why or rejected:
                ctx.totals.warn(spec.name, SWEEP_UNCONFIRMED)
                logger.warning("deletion not confirmed", extra={"resource": spec.name, "why": why or "rejected"})
                return len(stored)
            gone = [rid for rid in gone if rid not in again]
            if mass:
                ctx.totals.warn(spec.name, SWEEP_CONFIRMED)
            if not gone:
                return len(stored)
        deleted = ctx.store.delete(spec.name, gone)
        ctx.totals.add(spec.name, Counts(deleted=deleted))
        return len(stored) - deleted

    def _with_details(self, spec: ResourceSpec, listed: list[Record], reconcile: bool) -> list[Record]:
        """The list leaves out what only GET /{name}/{id} shows: read that for new and changed records (all of them
        on a reconciliation); keep the stored record for the others."""
        ctx = self.ctx
        # A reconciliation reads every record's details: what is stored does not matter.
        stored = {} if reconcile else ctx.store.bodies(spec, [record_id(spec, r) for r in listed])
        out: list[Record] = []
        for record in listed:
            rid = record_id(spec, record)
            old = stored.get(rid)
            if not reconcile and old is not None and _same_listing(spec, old, record):
                out.append(old)
                continue
            ctx.check_time()
            out.append(read_record(ctx.api, spec, rid))
        return out

    # --- contacts whose documents changed (IsCustomer/IsSupplier, which Xero flips without a stamp) -------------
    def _remember_contacts(self, documents: list[Record]) -> None:
        """Saves the contacts of changed documents for follow_up, each with its latest document's stamp; those a
        whole read of the contacts in this run began after shows as they are now are left out."""
        latest: dict[str, int | None] = {}  # contact -> its latest document's stamp (None: unknown)
        for document in documents:
            if cid := contact_of(document, holders=_ROLE_HOLDERS):
                ms = parse_ms_date(document.get("UpdatedDateUTC"))
                latest[cid] = None if ms is None or latest.get(cid, 0) is None else max(ms, latest.get(cid) or 0)
        read_from = self.ctx.contacts_read_from
        pending = {
            cid if ms is None else f"{cid}@{ms}"
            for cid, ms in latest.items()
            if read_from is None or ms is None or from_ms(ms) >= read_from
        }
        if pending:
            self.ctx.checkpoints.add_pending_contacts(pending)

    def follow_up(self) -> None:
        """After every pass: re-reads by IDs the contacts saved by _remember_contacts, but those whose document
        changed before this run's read of the contacts began, when it read them whole. Each entry is cleared once
        done (a continuation picks up the rest)."""
        ctx = self.ctx
        entries = ctx.checkpoints.pending_contacts()
        if not entries:
            return
        contacts = ctx.checkpoints.load(CONTACT_LIST.name)
        if contacts.unavailable_since is not None:
            return  # Xero does not offer the contacts now: the entries wait for a run that can read them
        read_from = contacts.last_pass_began if contacts.last_pass_whole else None
        due: dict[str, set[str]] = {}
        for entry in entries:
            cid, _, ms = entry.partition("@")
            if read_from is None or not ms or from_ms(int(ms)) >= read_from:
                due.setdefault(cid, set()).add(entry)
        shown = entries.difference(*due.values())
        if shown:
            ctx.checkpoints.drop_pending_contacts(shown)
        ids = sorted(due)
        for start in range(0, len(ids), IDS_PER_CALL):
            ctx.check_time()
            chunk = ids[start : start + IDS_PER_CALL]
            params = {**CONTACT_LIST.params, "IDs": ",".join(chunk), **paging_params(CONTACT_LIST, 1)}
            try:
                listed = ctx.api.list(CONTACT_LIST.name, CONTACT_LIST.key, params)
            except NotOffered:  # withdrawn since the contacts' pass: the rest wait for a run that can read them
                logger.info("contacts not offered: their re-read waits", extra={"pending": len(ids) - start})
                return
            applied = self.store(CONTACT_LIST, listed.records)
            # Only those stored are done: one Xero left out or that was rejected waits for the next run (or the next
            # whole read of the contacts, which shows it).
            done = [due[cid] for cid in chunk if cid in applied.stored_ids]
            if done:
                ctx.checkpoints.drop_pending_contacts(set().union(*done))


def clear_pass(cp: PassCheckpoint) -> None:
    """A pass completed or abandoned: the next one starts afresh."""
    cp.pass_kind = cp.pass_since = cp.pass_mark = cp.next_page = cp.pass_resumed = cp.pass_rejected = None
    cp.unavailable_since = cp.unavailable_confirmed = None


def _same_listing(spec: ResourceSpec, stored: Record, listed: Record) -> bool:
    """Whether a stored record (with its details) matches what the list shows now, details aside."""
    return {k: v for k, v in stored.items() if k not in spec.detail_fields} == {
        k: v for k, v in listed.items() if k not in spec.detail_fields
    }
