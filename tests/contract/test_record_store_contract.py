"""The Records table as the real engine holds it: what one item carries, and that a record Xero sends again unchanged
costs no write, whatever its stored body was written with."""

import json
import uuid
import zlib
from pathlib import Path
from urllib.parse import quote

import boto3

from local.cli.stack_client import RECORD_BODY, RECORD_ID, RECORD_PARTITION
from tests.api import Api
from tests.builders import a_client
from tests.contract.conftest import Engines
from xero_sync import record_bodies, xero_data
from xero_sync.catalogue import BY_NAME
from xero_sync.models import XeroRecord
from xero_sync.record_store import MAX_ID_BYTES, RecordStore

INVOICES = BY_NAME["Invoices"]
INVOICE = {
    "Type": "ACCREC",
    "InvoiceID": "0b5e7a47-1d2c-4a55-9f6e-3c1d2e4f5a6b",
    "InvoiceNumber": "INV-0007",
    "Contact": {"ContactID": "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6", "Name": "Harbour Café"},
    "Date": "/Date(1778371200000+0000)/",
    "Status": "AUTHORISED",
    "Total": 552.0,
    "UpdatedDateUTC": "/Date(1778412345678+0000)/",
}


def raw_item(engines: Engines, client_id: str, record_id: str) -> dict:
    dynamodb = boto3.client("dynamodb", endpoint_url=engines.endpoints["AWS_ENDPOINT_URL_DYNAMODB"])
    key = {"pk": {"S": XeroRecord.partition_key(client_id, "Invoices")}, "id": {"S": record_id}}
    return dynamodb.get_item(TableName=XeroRecord.Meta.table_name, Key=key, ConsistentRead=True)["Item"]


def test_an_item_holds_the_key_the_compressed_body_the_stamp_and_the_status_under_short_names(engines, practice):
    # Given an invoice stored for a client
    store = RecordStore(f"client-{practice}")
    assert store.apply(INVOICES, [INVOICE]).counts.inserted == 1
    # Then its item is the key, the body, Xero's UpdatedDateUTC in epoch ms, the status and (an invoice holds a
    # contact) its contact's id for the data API's filter, nothing more
    item = raw_item(engines, store.client_id, INVOICE["InvoiceID"])
    assert set(item) == {"pk", "id", "b", "u", "s", "c"}
    assert (item["u"], item["s"]) == ({"N": "1778412345678"}, {"S": "AUTHORISED"})
    assert item["c"] == {"B": uuid.UUID(INVOICE["Contact"]["ContactID"]).bytes}  # 16 bytes, not 36 characters
    assert INVOICE["InvoiceID"].encode() not in zlib.decompressobj(
        zdict=record_bodies._DICTIONARIES.current["Invoices"]
    ).decompress(item["b"]["B"])
    # And it reads back exactly, id included, in Xero's key order
    (stored,) = store.records(INVOICES)
    assert list(stored.items()) == list(INVOICE.items())


def test_a_record_sent_again_unchanged_is_not_written_even_when_its_body_came_from_an_older_format(engines, practice):
    # Given an invoice stored years ago: version 1's dictionary, its id inside the body
    store = RecordStore(f"client-{practice}")
    versions = json.loads(Path(record_bodies.__file__).with_name("record_dictionaries.json").read_text())["versions"]
    compressor = zlib.compressobj(6, zdict=versions["1"]["Invoices"].encode())
    old_body = compressor.compress(json.dumps(INVOICE, separators=(",", ":")).encode()) + compressor.flush()
    XeroRecord(
        partition=store.partition("Invoices"), xero_id=INVOICE["InvoiceID"], status="AUTHORISED", body=old_body
    ).save()
    # When Xero sends it again, keys in another order
    applied = store.apply(INVOICES, [dict(reversed(INVOICE.items()))])
    # Then it is unchanged, and its item was not rewritten
    assert (applied.counts.unchanged, applied.counts.updated, applied.changed) == (1, 0, [])
    assert raw_item(engines, store.client_id, INVOICE["InvoiceID"])["b"]["B"] == old_body
    # And once it does change, it is updated in place
    paid = {**INVOICE, "Status": "PAID", "UpdatedDateUTC": "/Date(1778498745678+0000)/"}
    applied = store.apply(INVOICES, [paid])
    assert (applied.counts.updated, applied.changed) == (1, [paid])
    assert store.bodies(INVOICES, [INVOICE["InvoiceID"]]) == {INVOICE["InvoiceID"]: paid}  # its id from the key
    assert raw_item(engines, store.client_id, INVOICE["InvoiceID"])["s"] == {"S": "PAID"}


def test_a_first_import_compares_only_what_it_wrote_itself_so_a_record_on_two_pages_is_inserted_once(engines, practice):
    # Given a first import into an empty partition that stored a page holding one invoice
    store = RecordStore(f"client-{practice}")
    assert store.is_empty("Invoices")
    first = store.apply(INVOICES, [INVOICE], may_be_stored=set())
    assert first.counts.inserted == 1
    assert not store.is_empty("Invoices")
    # When a later page shows that invoice again, changed, beside a new one
    paid = {**INVOICE, "Status": "PAID", "UpdatedDateUTC": "/Date(1778498745678+0000)/"}
    other = {**INVOICE, "InvoiceID": "5c0b1a2e-7d3f-4e6a-9b8c-0d1e2f3a4b5c", "InvoiceNumber": "INV-0008"}
    second = store.apply(INVOICES, [paid, other], may_be_stored=first.stored_ids)
    # Then the one it wrote is updated, the other inserted, and both are stored as Xero showed them last
    assert (second.counts.updated, second.counts.inserted) == (1, 1)
    assert {r["InvoiceID"]: r["Status"] for r in store.records(INVOICES)} == {
        INVOICE["InvoiceID"]: "PAID",
        other["InvoiceID"]: "AUTHORISED",
    }


def test_the_local_tools_read_records_under_the_models_names():
    attributes = XeroRecord.partition, XeroRecord.xero_id, XeroRecord.body
    assert tuple(a.attr_name for a in attributes) == (RECORD_PARTITION, RECORD_ID, RECORD_BODY)


def test_the_longest_id_the_data_api_takes_is_a_key_the_engine_takes(engines, practice):
    # The data API holds each of `ids` to MAX_ID_BYTES (xero_data.py): the longest is still a sort key the engine
    # reads (an empty page, never its ValidationException: a 500), and the store keeps a record under it
    api, client = Api(engines.physical), a_client(practice)
    longest = "\U0001f600" * (MAX_ID_BYTES // 4)
    path = f"/clients/{client.client_id}/xero/Invoices"
    assert api.call("GET", path, practice=practice, query=f"ids={quote(longest)}").body["items"] == []
    RecordStore(client.client_id).apply(INVOICES, [{**INVOICE, "InvoiceID": longest}])
    page = api.call("GET", path, practice=practice, query=f"ids={quote(longest)}")
    assert [i["InvoiceID"] for i in page.body["items"]] == [longest]


def test_a_filtered_page_stops_where_its_queries_stopped_and_paging_on_finds_every_match_once(
    engines, practice, monkeypatch
):
    # Given 65 invoices, read ten a Query and at most three Queries a page here, PAID among the first ten and the last
    monkeypatch.setattr(xero_data, "FILTERED_QUERY_SIZE", 10)
    monkeypatch.setattr(xero_data, "MAX_FILTERED_QUERIES", 3)
    api, client = Api(engines.physical), a_client(practice)
    ids = [f"i{n:07d}-0000-4000-8000-000000000000" for n in range(65)]
    paid = [ids[3], ids[4], ids[55]]
    stamp = "/Date(1778412345678+0000)/"
    RecordStore(client.client_id).apply(
        INVOICES, [{"InvoiceID": i, "Status": "PAID" if i in paid else "DRAFT", "UpdatedDateUTC": stamp} for i in ids]
    )
    # When they are paged two a page, on the real engine (its Limit counts records read, not records matched)
    pages, cursor = [], None
    while True:
        query = "limit=2&status=PAID" + (f"&cursor={cursor}" if cursor else "")
        response = api.call("GET", f"/clients/{client.client_id}/xero/Invoices", practice=practice, query=query)
        assert response.status == 200, response.body
        pages.append([i["InvoiceID"] for i in response.body["items"]])
        if (cursor := response.body["nextCursor"]) is None:
            break
    # Then the page that read three Queries without a match is empty with a cursor, and each match comes once
    assert pages == [paid[:2], [], paid[2:]]
