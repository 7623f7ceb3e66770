"""Accounting API reads: envelope, paging, If-Modified-Since, Journals, filters, deletes (facts file §3-5)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.tooling.emulator.helpers import Xero

MS_DATE = re.compile(r"^/Date\(\d+\+0000\)/$")


def _ms(value: str) -> int:
    return int(value[6:-7])


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture
def paging_org(xero: Xero):
    """An organisation with a few hundred invoices, connected."""
    org = xero.create_org("Paging Co", seed=11, counts={"Invoices": 230, "Contacts": 30})
    tokens = xero.login([org["tenantId"]])
    return xero, org["tenantId"], tokens["access_token"]


def test_list_envelope_has_xeros_fields_and_ms_dates(connected) -> None:
    xero, tenant_id, tokens = connected
    # When a list is read
    response = xero.get("Invoices", tokens["access_token"], tenant_id, page=1)
    # Then it is Xero's envelope
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["Status"] == "OK" and body["ProviderName"] == "Test App"
    assert re.fullmatch(r"/Date\(\d+\)/", body["DateTimeUTC"]) and re.fullmatch(r"[0-9a-f-]{36}", body["Id"])
    assert body["pagination"] == {"page": 1, "pageSize": 100, "pageCount": 1, "itemCount": len(body["Invoices"])}
    # And every record has an UpdatedDateUTC and /Date(ms+0000)/ dates
    for invoice in body["Invoices"]:
        assert MS_DATE.match(invoice["UpdatedDateUTC"]) and MS_DATE.match(invoice["Date"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", invoice["UpdatedDateUTCString"])
    # And the rate-limit headers are on every response
    for header in ("X-MinLimit-Remaining", "X-DayLimit-Remaining", "X-AppMinLimit-Remaining"):
        assert header in response.headers


def test_accept_json_is_required(connected) -> None:
    xero, tenant_id, tokens = connected
    response = xero.get("Invoices", tokens["access_token"], tenant_id, headers={"Accept": "application/xml"})
    assert response.status_code == 406 and "application/json" in response.text


def test_unknown_or_missing_tenant_is_403(connected) -> None:
    xero, _, tokens = connected
    for tenant in ("00000000-0000-0000-0000-000000000000", None):
        response = xero.get("Invoices", tokens["access_token"], tenant)
        assert response.status_code == 403
        assert response.json()["Title"] == "Forbidden" and response.json()["Detail"] == "AuthenticationUnsuccessful"


def test_unknown_resource_and_unknown_id_are_404(connected) -> None:
    xero, tenant_id, tokens = connected
    assert xero.get("Widgets", tokens["access_token"], tenant_id).status_code == 404
    missing = xero.get("Invoices/7f0d2b0e-0000-4000-8000-000000000000", tokens["access_token"], tenant_id)
    assert missing.status_code == 404
    # Calls that reach the tenant count against its limits and carry the headers, even when they fail
    assert missing.headers["X-MinLimit-Remaining"] == "58"


def test_a_token_without_the_scope_gets_401_authorization_unsuccessful(xero: Xero) -> None:
    org = xero.create_org()
    tokens = xero.login([org["tenantId"]], scope="offline_access accounting.settings.read")
    assert xero.get("Accounts", tokens["access_token"], org["tenantId"]).status_code == 200
    response = xero.get("Journals", tokens["access_token"], org["tenantId"])
    assert response.status_code == 401 and response.json()["Detail"] == "AuthorizationUnsuccessful"


def test_paging_returns_100_a_page_with_line_items_and_covers_every_record_once(paging_org) -> None:
    xero, tenant_id, token = paging_org
    truth = xero.records(tenant_id, "Invoices")
    assert len(truth) == 230
    seen = []
    for page in (1, 2, 3, 4):
        body = xero.get("Invoices", token, tenant_id, page=page).json()
        assert body["pagination"] == {"page": page, "pageSize": 100, "pageCount": 3, "itemCount": 230}
        seen += body["Invoices"]
        if page < 3:
            assert len(body["Invoices"]) == 100
    # Each paged record is exactly the ground truth, line items included
    assert seen == truth
    assert any(invoice["LineItems"] for invoice in seen)


def test_page_size_up_to_1000_on_the_paged_endpoints(paging_org) -> None:
    xero, tenant_id, token = paging_org
    body = xero.get("Invoices", token, tenant_id, page=1, pageSize=1000).json()
    assert len(body["Invoices"]) == 230 and body["pagination"]["pageSize"] == 1000
    small = xero.get("Invoices", token, tenant_id, page=3, pageSize=40).json()
    assert small["pagination"] == {"page": 3, "pageSize": 40, "pageCount": 6, "itemCount": 230}
    assert len(small["Invoices"]) == 40
    # Above Xero's maximum the page is capped at 1000
    assert xero.get("Invoices", token, tenant_id, page=1, pageSize=5000).json()["pagination"]["pageSize"] == 1000
    # pageSize is ignored where Xero does not take it (Quotes: 100 a page, no pagination object)
    quotes = xero.get("Quotes", token, tenant_id, page=1, pageSize=1).json()
    assert "pagination" not in quotes and len(quotes["Quotes"]) == len(xero.records(tenant_id, "Quotes"))


def test_unpaged_lists_leave_out_line_items_and_the_pagination_object(paging_org) -> None:
    xero, tenant_id, token = paging_org
    body = xero.get("Invoices", token, tenant_id).json()
    assert "pagination" not in body and len(body["Invoices"]) == 230
    assert all(invoice["LineItems"] == [] for invoice in body["Invoices"])
    # A single invoice read has them
    first = body["Invoices"][0]
    single = xero.get(f"Invoices/{first['InvoiceID']}", token, tenant_id).json()["Invoices"][0]
    assert single["LineItems"]


def test_unpaged_reads_of_very_large_sets_are_refused_like_xero(paging_org) -> None:
    xero, tenant_id, token = paging_org
    xero.admin("POST", "/config", json={"unpagedRecordLimit": 200})
    response = xero.get("Invoices", token, tenant_id)
    assert response.status_code == 400
    assert "not filtering Invoices efficiently" in response.json()["Elements"][0]["ValidationErrors"][0]["Message"]
    assert xero.get("Invoices", token, tenant_id, page=1).status_code == 200


def test_single_records_by_number_as_well_as_id(connected) -> None:
    xero, tenant_id, tokens = connected
    token = tokens["access_token"]
    invoice = next(i for i in xero.records(tenant_id, "Invoices") if i["Type"] == "ACCREC")
    by_number = xero.get(f"Invoices/{invoice['InvoiceNumber']}", token, tenant_id).json()["Invoices"]
    assert by_number == [invoice]
    journal = xero.records(tenant_id, "Journals")[4]
    assert xero.get(f"Journals/{journal['JournalNumber']}", token, tenant_id).json()["Journals"] == [journal]
    assert xero.get(f"Journals/{journal['JournalID']}", token, tenant_id).json()["Journals"] == [journal]
    tax = xero.get("TaxRates/OUTPUT2", token, tenant_id).json()["TaxRates"]
    assert tax[0]["TaxType"] == "OUTPUT2"


def test_if_modified_since_returns_records_changed_strictly_after_it_to_the_second(connected) -> None:
    xero, tenant_id, tokens = connected
    token = tokens["access_token"]
    truth = xero.records(tenant_id, "Invoices")
    stamps = sorted(_ms(i["UpdatedDateUTC"]) for i in truth)
    pivot = stamps[len(stamps) // 2]
    # Given an If-Modified-Since equal to a record's UpdatedDateUTC truncated to the second
    header = {"If-Modified-Since": _iso(pivot)}
    body = xero.get("Invoices", token, tenant_id, headers=header, page=1).json()
    got = {i["InvoiceID"] for i in body["Invoices"]}
    # Then exactly the records changed after that second began (ms-precise, strictly after) come back
    pivot_second = pivot // 1000 * 1000
    expected = {i["InvoiceID"] for i in truth if _ms(i["UpdatedDateUTC"]) > pivot_second}
    assert got == expected and 0 < len(got) < len(truth)
    # And an HTTP-date form of the header works too
    http_date = datetime.fromtimestamp(pivot / 1000, tz=UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert {
        i["InvoiceID"]
        for i in xero.get("Invoices", token, tenant_id, headers={"If-Modified-Since": http_date}, page=1).json()[
            "Invoices"
        ]
    } == expected


def test_if_modified_since_is_ignored_where_xero_ignores_it(connected) -> None:
    xero, tenant_id, tokens = connected
    future = {"If-Modified-Since": "2099-01-01T00:00:00"}
    for resource in (
        "Organisation",
        "ContactGroups",
        "TaxRates",
        "TrackingCategories",
        "Currencies",
        "BrandingThemes",
        "RepeatingInvoices",
    ):
        body = xero.get(resource, tokens["access_token"], tenant_id, headers=future).json()
        key = "Organisations" if resource == "Organisation" else resource
        assert body[key], resource
    for resource in ("Invoices", "Contacts", "Accounts", "Items", "Users", "Journals", "BankTransfers"):
        body = xero.get(resource, tokens["access_token"], tenant_id, headers=future).json()
        assert body[resource] == [], resource


def test_journals_come_100_a_call_after_the_offset(xero: Xero) -> None:
    org = xero.create_org("Journal Co", seed=5, counts={"Invoices": 150})
    token = xero.login([org["tenantId"]])["access_token"]
    truth = xero.records(org["tenantId"], "Journals")
    assert len(truth) > 200
    first = xero.get("Journals", token, org["tenantId"]).json()["Journals"]
    assert [j["JournalNumber"] for j in first] == list(range(1, 101))
    second = xero.get("Journals", token, org["tenantId"], offset=100).json()["Journals"]
    assert second[0]["JournalNumber"] == 101 and len(second) == 100
    offset = 37
    body = xero.get("Journals", token, org["tenantId"], offset=offset).json()
    assert "pagination" not in body
    assert [j["JournalNumber"] for j in body["Journals"]] == list(range(offset + 1, offset + 101))
    last = xero.get("Journals", token, org["tenantId"], offset=len(truth)).json()["Journals"]
    assert last == []
    # Every journal balances
    for journal in truth:
        assert round(sum(line["NetAmount"] for line in journal["JournalLines"]), 2) == 0, journal["JournalNumber"]
    # paymentsOnly leaves out accrual journals such as invoices
    cash = xero.get("Journals", token, org["tenantId"], paymentsOnly="true").json()["Journals"]
    assert cash and all(j["SourceType"] not in ("ACCREC", "ACCPAY") for j in cash)


def test_where_and_order_filters_for_syncing(connected) -> None:
    xero, tenant_id, tokens = connected
    token = tokens["access_token"]
    truth = xero.records(tenant_id, "Invoices")
    paid = xero.get("Invoices", token, tenant_id, page=1, where='Status=="PAID"').json()["Invoices"]
    assert paid and {i["InvoiceID"] for i in paid} == {i["InvoiceID"] for i in truth if i["Status"] == "PAID"}
    pivot = sorted(_ms(i["UpdatedDateUTC"]) for i in truth)[len(truth) // 2]
    day = datetime.fromtimestamp(pivot / 1000, tz=UTC)
    clause = f"UpdatedDateUTC>=DateTime({day.year},{day.month:02d},{day.day:02d})"
    recent = xero.get("Invoices", token, tenant_id, page=1, where=clause).json()["Invoices"]
    day_start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    assert {i["InvoiceID"] for i in recent} == {i["InvoiceID"] for i in truth if _ms(i["UpdatedDateUTC"]) >= day_start}
    contact_id = truth[0]["Contact"]["ContactID"]
    mine = xero.get(
        "Invoices",
        token,
        tenant_id,
        page=1,
        where=f'Contact.ContactID==Guid("{contact_id}") AND Type=="{truth[0]["Type"]}"',
    ).json()
    assert truth[0]["InvoiceID"] in {i["InvoiceID"] for i in mine["Invoices"]}
    ids = ",".join(i["InvoiceID"] for i in truth[:3])
    assert [i["InvoiceID"] for i in xero.get("Invoices", token, tenant_id, IDs=ids).json()["Invoices"]] == [
        i["InvoiceID"] for i in truth[:3]
    ]
    ordered = xero.get("Invoices", token, tenant_id, page=1, order="UpdatedDateUTC DESC").json()["Invoices"]
    stamps = [_ms(i["UpdatedDateUTC"]) for i in ordered]
    assert stamps == sorted(stamps, reverse=True)
    bad = xero.get("Invoices", token, tenant_id, where='Status=="PAID" AND')
    assert bad.status_code == 400 and bad.json()["Type"] == "QueryParseException"


def test_deletes_voids_and_archives_show_as_xero_shows_them(xero: Xero) -> None:
    # Given a small organisation synced once
    org = xero.create_org("Changes Co", seed=9, size="small")
    tenant_id = org["tenantId"]
    token = xero.login([tenant_id])["access_token"]
    journals_before = len(xero.records(tenant_id, "Journals"))
    items_before = {i["ItemID"] for i in xero.records(tenant_id, "Items")}
    groups_before = {g["ContactGroupID"] for g in xero.records(tenant_id, "ContactGroups")}
    synced_at = xero.admin("GET", "/clock").json()["now"]
    # When users make a batch of edits later
    xero.admin("POST", "/clock", json={"advance": 3600})
    result = xero.admin("POST", f"/orgs/{tenant_id}/changes", json={"seed": 4, "count": 200}).json()
    changes = result["changes"]
    token = xero.login([tenant_id])["access_token"]  # the first one expired while the clock moved on
    assert result["applied"] == 200
    since = {"If-Modified-Since": _iso(int(synced_at * 1000) + 1000)}
    # Then voided and deleted invoices come back through If-Modified-Since with their new status
    changed = {
        i["InvoiceID"]: i
        for i in xero.get("Invoices", token, tenant_id, headers=since, page=1, pageSize=1000).json()["Invoices"]
    }
    for invoice_id in changes["Invoices"].get("voided", []):
        assert changed[invoice_id]["Status"] == "VOIDED"
    for invoice_id in changes["Invoices"].get("deleted", []):
        assert changed[invoice_id]["Status"] == "DELETED"
    assert set(changed) == {i for ids in changes["Invoices"].values() for i in ids}
    # And removed Items and ContactGroups simply vanish (lists and single reads)
    removed_items = changes.get("Items", {}).get("removed", [])
    assert removed_items, changes.get("Items")
    items_now = {i["ItemID"] for i in xero.get("Items", token, tenant_id).json()["Items"]}
    assert not items_now & set(removed_items)
    assert set(removed_items) <= items_before | set(changes["Items"].get("created", []))
    assert xero.get(f"Items/{removed_items[0]}", token, tenant_id).status_code == 404
    removed_groups = changes.get("ContactGroups", {}).get("removed", [])
    groups_now = {g["ContactGroupID"] for g in xero.get("ContactGroups", token, tenant_id).json()["ContactGroups"]}
    assert not groups_now & set(removed_groups) and set(removed_groups) <= groups_before | set(
        changes.get("ContactGroups", {}).get("created", [])
    )
    # And archived contacts show only with includeArchived
    archived = changes.get("Contacts", {}).get("archived", [])
    assert archived
    plain = {c["ContactID"] for c in xero.get("Contacts", token, tenant_id, page=1, pageSize=1000).json()["Contacts"]}
    everything = {
        c["ContactID"]: c
        for c in xero.get("Contacts", token, tenant_id, page=1, pageSize=1000, includeArchived="true").json()[
            "Contacts"
        ]
    }
    for contact_id in archived:
        assert contact_id not in plain and everything[contact_id]["ContactStatus"] == "ARCHIVED"
    # And new journals (including reversals) follow the old ones by number
    new_journals: list[dict] = []
    while True:
        batch = xero.get("Journals", token, tenant_id, offset=journals_before + len(new_journals)).json()["Journals"]
        if not batch:
            break
        new_journals += batch
    assert new_journals and new_journals[0]["JournalNumber"] == journals_before + 1
    assert len(new_journals) == len(changes["Journals"]["created"])
    voided_ids = set(changes["Invoices"].get("voided", []))
    reversal_sources = {j["SourceID"] for j in new_journals}
    assert voided_ids <= reversal_sources


def test_archived_tracking_and_deleted_transfers_need_include_flags(xero: Xero) -> None:
    org = xero.create_org("Flags Co", seed=2, size="small", counts={"years": 3, "BankTransfers": 40})
    tenant_id = org["tenantId"]
    token = xero.login([tenant_id])["access_token"]
    categories = xero.get("TrackingCategories", token, tenant_id).json()["TrackingCategories"]
    assert all(c["Status"] == "ACTIVE" for c in categories)
    assert all(o["Status"] == "ACTIVE" for c in categories for o in c["Options"])
    with_archived = xero.get("TrackingCategories", token, tenant_id, includeArchived="true").json()
    statuses = {c["Status"] for c in with_archived["TrackingCategories"]}
    assert "ARCHIVED" in statuses
    truth = xero.records(tenant_id, "BankTransfers")
    deleted = {t["BankTransferID"] for t in truth if t["Status"] == "DELETED"}
    assert deleted
    plain = {t["BankTransferID"] for t in xero.get("BankTransfers", token, tenant_id).json()["BankTransfers"]}
    assert not plain & deleted
    including = {
        t["BankTransferID"]
        for t in xero.get("BankTransfers", token, tenant_id, includeDeleted="true").json()["BankTransfers"]
    }
    assert deleted <= including


def test_contact_groups_list_without_members_single_with_them(connected) -> None:
    xero, tenant_id, tokens = connected
    groups = xero.get("ContactGroups", tokens["access_token"], tenant_id).json()["ContactGroups"]
    assert groups and all(g["Contacts"] == [] for g in groups)
    truth = {g["ContactGroupID"]: g for g in xero.records(tenant_id, "ContactGroups")}
    for group in groups:
        single = xero.get(f"ContactGroups/{group['ContactGroupID']}", tokens["access_token"], tenant_id).json()
        assert single["ContactGroups"][0]["Contacts"] == truth[group["ContactGroupID"]]["Contacts"]


def test_search_term_on_contacts_and_invoices(connected) -> None:
    xero, tenant_id, tokens = connected
    token = tokens["access_token"]
    contact = next(c for c in xero.records(tenant_id, "Contacts") if c["ContactStatus"] == "ACTIVE")
    needle = contact["Name"][2:8].upper()
    found = xero.get("Contacts", token, tenant_id, page=1, searchTerm=needle).json()["Contacts"]
    assert contact["ContactID"] in {c["ContactID"] for c in found}
    assert all(
        needle.lower()
        in " ".join(
            str(c.get(f, "")) for f in ("Name", "FirstName", "LastName", "EmailAddress", "ContactNumber")
        ).lower()
        for c in found
    )
    invoice = next(i for i in xero.records(tenant_id, "Invoices") if i["Type"] == "ACCREC")
    hits = xero.get("Invoices", token, tenant_id, page=1, searchTerm=invoice["InvoiceNumber"]).json()["Invoices"]
    assert [i["InvoiceID"] for i in hits] == [invoice["InvoiceID"]]
