"""The data API through its real handlers: a synced client's Xero data, page by page, equal to the emulator's ground
truth, in Xero's own schemas; filters, cursors, errors, and what a page costs."""

import base64
import json
import tracemalloc
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.api import Api
from tests.builders import a_client
from tests.conftest import AWS_CALLS
from tests.sync_support import Emulated, drain, link_client, run_to_end, sync
from xero_sync import xero_data
from xero_sync.catalogue import BY_NAME, CATALOGUE
from xero_sync.models import Client, LinkState, XeroRecord
from xero_sync.record_store import RecordStore, contact_of
from xero_sync.xero_data import component_schemas
from xero_sync.xero_dates import parse_ms_date

INVOICES, CONTACTS = BY_NAME["Invoices"], BY_NAME["Contacts"]


@pytest.fixture
def synced(aws, api, emu: Emulated, queue_url) -> tuple[str, Client]:
    """A tiny organisation linked as practice A's client and synced to the end."""
    tenant = emu.create_org("Data Ltd")
    client = link_client(api, emu, tenant, "practice-a")
    (message,) = drain(aws.session, queue_url)
    assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    return tenant, client


def pages_of(api: Api, client_id: str, resource: str, query: str = "") -> list[list[dict[str, Any]]]:
    """Every page of the resource for `query`, each nextCursor followed to the end."""
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    for _ in range(1000):
        paging = f"cursor={cursor}" if cursor else ""
        response = api.call(
            "GET", f"/clients/{client_id}/xero/{resource}", query="&".join(filter(None, [query, paging]))
        )
        assert response.status == 200, str(response.body)[:300]
        assert response.body["resource"] == resource
        pages.append(response.body["items"])
        if (cursor := response.body["nextCursor"]) is None:
            return pages
    raise AssertionError("paging never ended")


def every_page(api: Api, client_id: str, resource: str, query: str = "", limit: int = 3) -> list[dict[str, Any]]:
    """Pages the resource to the end, `limit` records a page."""
    paged = pages_of(api, client_id, resource, "&".join(filter(None, [query, f"limit={limit}"])))
    return [item for page in paged for item in page]


def by_id(resource: str, records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    spec = BY_NAME[resource]
    return {str(r[spec.id_field]): r for r in records}


def schema_validator(resource: str) -> Draft202012Validator:
    """Xero's schema of the resource, as the OpenAPI document publishes it (its $refs to the other components)."""
    components = {"components": {"schemas": component_schemas()}}
    registry = Registry().with_resource("urn:doc", Resource(contents=components, specification=DRAFT202012))
    name = f"Xero{BY_NAME[resource].xero_schema}"
    return Draft202012Validator({"$ref": f"urn:doc#/components/schemas/{name}"}, registry=registry)


def test_every_resource_pages_to_the_emulators_truth_in_xeros_schemas(api, emu, synced):
    tenant, client = synced
    for spec in CATALOGUE:
        # When every resource is paged to the end, three records a page
        items = every_page(api, client.client_id, spec.name)
        # Then it is exactly Xero's current data, each record once, in id order, valid against Xero's schema
        truth = emu.truth(tenant, spec.name)
        assert by_id(spec.name, items) == truth, spec.name
        assert [spec and str(r[spec.id_field]) for r in items] == sorted(truth), spec.name
        validator = schema_validator(spec.name)
        for record in items:
            assert not list(validator.iter_errors(record)), (spec.name, record)


def test_the_organisation_view_shows_the_organisation_and_each_resources_import(api, emu, synced):
    tenant, client = synced

    response = api.call("GET", f"/clients/{client.client_id}/xero")

    assert response.status == 200, response.body
    body = response.body
    assert body["clientId"] == client.client_id
    assert [body["organisation"]] == list(emu.truth(tenant, "Organisation").values())
    assert [r["resource"] for r in body["resources"]] == [s.name for s in CATALOGUE]
    for entry in body["resources"]:
        truth = emu.truth(tenant, entry["resource"]).values()
        assert entry["records"] == len(truth), entry
        assert entry["lastImportedAt"] is not None, entry
        # The latest UpdatedDateUTC among the records (none for resources Xero does not stamp)
        stamps = [ms for r in truth if (ms := parse_ms_date(r.get("UpdatedDateUTC"))) is not None]
        expected = datetime.fromtimestamp(max(stamps) / 1000, UTC) if stamps else None
        shown = datetime.fromisoformat(entry["lastChangedAt"]) if entry["lastChangedAt"] else None
        assert shown == expected, entry


def test_a_renamed_contact_shows_its_new_name_on_the_invoices_after_the_next_sync(aws, api, emu, synced, queue_url):
    tenant, client = synced
    before = every_page(api, client.client_id, "Invoices", limit=100)
    invoiced = {contact_of(i) for i in before}
    names = {cid: c["Name"] for cid, c in emu.truth(tenant, "Contacts").items()}
    # Given Xero users' changes until a contact named on an invoice is renamed
    for seed in range(1, 40):
        emu.change(tenant, 5, seed=seed)
        renamed = {cid for cid, c in emu.truth(tenant, "Contacts").items() if cid in names and c["Name"] != names[cid]}
        if renamed & invoiced:
            break
    else:
        pytest.fail("no invoiced contact was renamed")
    # When the next sync runs and the invoices are paged again
    assert sync(aws.session, queue_url, client).status == "succeeded"
    after = every_page(api, client.client_id, "Invoices", limit=100)
    # Then they are Xero's, the renamed contact's new name on each of its invoices
    assert by_id("Invoices", after) == emu.truth(tenant, "Invoices")
    current = {cid: c["Name"] for cid, c in emu.truth(tenant, "Contacts").items()}
    shown = [i["Contact"]["Name"] for i in after if contact_of(i) in renamed]
    assert shown and all(
        name == current[contact_of(i)]
        for i, name in zip([i for i in after if contact_of(i) in renamed], shown, strict=True)
    )
    assert not set(shown) & {names[cid] for cid in renamed}


def test_filters_combine_with_paging(api, emu, synced):
    tenant, client = synced
    truth = list(emu.truth(tenant, "Invoices").values())
    some_contact = contact_of(truth[0])
    stamps = sorted(parse_ms_date(i["UpdatedDateUTC"]) for i in truth)
    middle = stamps[len(stamps) // 2]
    since = datetime.fromtimestamp(middle / 1000, UTC).isoformat().replace("+00:00", "Z")

    def ids(query: str) -> list[str]:
        return sorted(i["InvoiceID"] for i in every_page(api, client.client_id, "Invoices", query, limit=1))

    assert ids(f"contactId={some_contact}") == sorted(i["InvoiceID"] for i in truth if contact_of(i) == some_contact)
    assert ids("status=PAID") == sorted(i["InvoiceID"] for i in truth if i["Status"] == "PAID")
    assert ids(f"updatedSince={quote(since)}") == sorted(
        i["InvoiceID"] for i in truth if parse_ms_date(i["UpdatedDateUTC"]) >= middle
    )
    assert ids(f"status=PAID&contactId={some_contact}") == sorted(
        i["InvoiceID"] for i in truth if i["Status"] == "PAID" and contact_of(i) == some_contact
    )
    # ids: one batch read, in id order, the other filters applied too; unknown ids are left out
    wanted = sorted(i["InvoiceID"] for i in truth[:5])
    listed = api.call("GET", f"/clients/{client.client_id}/xero/Invoices", query=f"ids={','.join(wanted)},nope")
    assert [i["InvoiceID"] for i in listed.body["items"]] == wanted and listed.body["nextCursor"] is None
    paid = [i for i in wanted if emu.truth(tenant, "Invoices")[i]["Status"] == "PAID"]
    filtered = api.call(
        "GET", f"/clients/{client.client_id}/xero/Invoices", query=f"ids={','.join(wanted)}&status=PAID"
    )
    assert [i["InvoiceID"] for i in filtered.body["items"]] == paid


def test_a_filter_that_does_not_apply_or_asks_too_much_is_a_422(api, synced):
    _, client = synced
    for query in ("contactId=abc", f"ids={','.join(str(n) for n in range(101))}", "ids=a,,b", "limit=1001"):
        resource = "Accounts" if query.startswith("contactId") else "Invoices"
        response = api.call("GET", f"/clients/{client.client_id}/xero/{resource}", query=query)
        assert response.status == 422, (query, response.body)
        assert response.body["error"]["code"] == "validation_error"
    response = api.call("GET", f"/clients/{client.client_id}/xero/Accounts", query="contactId=abc")
    assert response.body["error"]["details"][0]["location"] == "query.contactId"


def test_a_record_whose_contact_id_is_no_uuid_is_kept_whole_and_a_contact_id_filter_that_is_no_uuid_is_a_422(aws, api):
    # Given an invoice of a contact, and one whose ContactID is no UUID (Xero's are; `c` holds a UUID's 16 bytes)
    client = a_client("practice-a")
    contact = "c0000001-0000-4000-8000-000000000000"
    stamp = "/Date(1778412345678+0000)/"
    invoices = [
        {"InvoiceID": f"i000000{n}-0000-4000-8000-000000000000", "Contact": {"ContactID": cid}, "UpdatedDateUTC": stamp}
        for n, cid in enumerate([contact, "not-a-uuid"])
    ]
    RecordStore(client.client_id).apply(INVOICES, invoices)
    # Then both are stored whole
    listed = api.call("GET", f"/clients/{client.client_id}/xero/Invoices").body["items"]
    assert [i["Contact"]["ContactID"] for i in listed] == [contact, "not-a-uuid"]
    # And the contact's records are found by its ContactID; a contactId that is no UUID is a 422
    found = api.call("GET", f"/clients/{client.client_id}/xero/Invoices", query=f"contactId={contact}")
    assert [i["InvoiceID"] for i in found.body["items"]] == [invoices[0]["InvoiceID"]]
    refused = api.call("GET", f"/clients/{client.client_id}/xero/Invoices", query="contactId=not-a-uuid")
    assert (refused.status, refused.body["error"]["details"][0]["location"]) == (422, "query.contactId")


def test_copies_naming_ids_no_key_can_hold_are_left_as_xero_sent_them_and_their_pages_read(aws, api):
    # Given records as a hostile Xero could send them, which the sync stores (their own ids are good): a contact
    # naming a group by a list, and invoices whose embedded contact's ContactID is empty or over 1,024 bytes
    client = a_client("practice-a")
    store, stamp = RecordStore(client.client_id), "/Date(1778412345678+0000)/"
    group = {"ContactGroupID": "g0000001-0000-4000-8000-000000000000", "Name": "Trade", "Status": "ACTIVE"}
    store.apply(BY_NAME["ContactGroups"], [group])
    odd_group = {"ContactGroupID": ["not", "an", "id"], "Name": "Odd"}
    contact = {
        "ContactID": "c0000001-0000-4000-8000-000000000000",
        "Name": "Harbour Café",
        "ContactGroups": [odd_group, {"ContactGroupID": group["ContactGroupID"], "Name": "Old name"}],
        "UpdatedDateUTC": stamp,
    }
    store.apply(BY_NAME["Contacts"], [contact])
    odd_contact_ids = ["", "\u00e9" * 600]
    store.apply(
        INVOICES,
        [
            {
                "InvoiceID": f"i000000{n}-0000-4000-8000-000000000000",
                "Contact": {"ContactID": cid},
                "UpdatedDateUTC": stamp,
            }
            for n, cid in enumerate(odd_contact_ids)
        ],
    )
    first = len(AWS_CALLS.calls)

    # When their pages and records are read, then each answers, with the group it can resolve and the copies it
    # cannot left as they came
    contacts = api.call("GET", f"/clients/{client.client_id}/xero/Contacts")
    assert contacts.status == 200, contacts.body
    assert [g["Name"] for g in contacts.body["items"][0]["ContactGroups"]] == ["Trade"]
    one = api.call("GET", f"/clients/{client.client_id}/xero/Contacts/{contact['ContactID']}")
    assert one.status == 200, one.body
    invoices = api.call("GET", f"/clients/{client.client_id}/xero/Invoices")
    assert invoices.status == 200, invoices.body
    assert [i["Contact"]["ContactID"] for i in invoices.body["items"]] == odd_contact_ids
    # And no key DynamoDB would refuse (an empty one, or one over 1,024 bytes: moto takes both) was asked for
    keys = [
        key["id"]["S"]
        for call in AWS_CALLS.since(first)
        if call.operation == "BatchGetItem"
        for request in call.params["RequestItems"].values()
        for key in request["Keys"]
    ]
    assert all(0 < len(key.encode()) <= 1024 for key in keys), keys


def test_a_record_written_when_its_contact_was_stored_as_text_is_still_read(aws, api):
    # Given an invoice whose item holds its ContactID as text, as items written before it was kept as 16 bytes do
    client = a_client("practice-a")
    contact = "c0000001-0000-4000-8000-000000000000"
    invoice = {
        "InvoiceID": "i0000001-0000-4000-8000-000000000000",
        "Contact": {"ContactID": contact},
        "UpdatedDateUTC": "/Date(1778412345678+0000)/",
    }
    assert RecordStore(client.client_id).apply(INVOICES, [invoice]).counts.inserted == 1
    key = {"pk": {"S": XeroRecord.partition_key(client.client_id, "Invoices")}, "id": {"S": invoice["InvoiceID"]}}
    aws.session.client("dynamodb").update_item(
        TableName=aws.physical["RecordsTable"].ref,
        Key=key,
        UpdateExpression="SET c = :text",
        ExpressionAttributeValues={":text": {"S": contact}},
    )
    # When its page and the page of those ids are read, then it is there, whole
    for query in ("", f"ids={invoice['InvoiceID']}"):
        response = api.call("GET", f"/clients/{client.client_id}/xero/Invoices", query=query)
        assert response.status == 200, response.body
        assert [i["Contact"]["ContactID"] for i in response.body["items"]] == [contact]


def test_an_id_longer_than_any_stored_key_is_a_422_before_any_read(aws, api):
    # DynamoDB refuses a sort key over 1,024 bytes with a ValidationException (a 500, were it sent), and no record is
    # stored under one (split_storable)
    client = a_client("practice-a")
    for too_long in ("a" * 1025, quote("\u00e9" * 513), f"short-id,{'b' * 2000}"):
        first = len(AWS_CALLS.calls)
        response = api.call("GET", f"/clients/{client.client_id}/xero/Invoices", query=f"ids={too_long}")
        assert response.status == 422, response.body
        assert response.body["error"]["code"] == "validation_error"
        assert response.body["error"]["details"] == [{"location": "query.ids", "reason": "an id over 1024 bytes"}]
        assert AWS_CALLS.since(first) == []


def test_a_cursor_is_good_only_for_its_own_client_resource_and_filter(api, emu, synced):
    _, client = synced
    other = link_client(api, emu, emu.create_org("Other Ltd"), "practice-a")
    first = api.call("GET", f"/clients/{client.client_id}/xero/Invoices", query="limit=1")
    cursor = first.body["nextCursor"]
    assert cursor
    # The same request goes on with it
    assert api.call("GET", f"/clients/{client.client_id}/xero/Invoices", query=f"limit=1&cursor={cursor}").status == 200
    refused = [
        (client.client_id, "Contacts", ""),
        (other.client_id, "Invoices", ""),
        (client.client_id, "Invoices", "status=PAID&"),
        (client.client_id, "Invoices", "ids=a&"),
    ]
    for client_id, resource, query in refused:
        response = api.call("GET", f"/clients/{client_id}/xero/{resource}", query=f"{query}cursor={cursor}")
        assert response.status == 400, (client_id, resource, query, response.body)
        assert response.body["error"]["code"] == "invalid_cursor"
    for garbage in ("x", "bm90IGEgY3Vyc29y", "%00"):
        response = api.call("GET", f"/clients/{client.client_id}/xero/Invoices", query=f"cursor={garbage}")
        assert (response.status, response.body["error"]["code"]) == (400, "invalid_cursor"), garbage


def test_a_cursor_goes_on_after_any_id_the_store_holds_and_never_after_one_no_key_can_hold(aws, api):
    # Given invoices whose ids hold a newline (any text a key holds is stored)
    client = a_client("practice-a")
    stamp = "/Date(1778412345678+0000)/"
    ids = ["a\nid-1", "a\nid-2"]
    RecordStore(client.client_id).apply(INVOICES, [{"InvoiceID": rid, "UpdatedDateUTC": stamp} for rid in ids])
    path = f"/clients/{client.client_id}/xero/Invoices"
    # When they are read a page of one at a time, then paging on reaches each once
    first = api.call("GET", path, query="limit=1")
    second = api.call("GET", path, query=f"limit=1&cursor={first.body['nextCursor']}")
    assert second.status == 200, second.body
    assert [page.body["items"][0]["InvoiceID"] for page in (first, second)] == ids
    # And a cursor made up to start after an id over 1,024 bytes (a key DynamoDB refuses) is refused before any read
    fingerprint = base64.urlsafe_b64decode(first.body["nextCursor"] + "==").decode().split("|")[0]
    forged = base64.urlsafe_b64encode(f"{fingerprint}|{'\u00e9' * 700}".encode()).decode().rstrip("=")
    refused = api.call("GET", path, query=f"limit=1&cursor={forged}")
    assert (refused.status, refused.body["error"]["code"]) == (400, "invalid_cursor")


def test_one_record_and_the_404s(api, emu, synced):
    tenant, client = synced
    invoice_id, invoice = next(iter(emu.truth(tenant, "Invoices").items()))

    found = api.call("GET", f"/clients/{client.client_id}/xero/Invoices/{invoice_id}")
    no_record = api.call("GET", f"/clients/{client.client_id}/xero/Invoices/{invoice_id[:-1]}0")
    wrong_resource = api.call("GET", f"/clients/{client.client_id}/xero/Contacts/{invoice_id}")
    no_resource = api.call("GET", f"/clients/{client.client_id}/xero/invoices")
    no_resource_record = api.call("GET", f"/clients/{client.client_id}/xero/Nope/{invoice_id}")

    assert (found.status, found.body) == (200, invoice)
    for response in (no_record, wrong_resource):
        assert response.status == 404
        assert response.body == {"error": {"code": "record_not_found", "message": "no such record"}}
    valid = [s.name for s in CATALOGUE]
    for response in (no_resource, no_resource_record):
        assert response.status == 404
        assert response.body["error"]["code"] == "resource_not_found"
        assert all(name in response.body["error"]["message"] for name in valid)
        assert response.body["error"]["details"][0]["valid"] == valid


def test_an_unlinked_clients_data_stays_readable(api, emu, synced):
    tenant, client = synced
    assert api.call("POST", f"/clients/{client.client_id}/unlink").status == 200
    assert Client.get("practice-a", client.client_id).link_state == LinkState.UNLINKED.value

    assert by_id("Invoices", every_page(api, client.client_id, "Invoices")) == emu.truth(tenant, "Invoices")
    assert api.call("GET", f"/clients/{client.client_id}/xero").status == 200


def test_a_page_of_100_invoices_costs_one_query_and_one_batch_get_per_100_distinct_contacts(aws, api):
    # Given 250 invoices naming 150 contacts (the invoices of one page name 100 of them)
    client = a_client("practice-a")
    store = RecordStore(client.client_id)
    stamp = "/Date(1778412345678+0000)/"
    contacts = [
        {"ContactID": f"c{n:07d}-0000-4000-8000-000000000000", "Name": f"Contact {n}", "UpdatedDateUTC": stamp}
        for n in range(150)
    ]
    store.apply(CONTACTS, contacts)
    store.apply(
        INVOICES,
        [
            {
                "InvoiceID": f"i{n:07d}-0000-4000-8000-000000000000",
                "Contact": {"ContactID": contacts[n % 150]["ContactID"], "Name": "as it was"},
                "UpdatedDateUTC": stamp,
            }
            for n in range(250)
        ],
    )
    cursor, pages = None, []
    while True:
        # When each page of 100 is read
        first = len(AWS_CALLS.calls)
        query = "limit=100" + (f"&cursor={cursor}" if cursor else "")
        response = api.call("GET", f"/clients/{client.client_id}/xero/Invoices", query=query)
        pages.append([(c.operation, json.loads(c.signature[2])) for c in AWS_CALLS.since(first)])
        # Then every invoice shows its contact's stored name
        assert all(i["Contact"]["Name"].startswith("Contact ") for i in response.body["items"])
        cursor = response.body["nextCursor"]
        if cursor is None:
            break
    # And each page is the client's GetItem, one Query and one BatchGetItem (at most 100 distinct contacts)
    assert len(pages) == 3
    clients, records = ["xero-sync-local-ClientsTable"], ["xero-sync-local-RecordsTable"]
    for calls in pages:
        assert calls == [("GetItem", clients), ("Query", records), ("BatchGetItem", records)], calls


def _invoices(count: int, paid: set[int]) -> tuple[str, list[str]]:
    """A client with `count` invoices in id order, those at the positions `paid` PAID: its id and theirs."""
    client = a_client("practice-a")
    ids = [f"i{n:07d}-0000-4000-8000-000000000000" for n in range(count)]
    stamp = "/Date(1778412345678+0000)/"
    RecordStore(client.client_id).apply(
        INVOICES,
        [
            {"InvoiceID": rid, "Status": "PAID" if n in paid else "DRAFT", "UpdatedDateUTC": stamp}
            for n, rid in enumerate(ids)
        ],
    )
    return client.client_id, [ids[n] for n in sorted(paid)]


def test_a_filtered_page_reads_the_partition_in_queries_of_a_thousand_whatever_its_limit(aws, api):
    # Given 30 invoices, one of them PAID, the last
    client_id, (paid,) = _invoices(30, {29})
    # When a page of one PAID invoice is asked for
    first = len(AWS_CALLS.calls)
    response = api.call("GET", f"/clients/{client_id}/xero/Invoices", query="limit=1&status=PAID")
    # Then it is found by one Query (a Query of `limit` items a time read the partition one invoice a request)
    assert [i["InvoiceID"] for i in response.body["items"]] == [paid]
    assert [c.operation for c in AWS_CALLS.since(first)] == ["GetItem", "Query"]


def test_a_filtered_page_stops_after_its_queries_and_paging_on_finds_every_match_once(aws, api, monkeypatch):
    # Given 65 records, read ten a Query and at most three Queries a page here: two matches among the first ten
    # records, one among the last ten
    monkeypatch.setattr(xero_data, "FILTERED_QUERY_SIZE", 10)
    monkeypatch.setattr(xero_data, "MAX_FILTERED_QUERIES", 3)
    client_id, paid = _invoices(65, {3, 4, 55})
    # When the PAID invoices are paged, two a page
    pages, calls, cursor = [], [], None
    while True:
        first = len(AWS_CALLS.calls)
        query = "limit=2&status=PAID" + (f"&cursor={cursor}" if cursor else "")
        response = api.call("GET", f"/clients/{client_id}/xero/Invoices", query=query)
        assert response.status == 200, response.body
        pages.append([i["InvoiceID"] for i in response.body["items"]])
        calls.append([c.operation for c in AWS_CALLS.since(first)].count("Query"))
        cursor = response.body["nextCursor"]
        if cursor is None:
            break
    # Then the first page is its first Query's two matches; the second stops after its three Queries, empty but with a
    # cursor (a page's reads are bounded); the third reads the rest and finds the last match; none is skipped or
    # repeated
    assert pages == [paid[:2], [], paid[2:]]
    assert calls == [1, 3, 3]


def _large_invoices(count: int, lines: int) -> tuple[str, list[dict[str, Any]]]:
    """A client with `count` invoices of `lines` line items each (about 270 bytes of JSON a line): its id and them."""
    client = a_client("practice-a")
    line = {"Description": "Consulting, per the engagement letter of March " * 3, "Quantity": 1.0, "UnitAmount": 95.5}
    invoices = [
        {
            "InvoiceID": f"i{n:07d}-0000-4000-8000-000000000000",
            "Status": "AUTHORISED",
            "LineItems": [{**line, "LineItemID": f"l{n:07d}-{k:04d}-4000-8000-000000000000"} for k in range(lines)],
            "UpdatedDateUTC": "/Date(1778412345678+0000)/",
        }
        for n in range(count)
    ]
    RecordStore(client.client_id).apply(INVOICES, invoices)
    return client.client_id, invoices


def _under_lambdas_limit(page: list[dict[str, Any]]) -> bool:
    """Whether a page's Lambda response (its body a JSON string inside it) is under Lambda's 6 MB, which API Gateway
    would otherwise answer with a 5xx."""
    return len(json.dumps({"body": json.dumps({"items": page})})) < 6 * 1024 * 1024


def test_a_page_of_large_records_stays_under_lambdas_response_limit_and_paging_on_finds_every_record_once(aws, api):
    # Given 850 invoices of 30 line items each (about 8 KB of JSON apiece, 7 MB for all of them)
    client_id, invoices = _large_invoices(850, 30)
    # When they are paged with the largest page the API gives
    pages = pages_of(api, client_id, "Invoices", "limit=1000")
    # Then each page's Lambda response is under Lambda's 6 MB; the pages hold every invoice once, in id order
    assert len(pages) > 1
    assert all(_under_lambdas_limit(page) for page in pages)
    assert [i["InvoiceID"] for page in pages for i in page] == [i["InvoiceID"] for i in invoices]


def test_a_page_asked_for_with_more_records_than_fit_holds_no_more_in_memory_than_one_that_fits(aws, api):
    # Given 800 invoices of 100 line items each (about 27 KB of JSON apiece, 21 MB for all of them: a page holds a
    # quarter of them)
    client_id, _ = _large_invoices(800, 100)
    url = f"/clients/{client_id}/xero/Invoices"

    def peak_bytes(query: str) -> tuple[int, int]:
        """The request's records, and the most memory it held at once."""
        tracemalloc.start()
        try:
            response = api.call("GET", url, query=query)
            return len(response.body["items"]), tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # When the first page is asked for with the largest limit, and then with a limit of what that page held
    fitted, largest = peak_bytes("limit=1000")
    assert 100 < fitted < 250
    same, asked_to_fit = peak_bytes(f"limit={fitted}")
    # Then both answer the same records, and asking for more than fits held no more in memory than the page it
    # answers needs (not every record it read: twice as much here)
    assert same == fitted
    assert largest < 1.5 * asked_to_fit


def test_large_records_asked_for_by_ids_page_on_under_lambdas_limit_and_each_comes_once(aws, api):
    # Given 100 invoices of 250 line items each (about 66 KB of JSON apiece, 6.6 MB for all of them)
    client_id, invoices = _large_invoices(100, 250)
    wanted = ",".join(i["InvoiceID"] for i in reversed(invoices))
    # When all of them are asked for by id, following nextCursor with the same ids
    pages = pages_of(api, client_id, "Invoices", f"ids={wanted}")
    # Then each page is under Lambda's 6 MB, and the pages hold every invoice once, in id order
    assert len(pages) == 2
    assert all(_under_lambdas_limit(page) for page in pages)
    assert [i["InvoiceID"] for page in pages for i in page] == [i["InvoiceID"] for i in invoices]
    # And that cursor is good for those ids only
    fewer = ",".join(i["InvoiceID"] for i in invoices[1:])
    first = api.call("GET", f"/clients/{client_id}/xero/Invoices", query=f"ids={wanted}")
    refused = api.call(
        "GET", f"/clients/{client_id}/xero/Invoices", query=f"ids={fewer}&cursor={first.body['nextCursor']}"
    )
    assert (refused.status, refused.body["error"]["code"]) == (400, "invalid_cursor")
