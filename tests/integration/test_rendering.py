"""Stored records as Xero shows them now: copies of other records (contacts, contact groups) resolved at read time
from the stored records they point to, at a bounded cost."""

import copy

from tests.conftest import AWS_CALLS
from xero_sync.catalogue import BY_NAME
from xero_sync.record_store import RecordStore
from xero_sync.rendering import Renderer

CONTACTS, GROUPS, INVOICES, PAYMENTS = (BY_NAME[n] for n in ("Contacts", "ContactGroups", "Invoices", "Payments"))
STAMP = "/Date(1778412345678+0000)/"


def contact(number: int, name: str, groups: list[dict] | None = None) -> dict:
    return {
        "ContactID": f"c{number:07d}-0000-4000-8000-000000000000",
        "Name": name,
        "ContactStatus": "ACTIVE",
        "HasValidationErrors": False,
        "ContactGroups": groups or [],
        "UpdatedDateUTC": STAMP,
    }


def invoice(number: int, named: dict) -> dict:
    ref = {"ContactID": named["ContactID"], "Name": named["Name"], "HasValidationErrors": False}
    return {"InvoiceID": f"i{number:07d}-0000-4000-8000-000000000000", "Contact": ref, "UpdatedDateUTC": STAMP}


def test_embedded_contacts_show_the_stored_contacts_current_fields_at_any_depth(aws):
    store = RecordStore("client-1")
    alpha = contact(1, "Alpha Ltd")
    sent = invoice(1, alpha)
    payment = {
        "PaymentID": "p0000001-0000-4000-8000-000000000000",
        "Invoice": copy.deepcopy(sent),
        "UpdatedDateUTC": STAMP,
    }
    store.apply(INVOICES, [sent])
    store.apply(PAYMENTS, [payment])
    # Given the contact was renamed in Xero after the invoice and payment were stored (Xero did not re-stamp them)
    store.apply(CONTACTS, [dict(alpha, Name="Alpha Holdings Ltd", HasValidationErrors=True)])

    renderer = Renderer("client-1")
    (shown_invoice,) = renderer.render(INVOICES, list(store.records(INVOICES)))
    (shown_payment,) = renderer.render(PAYMENTS, list(store.records(PAYMENTS)))

    # Then both show the stored contact's current name and flag, and only the fields Xero echoes in the copy
    expected = {"ContactID": alpha["ContactID"], "Name": "Alpha Holdings Ltd", "HasValidationErrors": True}
    assert shown_invoice["Contact"] == expected
    assert shown_payment["Invoice"]["Contact"] == expected
    assert {k: v for k, v in shown_invoice.items() if k != "Contact"} == {
        k: v for k, v in sent.items() if k != "Contact"
    }


def test_a_contact_not_stored_is_shown_as_xero_sent_it(aws):
    store = RecordStore("client-1")
    sent = invoice(1, contact(9, "Unknown Ltd"))
    store.apply(INVOICES, [sent])

    (shown,) = Renderer("client-1").render(INVOICES, list(store.records(INVOICES)))

    assert shown == sent


def test_a_contact_lists_only_groups_still_stored_with_their_current_names(aws):
    store = RecordStore("client-1")
    kept = {"ContactGroupID": "g0000001-0000-4000-8000-000000000000", "Name": "VIP", "Status": "ACTIVE", "Contacts": []}
    gone = {"ContactGroupID": "g0000002-0000-4000-8000-000000000000", "Name": "Old list", "Status": "ACTIVE"}
    alpha = contact(1, "Alpha Ltd", [dict(kept), dict(gone)])
    store.apply(CONTACTS, [alpha])
    # The groups as the last whole read found them (with their members): one renamed, one deleted in Xero
    members = [{"ContactID": alpha["ContactID"], "Name": "Alpha Ltd"}]
    store.apply(GROUPS, [dict(kept, Name="Very important", Contacts=members)])

    (shown,) = Renderer("client-1").render(CONTACTS, list(store.records(CONTACTS)))

    # A contact's copy of a group lists no members, as Xero shows it
    assert shown["ContactGroups"] == [dict(kept, Name="Very important")]


def test_a_contacts_group_keeps_its_own_empty_member_list_not_the_groups_members(aws):
    store = RecordStore("client-1")
    group = {"ContactGroupID": "g0000001-0000-4000-8000-000000000000", "Name": "VIP", "Status": "ACTIVE"}
    alpha = contact(1, "Alpha Ltd", [dict(group, Contacts=[])])
    store.apply(CONTACTS, [alpha])
    store.apply(GROUPS, [dict(group, Contacts=[{"ContactID": alpha["ContactID"], "Name": "Alpha Ltd"}])])

    (shown,) = Renderer("client-1").render(CONTACTS, list(store.records(CONTACTS)))

    assert shown["ContactGroups"] == [dict(group, Contacts=[])]


def test_a_groups_members_show_the_stored_contacts_current_names(aws):
    store = RecordStore("client-1")
    alpha, beta = contact(1, "Alpha Ltd"), contact(2, "Beta Ltd")
    members = [{"ContactID": c["ContactID"], "Name": c["Name"]} for c in (alpha, beta)]
    group = {"ContactGroupID": "g0000001-0000-4000-8000-000000000000", "Name": "VIP", "Status": "ACTIVE"}
    store.apply(GROUPS, [dict(group, Contacts=members)])
    # Given one member renamed in Xero after the group was stored (its list shows the new name, un-stamped)
    store.apply(CONTACTS, [dict(alpha, Name="Alpha Holdings Ltd"), beta])

    (shown,) = Renderer("client-1").render(GROUPS, list(store.records(GROUPS)))

    assert shown["Contacts"] == [dict(members[0], Name="Alpha Holdings Ltd"), members[1]]


def test_groups_never_imported_leave_a_contacts_groups_as_xero_sent_them(aws):
    store = RecordStore("client-1")
    groups = [{"ContactGroupID": "g0000001-0000-4000-8000-000000000000", "Name": "VIP", "Status": "ACTIVE"}]
    store.apply(CONTACTS, [contact(1, "Alpha Ltd", groups)])

    (shown,) = Renderer("client-1").render(CONTACTS, list(store.records(CONTACTS)))

    assert shown["ContactGroups"] == groups


def test_a_page_of_invoices_costs_one_batch_get_per_hundred_distinct_contacts(aws):
    store = RecordStore("client-1")
    contacts = [contact(n, f"Contact {n}") for n in range(150)]
    store.apply(CONTACTS, contacts)
    store.apply(INVOICES, [invoice(n, contacts[n % 150]) for n in range(300)])
    page = list(store.records(INVOICES))

    first = len(AWS_CALLS.calls)
    Renderer("client-1").render(INVOICES, page)

    operations = [call.signature[1] for call in AWS_CALLS.since(first)]
    assert operations == ["BatchGetItem", "BatchGetItem"]  # 150 distinct contacts: two calls of at most 100 keys
