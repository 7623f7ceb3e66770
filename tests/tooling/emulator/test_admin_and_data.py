"""The admin API and the generated data: determinism, consistency, sizes, changes, disconnects, stats, reset."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import requests

from local.xero_emulator import XeroEmulator
from local.xero_emulator.resources import RESOURCES
from tests.e2e.test_linking_e2e import an_organisation
from tests.e2e.test_xero_data_e2e import (
    ROUND_SEEDS,
    ROUNDS_ORG_SEED,
    assert_the_rounds_made_every_kind,
    changes_in_xero,
)
from tests.e2e.test_xero_data_killed_worker_e2e import KILLED_ROUND_SEEDS
from tests.tooling.emulator.helpers import Xero
from tests.xero import Xero as E2eXero

pytestmark = pytest.mark.slow

# The transactions that post to the ledger, so each is the source of journals.
JOURNALLED = (
    "Invoices",
    "CreditNotes",
    "Payments",
    "BankTransactions",
    "BankTransfers",
    "ManualJournals",
    "Overpayments",
    "Prepayments",
)


def _ms(value: str) -> int:
    return int(value[6:-7])


def _dump(xero: Xero, tenant_id: str) -> dict[str, bytes]:
    return {name: xero.admin("GET", f"/orgs/{tenant_id}/records/{name}").content for name in RESOURCES}


def test_same_seed_gives_byte_identical_data_and_another_seed_does_not(xero: Xero) -> None:
    # Given an organisation built from a seed
    first = xero.create_org("Same Co", seed="abc", size="small")
    dump = _dump(xero, first["tenantId"])
    # When the emulator is reset and the same organisation is built again
    assert xero.admin("POST", "/reset").status_code == 204
    again = xero.create_org("Same Co", seed="abc", size="small")
    # Then every record is byte-identical (ids included)
    assert again["tenantId"] == first["tenantId"]
    assert _dump(xero, again["tenantId"]) == dump
    # And another seed gives other data
    other = xero.create_org("Same Co", seed="xyz", size="small")
    assert _dump(xero, other["tenantId"])["Invoices"] != dump["Invoices"]


def test_creating_the_same_org_twice_is_a_conflict(xero: Xero) -> None:
    xero.create_org("Twice Co", seed=1)
    response = xero.admin("POST", "/orgs", json={"name": "Twice Co", "seed": 1, "size": "tiny"})
    assert response.status_code == 409


def test_explicit_counts_override_the_size(xero: Xero) -> None:
    org = xero.create_org("Counted Co", seed=1, size="tiny", counts={"Invoices": 7, "Contacts": 3, "Items": 0})
    assert org["counts"]["Invoices"] == 7 and org["counts"]["Contacts"] == 3 and org["counts"]["Items"] == 0
    bad = xero.admin("POST", "/orgs", json={"name": "X", "counts": {"Widgets": 3}})
    assert bad.status_code == 400 and "unknown count" in bad.json()["error"]
    assert xero.admin("POST", "/orgs", json={"name": "Y", "size": "huge"}).status_code == 400


def test_records_reference_each_other_consistently(xero: Xero) -> None:
    org = xero.create_org("Consistent Co", seed=21, size="small")
    tenant_id = org["tenantId"]
    data = {name: xero.records(tenant_id, name) for name in RESOURCES}
    contacts = {c["ContactID"]: c for c in data["Contacts"]}
    accounts = {a["Code"]: a for a in data["Accounts"]}
    tax_types = {t["TaxType"] for t in data["TaxRates"]}
    options = {o["TrackingOptionID"] for c in data["TrackingCategories"] for o in c["Options"]}
    invoices = {i["InvoiceID"]: i for i in data["Invoices"]}
    # Documents point at contacts, accounts, tax rates and tracking options that exist
    for name in (
        "Invoices",
        "CreditNotes",
        "BankTransactions",
        "PurchaseOrders",
        "Quotes",
        "Overpayments",
        "Prepayments",
        "RepeatingInvoices",
    ):
        for record in data[name]:
            if "Contact" in record:
                assert record["Contact"]["ContactID"] in contacts, name
                assert record["Contact"]["Name"] == contacts[record["Contact"]["ContactID"]]["Name"]
            for line in record["LineItems"]:
                assert accounts[line["AccountCode"]]["AccountID"] == line["AccountID"]
                assert line["TaxType"] in tax_types
                assert all(t["TrackingOptionID"] in options for t in line["Tracking"])
    # Payments point at invoices, and an invoice's payments add up to its AmountPaid
    paid_by_invoice: Counter[str] = Counter()
    for payment in data["Payments"]:
        if "Invoice" in payment and payment["Status"] == "AUTHORISED":
            assert payment["Invoice"]["InvoiceID"] in invoices
            paid_by_invoice[payment["Invoice"]["InvoiceID"]] += round(payment["Amount"] * 100)
    for invoice in data["Invoices"]:
        assert round(invoice["AmountPaid"] * 100) == paid_by_invoice[invoice["InvoiceID"]]
        if invoice["Status"] in ("AUTHORISED", "PAID"):
            assert round((invoice["Total"] - invoice["AmountPaid"] - invoice["AmountCredited"]) * 100) == round(
                invoice["AmountDue"] * 100
            )
        if invoice["Status"] == "PAID":
            assert invoice["AmountDue"] == 0
        total = round(sum(line["LineAmount"] for line in invoice["LineItems"]) * 100)
        expected = total + round(invoice["TotalTax"] * 100) if invoice["LineAmountTypes"] != "Inclusive" else total
        assert round(invoice["Total"] * 100) == expected
    # Credit notes allocated to invoices show on both sides and reduce what the invoice owes
    allocations = [(cn, a) for cn in data["CreditNotes"] for a in cn["Allocations"]]
    assert allocations
    for cn, allocation in allocations:
        invoice = invoices[allocation["Invoice"]["InvoiceID"]]
        assert invoice["Contact"]["ContactID"] == cn["Contact"]["ContactID"]
        assert any(
            c["CreditNoteID"] == cn["CreditNoteID"] and c["AppliedAmount"] == allocation["Amount"]
            for c in invoice["CreditNotes"]
        )
    for invoice in data["Invoices"]:
        applied = round(sum(c["AppliedAmount"] for c in invoice["CreditNotes"]) * 100)
        assert applied == round(invoice["AmountCredited"] * 100)
    # Journals are numbered 1..n in creation order, derive from transactions and balance
    sources = {r[RESOURCES[n].id_field] for n in JOURNALLED for r in data[n]}
    journals = data["Journals"]
    assert [j["JournalNumber"] for j in journals] == list(range(1, len(journals) + 1))
    created = [_ms(j["CreatedDateUTC"]) for j in journals]
    assert created == sorted(created)
    for journal in journals:
        assert journal["SourceID"] in sources
        assert round(sum(line["NetAmount"] for line in journal["JournalLines"]) * 100) == 0
    # Batch payments group existing payments; linked transactions link existing invoices
    payments = {p["PaymentID"]: p for p in data["Payments"]}
    for batch in data["BatchPayments"]:
        for item in batch["Payments"]:
            assert payments[item["PaymentID"]]["BatchPaymentID"] == batch["BatchPaymentID"]
    for link in data["LinkedTransactions"]:
        assert link["SourceTransactionID"] in invoices and link["ContactID"] in contacts
    # Transfers have their two bank-transaction legs
    bank_transactions = {b["BankTransactionID"]: b for b in data["BankTransactions"]}
    for transfer in data["BankTransfers"]:
        assert bank_transactions[transfer["FromBankTransactionID"]]["Type"] == "SPEND-TRANSFER"
        assert bank_transactions[transfer["ToBankTransactionID"]]["Type"] == "RECEIVE-TRANSFER"


def test_medium_org_is_realistic_and_quick(xero: Xero) -> None:
    started = time.monotonic()
    org = xero.create_org("Medium Co", seed=1, size="medium")
    assert time.monotonic() - started < 20
    counts = org["counts"]
    transactions = sum(
        counts[n]
        for n in ("Invoices", "CreditNotes", "Payments", "BankTransactions", "BankTransfers", "ManualJournals")
    )
    assert 3000 <= transactions <= 10_000
    invoices = xero.records(org["tenantId"], "Invoices")
    years = {time.gmtime(_ms(i["Date"]) / 1000).tm_year for i in invoices}
    assert len(years) >= 3
    assert {"PAID", "AUTHORISED", "VOIDED", "DELETED", "DRAFT"} <= {i["Status"] for i in invoices}
    assert len({i["CurrencyCode"] for i in invoices}) >= 2


def test_large_org_has_the_promised_shape(xero: Xero) -> None:
    # Given a large organisation (about 100k transactions over 7 years)
    started = time.monotonic()
    org = xero.create_org("Large Co", seed=1, size="large")
    elapsed = time.monotonic() - started
    print(f"\nlarge organisation created in {elapsed:.1f} s (generator: {org['generationSeconds']} s)")
    counts = org["counts"]
    transactions = sum(counts[n] for n in (*JOURNALLED, "PurchaseOrders", "Quotes", "BatchPayments"))
    assert 90_000 <= transactions <= 130_000
    assert counts["Journals"] > 90_000 and counts["Currencies"] >= 4
    tenant_id = org["tenantId"]
    # (Slices of the ground truth: invoices are in date order, so the first and last slices span the years.)
    first = xero.admin("GET", f"/orgs/{tenant_id}/records/Invoices", params={"limit": 3000}).json()
    last = xero.admin("GET", f"/orgs/{tenant_id}/records/Invoices", params={"offset": first["count"] - 300}).json()
    assert first["count"] == counts["Invoices"] and len(last["records"]) == 300
    invoices = first["records"] + last["records"]
    span_days = (_ms(invoices[-1]["Date"]) - _ms(invoices[0]["Date"])) / 86_400_000
    assert span_days > 6.5 * 365
    assert {"VOIDED", "DELETED"} <= {i["Status"] for i in invoices}
    assert {"ARCHIVED"} <= {c["ContactStatus"] for c in xero.records(tenant_id, "Contacts")}
    assert any(line["Tracking"] for i in invoices[:500] for line in i["LineItems"])
    assert len({i["CurrencyCode"] for i in invoices}) >= 4


def test_changes_stamp_records_strictly_later_and_add_journals(xero: Xero) -> None:
    org = xero.create_org("Edit Co", seed=3, size="small")
    tenant_id = org["tenantId"]
    before = {name: xero.records(tenant_id, name) for name in ("Invoices", "Contacts", "Journals")}
    latest = max(_ms(r["UpdatedDateUTC"]) for name in ("Invoices", "Contacts") for r in before[name])
    result = xero.admin("POST", f"/orgs/{tenant_id}/changes", json={"seed": 8, "count": 60}).json()
    assert result["applied"] == 60
    changes = result["changes"]
    # Every touched invoice and contact has a newer, distinct UpdatedDateUTC than anything before
    after_invoices = {i["InvoiceID"]: i for i in xero.records(tenant_id, "Invoices")}
    touched = {i for ids in changes["Invoices"].values() for i in ids}
    for invoice_id in touched:
        assert _ms(after_invoices[invoice_id]["UpdatedDateUTC"]) > latest
    untouched = [i for i in before["Invoices"] if i["InvoiceID"] not in touched]
    assert all(after_invoices[i["InvoiceID"]]["UpdatedDateUTC"] == i["UpdatedDateUTC"] for i in untouched)
    # New journals were added after the existing ones
    journals = xero.records(tenant_id, "Journals")
    assert len(journals) == len(before["Journals"]) + len(changes["Journals"]["created"])
    # A second batch is later still
    second = xero.admin("POST", f"/orgs/{tenant_id}/changes", json={"seed": 9, "count": 5}).json()
    assert _ms(second["lastChangeUTC"]) > _ms(result["lastChangeUTC"])


def test_records_of_an_unknown_resource_or_org_are_404(xero: Xero) -> None:
    org = xero.create_org()
    assert xero.admin("GET", f"/orgs/{org['tenantId']}/records/Widgets").status_code == 404
    assert xero.admin("GET", "/orgs/00000000-0000-4000-8000-000000000000/records/Invoices").status_code == 404


def test_disconnect_inside_xero_removes_the_connection_and_gives_403(connected) -> None:
    xero, tenant_id, tokens = connected
    connection = xero.admin("GET", "/connections").json()["connections"][0]
    assert connection["tenantId"] == tenant_id and connection["userId"] == "demo-user"
    assert xero.admin("POST", f"/connections/{connection['id']}/disconnect").status_code == 204
    response = xero.get("Invoices", tokens["access_token"], tenant_id)
    assert response.status_code == 403 and response.json()["Detail"] == "AuthenticationUnsuccessful"
    assert xero.connections(tokens["access_token"]).json() == []
    assert xero.admin("POST", f"/connections/{connection['id']}/disconnect").status_code == 404


def test_users_see_only_their_orgs_and_consent_can_name_the_user(xero: Xero) -> None:
    mine = xero.create_org("Mine Ltd", seed=1, userId="alice")
    xero.create_org("Theirs Ltd", seed=2, userId="bob")
    bad = xero.admin("POST", "/consent", json={"tenantIds": [mine["tenantId"]], "userId": "bob"})
    assert bad.status_code == 400
    tokens = xero.login([mine["tenantId"]], user_id="alice")
    assert [c["tenantId"] for c in xero.connections(tokens["access_token"]).json()] == [mine["tenantId"]]
    # Without tenantIds the consent connects all the user's organisations
    xero.admin("POST", f"/orgs/{mine['tenantId']}/users", json={"userId": "carol"})
    carol = xero.login(None, user_id="carol")
    assert [c["tenantId"] for c in xero.connections(carol["access_token"]).json()] == [mine["tenantId"]]


def test_stats_count_calls_per_tenant_and_endpoint(connected) -> None:
    xero, tenant_id, tokens = connected
    for _ in range(3):
        xero.get("Invoices", tokens["access_token"], tenant_id)
    xero.get("Contacts", tokens["access_token"], tenant_id)
    invoice_id = xero.records(tenant_id, "Invoices")[0]["InvoiceID"]
    xero.get(f"Invoices/{invoice_id}", tokens["access_token"], tenant_id)
    stats = xero.admin("GET", "/stats").json()["tenants"][tenant_id]
    assert stats["calls"] == {"GET /Invoices": 3, "GET /Contacts": 1, "GET /Invoices/{id}": 1}
    assert stats["totalCalls"] == 5 and stats["total429"] == 0 and stats["maxInFlight"] == 1
    assert xero.admin("DELETE", "/stats").status_code == 204
    assert xero.admin("GET", "/stats").json()["tenants"] == {}


def test_stats_timeline_gives_each_calls_arrival_answer_and_status_in_order(connected) -> None:
    xero, tenant_id, tokens = connected
    xero.admin("POST", "/config", json={"latencyMs": 30})
    xero.get("Invoices", tokens["access_token"], tenant_id)
    xero.get("NoSuchThing", tokens["access_token"], tenant_id)
    assert "timeline" not in xero.admin("GET", "/stats").json()["tenants"][tenant_id]
    timeline = xero.admin("GET", "/stats?timeline=1").json()["tenants"][tenant_id]["timeline"]
    assert [status for _, _, status in timeline] == [200, 404]
    (first_in, first_out, _), (second_in, second_out, _) = timeline
    assert first_out - first_in >= 0.03 and first_out <= second_in <= second_out


def test_the_plural_organisations_path_answers_as_organisation(connected) -> None:
    xero, tenant_id, tokens = connected
    plural = xero.get("Organisations", tokens["access_token"], tenant_id)
    assert plural.status_code == 200
    singular = xero.get("Organisation", tokens["access_token"], tenant_id)
    assert plural.json()["Organisations"] == singular.json()["Organisations"]


def test_reset_forgets_orgs_tokens_and_connections_but_keeps_apps(connected) -> None:
    xero, tenant_id, tokens = connected
    assert xero.admin("POST", "/reset").status_code == 204
    assert xero.admin("GET", "/orgs").json()["orgs"] == []
    assert xero.get("Organisation", tokens["access_token"], tenant_id).status_code == 401
    assert any(a["clientId"] == "test-client" for a in xero.admin("GET", "/apps").json()["apps"])


def test_clock_moves_forward_only(xero: Xero) -> None:
    before = xero.admin("GET", "/clock").json()
    after = xero.admin("POST", "/clock", json={"advance": 3600}).json()
    assert after["offsetSeconds"] == before["offsetSeconds"] + 3600 and after["now"] >= before["now"] + 3600
    assert xero.admin("POST", "/clock", json={"advance": -1}).status_code == 400


def test_health_and_unknown_admin_paths(xero: Xero) -> None:
    assert xero.admin("GET", "/health").json() == {"status": "ok"}
    assert xero.admin("GET", "/nope").status_code == 404
    assert requests.get(f"{xero.base_url}/nowhere", timeout=10).status_code == 404


@pytest.mark.parametrize("round_seeds", [ROUND_SEEDS, KILLED_ROUND_SEEDS], ids=["data", "killed-worker"])
def test_the_data_api_rounds_e2e_tests_make_every_kind_of_change_they_assert(
    emulator: XeroEmulator, round_seeds: tuple[str, ...]
) -> None:
    # Given the organisation the data API's rounds e2e tests change, named as theirs is (a unique name)
    xero = E2eXero(emulator, requests.Session())
    tenant = an_organisation(xero, "Data Rounds Ltd", seed=ROUNDS_ORG_SEED)
    # When their three rounds of changes are made
    made = set().union(*(changes_in_xero(xero, tenant, seed) for seed in round_seeds))
    # Then the rounds renamed and created contacts, removed groups, and voided or deleted documents, every run
    assert_the_rounds_made_every_kind(made)
