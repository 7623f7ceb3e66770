"""Odd answers from Xero, scripted answer by answer, against one resource's pass on moto: nothing is deleted on a
guess (a record missing from a read is gone only when a whole read proves it and, where Xero never removes records,
a second read agrees), a version stamped before the stored one replaces nothing, a date out of any calendar's range
fails nothing, and the counts stay what is stored."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.xero_emulator.dates import envelope_date
from xero_sync.catalogue import BY_NAME, CONTACT_LIST, Paging, ResourceSpec
from xero_sync.config import get_settings
from xero_sync.engine import EngineHooks
from xero_sync.engine.context import CheckpointStore, Context, options_from_settings
from xero_sync.engine.outcomes import OnResource, rule_for
from xero_sync.engine.passes import Passes
from xero_sync.models import PassCheckpoint, XeroRecord
from xero_sync.record_store import RecordStore
from xero_sync.schemas import SyncMode
from xero_sync.xero_api import XeroApi, XeroApiError
from xero_sync.xero_dates import parse_ms_date

CLIENT = "client-odd"
NOW = datetime(2026, 7, 1, tzinfo=UTC)
STAMP = "/Date(1780000000000+0000)/"
Answer = Callable[[dict[str, str]], dict[str, Any]]  # the body Xero answers, given the call's query


class ScriptedXero(XeroApi):
    """The real client's parsing of each answer, with the answers scripted: `answers` are used in turn, the last
    for every call after; a GET /{name}/{id} is answered by `by_id`, given the id."""

    def __init__(self, answers: list[Answer], by_id: Callable[[str], dict[str, Any]] | None = None) -> None:
        super().__init__("http://xero.invalid", "tenant", lambda _: "token", get_settings(), sleep=lambda _: None)
        self.answers = answers
        self.by_id = by_id
        self.asked: list[dict[str, str]] = []

    def _get(self, path: str, params: dict[str, str], headers: dict[str, str] | None) -> Any:
        if self.by_id and "/" in path:
            return self.by_id(path.split("/", 1)[1]), timedelta(milliseconds=5)
        self.asked.append(params)
        answer = self.answers[min(len(self.asked), len(self.answers)) - 1]
        return answer(params), timedelta(milliseconds=5)


def xero_date(when: datetime) -> str:
    """An answer's DateTimeUTC, as Xero writes it."""
    return envelope_date(int(when.timestamp() * 1000))


def records(spec: ResourceSpec, ids: list[str]) -> list[dict[str, Any]]:
    return [{spec.id_field: rid, "UpdatedDateUTC": STAMP, spec.status_field or "Name": "AUTHORISED"} for rid in ids]


def listing(spec: ResourceSpec, pages: list[list[str]], item_count: int | None = None) -> Answer:
    """A list answer of `pages` (by the `page` asked for), with Xero's `pagination` where the resource has one."""

    def answer(params: dict[str, str]) -> dict[str, Any]:
        page = int(params.get("page", "1"))
        body: dict[str, Any] = {spec.key: records(spec, pages[page - 1] if page <= len(pages) else [])}
        body["DateTimeUTC"] = xero_date(NOW)
        if spec.paging is Paging.PAGE_SIZE:
            count = sum(len(p) for p in pages) if item_count is None else item_count
            body["pagination"] = {"page": page, "pageSize": 1000, "pageCount": len(pages), "itemCount": count}
        return body

    return answer


def showing(spec: ResourceSpec, record: dict[str, Any]) -> Answer:
    """A list answer of this one record, as it is given."""
    plain = listing(spec, [[record[spec.id_field]]])
    return lambda params: {**plain(params), spec.key: [record]}


def answered_at(when: datetime, answer: Answer) -> Answer:
    """`answer`, with Xero's clock at `when`."""
    return lambda params: {**answer(params), "DateTimeUTC": xero_date(when)}


def engine_context(
    answers: list[Answer],
    mode: SyncMode = "incremental",
    by_id: Callable[[str], dict[str, Any]] | None = None,
    hooks: EngineHooks | None = None,
) -> Context:
    """A run's context whose calls to Xero get `answers`."""
    hooks = hooks or EngineHooks()
    return Context(
        client_id=CLIENT,
        api=ScriptedXero(answers, by_id),
        store=RecordStore(CLIENT),
        checkpoints=CheckpointStore(CLIENT, f"run-{mode}", lambda: NOW, hooks),
        mode=mode,
        options=options_from_settings(),
        clock=lambda: NOW,
        remaining_seconds=None,
        hooks=hooks,
    )


def run_pass(
    spec: ResourceSpec,
    answers: list[Answer],
    mode: SyncMode = "incremental",
    by_id: Callable[[str], dict[str, Any]] | None = None,
    hooks: EngineHooks | None = None,
) -> Context:
    ctx = engine_context(answers, mode, by_id, hooks)
    if spec.paging is Paging.OFFSET:
        Passes(ctx).by_offset(spec)
    else:
        Passes(ctx).by_date(spec)
    return ctx


def stored(spec: ResourceSpec) -> set[str]:
    return set(RecordStore(CLIENT).stored_ids(spec.name))


def imported(spec: ResourceSpec, ids: list[str], page_size: int = 0) -> None:
    """The resource imported cleanly, holding `ids` (on pages of `page_size`, where it pages)."""
    pages = [ids[i : i + page_size] for i in range(0, len(ids), page_size)] if page_size else [ids]
    run_pass(spec, [listing(spec, pages)], mode="initial")
    assert stored(spec) == set(ids)


# --- nothing deleted on a guess ---------------------------------------------------------------------------------------
def test_a_page_repeating_a_record_of_the_page_before_is_no_proof_of_the_one_it_left_out(aws):
    # Given four invoices stored
    spec = BY_NAME["Invoices"]
    imported(spec, ["a", "b", "c", "d"], page_size=2)
    # When every full read pages them as a, b / b, c (the list shifted between two pages: d left out), while Xero's
    # pagination still counts four records in two pages
    ctx = run_pass(spec, [listing(spec, [["a", "b"], ["b", "c"]], item_count=4)], mode="full")
    # Then d is kept, and the run says the read was not proven
    assert stored(spec) == {"a", "b", "c", "d"}
    assert ctx.totals.warnings[spec.name] == ["pagination_mismatch"]
    assert ctx.totals.counts[spec.name].deleted == 0


class WorkerDied(Exception):
    pass


def dies(_: PassCheckpoint) -> None:
    """A worker killed at a checkpoint (EngineHooks.after_save: once it is saved)."""
    raise WorkerDied


def test_a_read_resumed_in_another_invocation_moves_no_mark_past_a_record_the_shifted_list_left_out(aws):
    # Given invoices imported an hour ago
    spec = BY_NAME["Invoices"]
    run_pass(spec, [answered_at(NOW - timedelta(hours=1), listing(spec, [["x"]]))], mode="initial")
    mark = PassCheckpoint.get(CLIENT, spec.name).modified_since
    # When a, b, c and d changed since, on two pages, and the worker dies once the first page is checkpointed
    with pytest.raises(WorkerDied):
        run_pass(spec, [listing(spec, [["a", "b"], ["c", "d"]])], hooks=EngineHooks(after_save=dies))
    # And a changes again before the next invocation resumes the read at page 2: the list is b, c / d, a, so c (now
    # on page 1) is never read, while Xero's pagination still counts four records in two pages
    ctx = run_pass(spec, [listing(spec, [["b", "c"], ["d", "a"]])])
    # Then the mark stays where it was, so the next run asks for c again, and the run says the read was not proven
    assert "c" not in stored(spec)
    assert PassCheckpoint.get(CLIENT, spec.name).modified_since == mark
    assert ctx.totals.warnings[spec.name] == ["pagination_resumed"]


@pytest.mark.parametrize("item_count", ["missing", None, "30", True], ids=["missing", "null", "text", "true"])
def test_a_pagination_without_its_item_count_is_no_proof_that_a_short_read_is_whole(aws, item_count):
    # Given 30 invoices stored
    spec = BY_NAME["Invoices"]
    ids = [f"inv-{n:02}" for n in range(30)]
    imported(spec, ids)
    # When every full read shows three, with a `pagination` whose itemCount is missing or not a number
    short = listing(spec, [ids[:3]])

    def uncounted(params: dict[str, str]) -> dict[str, Any]:
        body = short(params)
        counts = {k: v for k, v in body["pagination"].items() if k != "itemCount"}
        return {**body, "pagination": counts if item_count == "missing" else {**counts, "itemCount": item_count}}

    ctx = run_pass(spec, [uncounted], mode="full")
    # Then nothing is deleted, and the run says the read was not proven
    assert stored(spec) == set(ids)
    assert ctx.totals.warnings[spec.name] == ["pagination_missing"]
    assert RecordStore(CLIENT).counts()[spec.name] == 30


@pytest.mark.parametrize("resource", ["Users", "Items"])
def test_an_empty_answer_once_deletes_no_few_records_a_second_read_still_shows(aws, resource):
    # Given a few records of a resource stored (under the mass-deletion threshold): users, whose deletions Xero
    # shows as a status, and items, which vanish when deleted
    spec = BY_NAME[resource]
    imported(spec, ["u1", "u2", "u3"])
    # When a full read answers an empty list once, and then the list as it is
    ctx = run_pass(spec, [listing(spec, [[]]), listing(spec, [["u1", "u2", "u3"]])], mode="full")
    # Then nothing is deleted: the second read showed them all
    assert stored(spec) == {"u1", "u2", "u3"}
    assert ctx.totals.counts[spec.name].deleted == 0
    assert RecordStore(CLIENT).counts()[spec.name] == 3


@pytest.mark.parametrize(
    ("resource", "reads"),
    [
        ("Items", 1),  # items vanish from Xero when deleted: one whole read without it proves it gone
        ("Invoices", 2),  # Xero shows a deleted invoice with its status: one left out of a list is odd, read again
    ],
)
def test_a_record_a_whole_read_no_longer_shows_is_deleted_after_the_reads_its_resource_needs(aws, resource, reads):
    # Given three records stored, one of which is deleted in Xero
    spec = BY_NAME[resource]
    imported(spec, ["a", "b", "c"])
    # When a full read lacks it (and so does the read that confirms it, if one is made)
    ctx = run_pass(spec, [listing(spec, [["a", "b"]])], mode="full")
    # Then it is deleted after as many reads as its resource needs, and the count is what is stored
    assert stored(spec) == {"a", "b"}
    assert ctx.totals.counts[spec.name].deleted == 1 and len(ctx.api.asked) == reads  # type: ignore[attr-defined]
    assert RecordStore(CLIENT).counts()[spec.name] == 2


def test_a_mass_deletion_the_second_read_cannot_prove_leaves_the_count_at_what_is_stored(aws):
    # Given 30 invoices stored
    spec = BY_NAME["Invoices"]
    ids = [f"inv-{n:02}" for n in range(30)]
    imported(spec, ids)
    # When a full read proves only five, and the confirming read comes without Xero's pagination
    short = listing(spec, [ids[:5]])
    unproven: Answer = lambda params: {k: v for k, v in short(params).items() if k != "pagination"}  # noqa: E731
    ctx = run_pass(spec, [short, unproven], mode="full")
    # Then nothing is deleted, and the resource's count is still the 30 stored
    assert stored(spec) == set(ids)
    assert ctx.totals.warnings[spec.name] == ["sweep_unconfirmed"]
    assert RecordStore(CLIENT).counts()[spec.name] == 30


@pytest.mark.parametrize(
    ("resource", "held", "kept"),
    [("Invoices", 3, True), ("Invoices", 30, True), ("Users", 3, True), ("Items", 3, False)],
    ids=["a-few-invoices", "many-invoices", "users", "items"],
)
def test_a_whole_read_that_shows_none_deletes_nothing_where_xero_shows_deletions_as_a_status(aws, resource, held, kept):
    # Given records stored: invoices or users, whose deletions Xero shows as a status, or items, which vanish
    spec = BY_NAME[resource]
    ids = [f"r{n:02}" for n in range(held)]
    imported(spec, ids)
    # When every whole read answers an empty list
    ctx = run_pass(spec, [listing(spec, [[]])], mode="full")
    # Then invoices and users are all kept, after that one read, and the run says why nothing was swept; items are
    # deleted once a second read agrees
    assert stored(spec) == (set(ids) if kept else set())
    assert RecordStore(CLIENT).counts()[spec.name] == (held if kept else 0)
    assert len(ctx.api.asked) == (1 if kept else 2)  # type: ignore[attr-defined]
    assert ctx.totals.warnings.get(spec.name, []) == (["sweep_refused"] if kept else [])


@pytest.mark.parametrize("left_out", [1, 20], ids=["one", "a-mass-deletion"])
@pytest.mark.parametrize(
    "spoil",
    [
        lambda r: {k: v for k, v in r.items() if k != "UpdatedDateUTC"},
        lambda r: {**r, "UpdatedDateUTC": "/Date(not a date)/"},
        lambda r: {k: v for k, v in r.items() if k != "InvoiceID"},
    ],
    ids=["no-stamp", "unparseable-stamp", "no-id"],
)
def test_a_confirming_read_that_rejects_a_record_deletes_nothing(aws, left_out, spoil):
    # Given 30 invoices stored
    spec = BY_NAME["Invoices"]
    ids = [f"inv-{n:02}" for n in range(30)]
    imported(spec, ids)
    # When a full read leaves the last ones out, and the read that would confirm it lists them all, the last one as a
    # record the engine cannot take (it may well be one of those left out)
    short = listing(spec, [ids[:-left_out]])
    whole = listing(spec, [ids])

    def spoiled(params: dict[str, str]) -> dict[str, Any]:
        body = whole(params)
        return {**body, spec.key: [*body[spec.key][:-1], spoil(body[spec.key][-1])]}

    ctx = run_pass(spec, [short, spoiled], mode="full")
    # Then nothing is deleted, and the run says the deletion was not confirmed and which record it rejected
    assert stored(spec) == set(ids)
    counts = ctx.totals.counts[spec.name]
    assert (counts.deleted, counts.rejected) == (0, 1)
    assert ctx.totals.warnings[spec.name] == ["sweep_unconfirmed"]
    assert [e.split(": ", 1)[0] for e in ctx.totals.errors[spec.name]] == ["record 30 of a page"]
    assert RecordStore(CLIENT).counts()[spec.name] == 30


# --- earlier versions -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stamp", "kept"),
    [("/Date(1770000000000+0000)/", True), (STAMP, False), ("/Date(1790000000000+0000)/", False)],
    ids=["stamped-before", "stamped-the-same", "stamped-after"],
)
def test_an_answer_stamped_before_the_stored_record_is_stale_and_one_stamped_the_same_or_after_replaces_it(
    aws, stamp, kept
):
    # Given an invoice stored as authorised
    spec = BY_NAME["Invoices"]
    authorised = {"InvoiceID": "a", "UpdatedDateUTC": STAMP, "Status": "AUTHORISED", "Total": 100}
    run_pass(spec, [showing(spec, authorised)], mode="initial")
    # When a later read shows it voided, stamped before the stored version, at the same time, or after it
    voided = {**authorised, "UpdatedDateUTC": stamp, "Status": "VOIDED", "Total": 0}
    ctx = run_pass(spec, [showing(spec, voided)])
    # Then a version stamped before is an earlier one (Xero's stamps only move forward): counted unchanged, the
    # stored one kept as readers see it (its body, and the stamp and status the data API filters on); otherwise the
    # voided invoice replaces it
    expected = authorised if kept else voided
    store = RecordStore(CLIENT)
    assert store.bodies(spec, ["a"]) == {"a": expected}
    item = XeroRecord.get(store.partition(spec.name), "a")
    assert (item.status, item.updated_ms) == (expected["Status"], parse_ms_date(expected["UpdatedDateUTC"]))
    counts = ctx.totals.counts[spec.name]
    assert (counts.unchanged, counts.updated) == ((1, 0) if kept else (0, 1))


def test_a_record_twice_in_one_answer_is_stored_as_its_latest_version(aws):
    # Given an invoice stored as authorised
    spec = BY_NAME["Invoices"]
    authorised = {"InvoiceID": "a", "UpdatedDateUTC": STAMP, "Status": "AUTHORISED", "Total": 100}
    run_pass(spec, [showing(spec, authorised)], mode="initial")
    # When one answer lists it twice: voided, stamped later, and then its earlier version
    voided = {**authorised, "UpdatedDateUTC": "/Date(1790000000000+0000)/", "Status": "VOIDED", "Total": 0}
    plain = listing(spec, [["a"]])
    run_pass(spec, [lambda params: {**plain(params), spec.key: [voided, authorised]}])
    # Then the voided invoice is stored, whichever copy came last
    assert RecordStore(CLIENT).bodies(spec, ["a"]) == {"a": voided}


def test_a_record_xero_does_not_stamp_replaces_the_stored_one_whenever_it_differs(aws):
    # Given a tax rate stored (Xero stamps no tax rate)
    spec = BY_NAME["TaxRates"]
    active = {"TaxType": "OUTPUT2", "Name": "GST on Income", "Status": "ACTIVE"}
    run_pass(spec, [showing(spec, active)], mode="initial")
    # When a later read shows it deleted
    deleted = {**active, "Status": "DELETED"}
    ctx = run_pass(spec, [showing(spec, deleted)])
    # Then the deleted version is stored
    assert RecordStore(CLIENT).bodies(spec, ["OUTPUT2"]) == {"OUTPUT2": deleted}
    assert ctx.totals.counts[spec.name].updated == 1


@pytest.mark.parametrize(
    "answered",
    [["g1", "g2", "g3", "g4", "g5"], ["g1"], []],
    ids=["the-whole-list", "another-record", "no-record"],
)
def test_a_record_read_by_id_answered_as_another_fails_the_resource_and_deletes_nothing(aws, answered):
    # Given five contact groups imported, each read on its own for its members
    spec = BY_NAME["ContactGroups"]
    ids = ["g1", "g2", "g3", "g4", "g5"]
    run_pass(spec, [listing(spec, [ids])], mode="initial", by_id=lambda rid: {spec.key: records(spec, [rid])})
    # When a full sync's list shows them all, but GET /ContactGroups/{id} answers other groups, or none, whatever
    # the id asked for
    with pytest.raises(XeroApiError) as failed:
        run_pass(spec, [listing(spec, [ids])], mode="full", by_id=lambda rid: {spec.key: records(spec, answered)})
    # Then the resource fails with a code (the run ends partial), and every group is still stored
    assert rule_for(failed.value).on_resource is OnResource.FAILED and failed.value.code == "record_mismatch"
    assert stored(spec) == set(ids)
    assert RecordStore(CLIENT).counts()[spec.name] == 5


def test_a_page_endpoint_answering_the_same_page_again_fails_the_resource_and_keeps_its_mark(aws):
    # Given quotes imported an hour ago
    spec = BY_NAME["Quotes"]
    run_pass(spec, [answered_at(NOW - timedelta(hours=1), listing(spec, [["q-old"]]))], mode="initial")
    mark = PassCheckpoint.get(CLIENT, spec.name).modified_since
    # When a full sync's answers ignore `page`: the same full page each time (the sixth call's answer ends the
    # list, so that a pass that does not notice ends too)
    asked: list[str] = []
    full_page = listing(spec, [[f"q{n:03}" for n in range(spec.page_size)]])

    def first_page(params: dict[str, str]) -> dict[str, Any]:
        asked.append(params["page"])
        return full_page({**params, "page": "1"})

    with pytest.raises(XeroApiError) as failed:
        run_pass(spec, [*[first_page] * 5, listing(spec, [])], mode="full")
    # Then the resource fails with a code at the second page (the run ends partial), and its mark stays
    assert rule_for(failed.value).on_resource is OnResource.FAILED and failed.value.code == "pagination_repeated"
    assert asked == ["1", "2"]
    assert PassCheckpoint.get(CLIENT, spec.name).modified_since == mark


# --- dates out of range ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "answered",
    [
        "/Date(99999999999999999999)/",
        "/Date(4102444800000+0000)/",
        "/Date(-62135596800000)/",
        "2026-07-01T00:00:00",
        xero_date(NOW + timedelta(hours=20)),
        xero_date(NOW + timedelta(minutes=5)),
    ],
    ids=["beyond-any-calendar", "in-2100", "in-year-1", "iso", "hours-ahead", "minutes-ahead"],
)
def test_an_answer_time_unlike_xeros_clock_fails_nothing_and_moves_no_mark_past_the_read(aws, answered):
    # Given invoices imported
    spec = BY_NAME["Invoices"]
    imported(spec, ["a"])
    # When Xero's envelope time is not a time, is ahead of ours (Xero's clock, or an odd answer: either may be), or
    # is a day or more behind
    plain = listing(spec, [["a", "b"]])
    odd: Answer = lambda params: {**plain(params), "DateTimeUTC": answered}  # noqa: E731
    run_pass(spec, [odd])
    # Then the page is stored, and the mark is when the read was asked, by our clock
    assert stored(spec) == {"a", "b"}
    assert PassCheckpoint.get(CLIENT, spec.name).modified_since == NOW
    # And the next pass runs from it
    run_pass(spec, [plain])
    assert PassCheckpoint.get(CLIENT, spec.name).modified_since == NOW - timedelta(milliseconds=5)


def test_a_record_stamped_beyond_any_calendar_is_rejected_with_its_reason_and_the_rest_stored(aws):
    spec = BY_NAME["Invoices"]
    imported(spec, ["a"])
    mark = PassCheckpoint.get(CLIENT, spec.name).modified_since
    # When one invoice of a page is stamped out of any calendar's range
    plain = listing(spec, [["a", "b", "c"]])

    def odd(params: dict[str, str]) -> dict[str, Any]:
        body = plain(params)
        body[spec.key][2]["UpdatedDateUTC"] = "/Date(-99999999999999999)/"
        return body

    ctx = run_pass(spec, [odd])
    # Then the others are stored, the odd one is rejected with its reason, and the mark stays for the next run
    assert stored(spec) == {"a", "b"}
    assert ctx.totals.counts[spec.name].rejected == 1
    assert "c: no Xero UpdatedDateUTC" in ctx.totals.errors[spec.name][0]
    assert PassCheckpoint.get(CLIENT, spec.name).modified_since == mark


# --- answers without a list -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("listed", ["missing", None, {"InvoiceID": "a"}], ids=["no-key", "null", "object"])
def test_an_answer_without_its_list_fails_the_resource_and_keeps_its_records_and_checkpoint(aws, listed):
    spec = BY_NAME["Invoices"]
    imported(spec, ["a", "b"])
    before = PassCheckpoint.get(CLIENT, spec.name)

    def odd(params: dict[str, str]) -> dict[str, Any]:
        body = listing(spec, [["a"]])(params)
        return {k: v for k, v in body.items() if k != spec.key} if listed == "missing" else {**body, spec.key: listed}

    # When a full read's answer has no list of invoices
    with pytest.raises(XeroApiError) as failed:
        run_pass(spec, [odd], mode="full")
    # Then the resource fails with a code (the run ends partial: outcomes.RULES), nothing is deleted, no mark moves
    assert rule_for(failed.value).on_resource is OnResource.FAILED and failed.value.code == "xero_transient_failure"
    assert stored(spec) == {"a", "b"}
    after = PassCheckpoint.get(CLIENT, spec.name)
    assert (after.modified_since, after.full_synced_at) == (before.modified_since, before.full_synced_at)


# --- offset reads (Journals) -----------------------------------------------------------------------------------------
def numbered_page(spec: ResourceSpec, numbers: list[int], first: int = 1) -> dict[str, Any]:
    """An answer listing records numbered `numbers`, in that order (the first one's id j{first}, and so on)."""
    listed = [
        {spec.id_field: f"j{i}", spec.offset_field: n, "CreatedDateUTC": STAMP} for i, n in enumerate(numbers, first)
    ]
    return {spec.key: listed, "DateTimeUTC": xero_date(NOW)}


def numbered(spec: ResourceSpec, last: int) -> Answer:
    """Xero's offset paging over records numbered 1 to `last`: the first 100 numbered above the offset asked for."""

    def answer(params: dict[str, str]) -> dict[str, Any]:
        offset = int(params["offset"])
        return numbered_page(spec, list(range(offset + 1, last + 1))[: spec.page_size], first=offset + 1)

    return answer


def journals(last: int) -> set[str]:
    return {f"j{i}" for i in range(1, last + 1)}


@pytest.mark.parametrize(
    "numbers",
    [
        [*range(51, 56), 2_000_000_000, *range(57, 61)],  # one number far off, mid-page
        [*range(51, 60), 2_000_000_000],  # the page's last number far off: the next call would ask above it
        list(range(50, 60)),  # a number not above the offset asked for
    ],
    ids=["out-of-order", "jump-at-the-end", "not-above-the-offset"],
)
def test_a_page_of_journals_out_of_sequence_fails_the_resource_and_keeps_its_offset(aws, numbers):
    # Given journals 1 to 50 imported
    spec = BY_NAME["Journals"]
    run_pass(spec, [numbered(spec, 50)], mode="initial")
    # When Xero answers the next ten with a number out of sequence
    with pytest.raises(XeroApiError) as failed:
        run_pass(spec, [lambda params: numbered_page(spec, numbers, first=51)])
    # Then the resource fails with a code (the run ends partial), nothing of the page is stored, the offset stays
    assert rule_for(failed.value).on_resource is OnResource.FAILED and failed.value.code == "pagination_out_of_sequence"
    assert stored(spec) == journals(50)
    assert PassCheckpoint.get(CLIENT, spec.name).journal_offset == 50
    # And once Xero numbers them in sequence, the next run reads on from there
    run_pass(spec, [numbered(spec, 60)])
    assert stored(spec) == journals(60)
    assert PassCheckpoint.get(CLIENT, spec.name).journal_offset == 60


def test_a_full_sync_brings_back_a_journal_offset_past_what_xero_has(aws):
    # Given journals 1 to 50 imported, and an offset past any journal Xero has (as an odd number, before pages were
    # checked for their sequence, left it)
    spec = BY_NAME["Journals"]
    run_pass(spec, [numbered(spec, 50)], mode="initial")
    checkpoint = PassCheckpoint.get(CLIENT, spec.name)
    checkpoint.journal_offset = 2_000_000_000
    checkpoint.save()
    # When a full sync re-reads the journals, ten posted since
    run_pass(spec, [numbered(spec, 60)], mode="full")
    # Then the offset is the last journal it read, and the next run reads on from there
    assert stored(spec) == journals(60)
    assert PassCheckpoint.get(CLIENT, spec.name).journal_offset == 60
    ctx = run_pass(spec, [numbered(spec, 70)])
    assert ctx.api.asked == [{"offset": "60"}]  # type: ignore[attr-defined]
    assert stored(spec) == journals(70)


def test_a_full_sync_whose_read_of_the_journals_ends_short_deletes_none(aws):
    # Given journals 1 to 50 imported (Xero never edits or removes one)
    spec = BY_NAME["Journals"]
    run_pass(spec, [numbered(spec, 50)], mode="initial")
    # When a full sync's every read of them ends after journal 30
    ctx = run_pass(spec, [numbered(spec, 30)], mode="full")
    # Then all 50 are kept and counted, in one read
    assert stored(spec) == journals(50)
    assert RecordStore(CLIENT).counts()[spec.name] == 50
    assert ctx.totals.counts[spec.name].deleted == 0 and len(ctx.api.asked) == 1  # type: ignore[attr-defined]


# --- the contacts' re-read by IDs -------------------------------------------------------------------------------------
def test_the_contacts_re_read_keeps_waiting_for_one_xero_left_out_or_that_was_rejected(aws):
    # Given three contacts imported, each to be read again by its id (a document of theirs changed)
    spec = CONTACT_LIST
    imported(spec, ["c1", "c2", "c3"])
    # When Xero's answer to the re-read shows the first, the second without its stamp, and not the third
    plain = listing(spec, [["c1", "c2"]])

    def answer(params: dict[str, str]) -> dict[str, Any]:
        body = plain(params)
        del body[spec.key][1]["UpdatedDateUTC"]
        return body

    ctx = engine_context([answer])
    ctx.checkpoints.add_pending_contacts({"c1", "c2", "c3"})
    Passes(ctx).follow_up()
    # Then the first is done, and the other two wait for the next run's re-read
    assert ctx.api.asked[0]["IDs"] == "c1,c2,c3"  # type: ignore[attr-defined]
    assert ctx.checkpoints.pending_contacts() == {"c2", "c3"}
