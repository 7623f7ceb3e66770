"""The sync against hostile Xero answers (the emulator's list-spoiling faults): it stores what it can, records what
it could not in the run (counts and reasons per resource, on GET /clients/{id}/syncs), never corrupts what it had,
and keeps its checkpoints where they were, so the next run reads the rejected records again."""

import pytest

from tests.api import Api
from tests.sync_support import counts_of, differences, drain, link_client, run_to_end, sync
from xero_sync.catalogue import BY_NAME
from xero_sync.models import PassCheckpoint
from xero_sync.record_store import RecordStore


def history(api: Api, client_id: str) -> list[dict]:
    response = api.call("GET", f"/clients/{client_id}/syncs")
    assert response.status == 200, response.body
    return response.body["items"]


def stored(client_id: str, resource: str) -> dict[str, dict]:
    spec = BY_NAME[resource]
    return {r[spec.id_field]: r for r in RecordStore(client_id).records(spec)}


def test_an_initial_sync_stores_around_hostile_records_and_the_next_run_gets_them(aws, api, emu, queue_url, link):
    # Given a new client whose first import meets every kind of hostile answer
    tenant, client, message = link("Hostile Ltd")
    emu.fault("missing-fields", tenantId=tenant, path="Invoices")  # the first invoice without id and stamp
    emu.fault("wrong-types", tenantId=tenant, path="Contacts")  # a numeric id, and entries that are not records
    emu.fault("oversized-record", tenantId=tenant, path="BankTransactions")  # over 400 KB even compressed
    emu.fault("missing-fields", tenantId=tenant, path="Journals", fields=["JournalID"])
    emu.fault("huge-page", tenantId=tenant, path="Payments")  # 3,000 records in one answer (repeats)

    # When it syncs
    run = run_to_end(aws.session, queue_url, message)

    # Then the run succeeds with everything else stored, and says what it could not store and why
    assert run.status == "succeeded", run.error_message
    counts = counts_of(run)
    assert (counts["Invoices"]["rejected"], counts["BankTransactions"]["rejected"]) == (1, 1)
    assert counts["Contacts"]["rejected"] == 4 and counts["Journals"]["rejected"] == 1
    assert counts["Payments"]["rejected"] == 0 and counts["Payments"]["fetched"] >= 3000
    (shown,) = history(api, client.client_id)
    errors = {name: view["errors"] for name, view in shown["counts"].items() if view["rejected"]}
    assert set(errors) == {"Invoices", "Contacts", "BankTransactions", "Journals"}
    assert any("no InvoiceID" in e for e in errors["Invoices"])
    assert any("400 KB" in e for e in errors["BankTransactions"])
    assert any("not a JSON object" in e for e in errors["Contacts"])
    wrong = differences(emu, tenant, client.client_id)
    assert set(wrong) == {"Invoices", "Contacts", "BankTransactions", "Journals"}
    assert all(line.startswith("missing ") for lines in wrong.values() for line in lines)  # nothing else is wrong
    # And the rejected resources' passes did not complete: their next run reads them again
    for resource in ("Invoices", "BankTransactions", "Contacts"):
        assert PassCheckpoint.get(client.client_id, resource).full_synced_at is None, resource
    assert PassCheckpoint.get(client.client_id, "Payments").full_synced_at is not None

    # When Xero answers cleanly again
    run = sync(aws.session, queue_url, client)

    # Then the records missed are stored, and nothing differs from Xero any more
    assert run.status == "succeeded"
    assert sum(c["rejected"] for c in counts_of(run).values()) == 0
    assert differences(emu, tenant, client.client_id) == {}


def test_an_incremental_sync_never_corrupts_a_stored_record_with_a_hostile_version(aws, emu, queue_url, link):
    # Given a client imported cleanly, then changes in Xero
    tenant, client, message = link("Keeper Ltd")
    assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    before = {name: stored(client.client_id, name) for name in ("Invoices", "Contacts")}
    mark = PassCheckpoint.get(client.client_id, "Invoices").modified_since
    emu.change(tenant, 30, seed="hostile")

    # When the changed invoices come back without stamps and the contacts with wrong types
    emu.fault("missing-fields", tenantId=tenant, path="Invoices", fields=["UpdatedDateUTC"], records=50)
    emu.fault("wrong-types", tenantId=tenant, path="Contacts", records=50)
    run = sync(aws.session, queue_url, client)

    # Then every stored invoice and contact is either as it was or as Xero has it now (read cleanly by another
    # call): none is a spoiled version; and the marks did not move
    assert run.status == "succeeded"
    assert counts_of(run)["Invoices"]["rejected"] > 0 and counts_of(run)["Contacts"]["rejected"] > 0
    for name in ("Invoices", "Contacts"):
        truth = emu.truth(tenant, name)
        for rid, record in stored(client.client_id, name).items():
            assert record in (before[name].get(rid), truth.get(rid)), (name, rid)
    assert PassCheckpoint.get(client.client_id, "Invoices").modified_since == mark

    # And the next clean run brings every change in
    run = sync(aws.session, queue_url, client)
    assert run.status == "succeeded"
    assert differences(emu, tenant, client.client_id) == {}


@pytest.mark.parametrize(
    "name",
    [
        "Caf\u00e9 \U0001f600 \U0001f468\u200d\U0001f469\u200d\U0001f467 Ltd",  # emoji, a ZWJ sequence
        "\u0634\u0631\u0643\u0629 \u202eevil\u202c \u200fRTL",  # Arabic, an RTL override, a right-to-left mark
        "Nul\u0000Byte \u0007Bell",  # control characters
        "Lone \ud800 Surrogate \udfff",  # lone surrogates: valid JSON escapes, not UTF-8
    ],
    ids=["emoji", "rtl", "nul", "lone-surrogate"],
)
def test_an_organisation_with_an_awkward_name_links_lists_and_syncs_exactly(aws, api, emu, queue_url, name):
    # Given an organisation so named in Xero (its connection's tenantName, its Organisation record's Name)
    body = {"name": name, "seed": f"awkward {name.encode('utf-8', 'replace')!r}", "size": "tiny"}
    tenant = emu.admin("POST", "/orgs", json=body).json()["tenantId"]
    client = link_client(api, emu, tenant, "practice-a")
    (message,) = drain(aws.session, queue_url)

    # When the practice lists its clients and the client syncs
    listed = api.call("GET", "/clients")
    overview = api.call("GET", f"/clients/{client.client_id}")
    run = run_to_end(aws.session, queue_url, message)

    # Then the API answers valid JSON with the name (a lone surrogate, which JSON text cannot carry, as U+FFFD)
    shown = name.encode("utf-8", "replace").decode()
    assert (listed.status, overview.status) == (200, 200)
    assert [c["name"] for c in listed.body["items"]] == [shown] and overview.body["name"] == shown
    # And the sync stores the organisation's records exactly as Xero sent them
    assert run.status == "succeeded", run.error_message
    assert differences(emu, tenant, client.client_id) == {}
    (organisation,) = RecordStore(client.client_id).records(BY_NAME["Organisation"])
    assert organisation["Name"] == name
