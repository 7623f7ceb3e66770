"""The official Xero Python SDK (xero-python), pointed at the emulator, signs in and reads every resource."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient
from xero_python.api_client.configuration import Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import HTTPStatusException
from xero_python.identity import IdentityApi

from tests.tooling.emulator.helpers import CLIENT_ID, CLIENT_SECRET, Xero

# (SDK method, keyword arguments, attribute of the returned model holding the records)
LIST_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("get_organisations", {}, "organisations"),
    ("get_accounts", {}, "accounts"),
    ("get_contacts", {"page": 1, "include_archived": True}, "contacts"),
    ("get_contact_groups", {}, "contact_groups"),
    ("get_invoices", {"page": 1}, "invoices"),
    ("get_credit_notes", {"page": 1}, "credit_notes"),
    ("get_payments", {"page": 1}, "payments"),
    ("get_bank_transactions", {"page": 1}, "bank_transactions"),
    ("get_bank_transfers", {"include_deleted": True}, "bank_transfers"),
    ("get_manual_journals", {"page": 1}, "manual_journals"),
    ("get_journals", {"offset": 0}, "journals"),
    ("get_items", {}, "items"),
    ("get_tax_rates", {}, "tax_rates"),
    ("get_tracking_categories", {"include_archived": True}, "tracking_categories"),
    ("get_overpayments", {"page": 1}, "overpayments"),
    ("get_prepayments", {"page": 1}, "prepayments"),
    ("get_purchase_orders", {"page": 1}, "purchase_orders"),
    ("get_quotes", {"page": 1}, "quotes"),
    ("get_currencies", {}, "currencies"),
    ("get_users", {}, "users"),
    ("get_batch_payments", {}, "batch_payments"),
    ("get_branding_themes", {}, "branding_themes"),
    ("get_repeating_invoices", {}, "repeating_invoices"),
    ("get_linked_transactions", {"page": 1}, "linked_transactions"),
]


@pytest.fixture
def sdk(xero: Xero, monkeypatch: pytest.MonkeyPatch):
    """An SDK client holding a token set obtained through the emulator's authorize + code exchange."""
    monkeypatch.setattr(TokenApi, "refresh_token_url", f"{xero.base_url}/connect/token")
    monkeypatch.setattr(TokenApi, "revoke_token_url", f"{xero.base_url}/connect/revocation")
    org = xero.create_org("SDK Co", seed=12, size="small")
    xero.admin("POST", f"/orgs/{org['tenantId']}/changes", json={"seed": 2, "count": 30})
    tokens = xero.login([org["tenantId"]])
    store: dict[str, Any] = {}
    client = ApiClient(
        Configuration(oauth2_token=OAuth2Token(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)),
        pool_threads=1,
        oauth2_token_getter=lambda: store["token"],
        oauth2_token_saver=lambda token: store.update(token=token),
    )
    client.set_oauth2_token(tokens)
    accounting = AccountingApi(client, base_url=f"{xero.base_url}/api.xro/2.0")
    identity = IdentityApi(client, base_url=xero.base_url)
    return xero, org["tenantId"], client, accounting, identity, store


def test_sdk_reads_connections_and_refreshes_through_the_emulator(sdk) -> None:
    _xero, tenant_id, client, _, identity, store = sdk
    connections = identity.get_connections()
    assert [str(c.tenant_id) for c in connections] == [tenant_id]
    first_refresh_token = store["token"]["refresh_token"]
    # The SDK's own refresh helper talks to the emulator's token endpoint and gets a rotated token
    refreshed = client.refresh_oauth2_token()
    assert refreshed["refresh_token"] != first_refresh_token and refreshed["expires_in"] == 1800
    assert [str(c.tenant_id) for c in identity.get_connections()] == [tenant_id]


@pytest.mark.parametrize(("method", "kwargs", "attribute"), LIST_CALLS, ids=[c[0] for c in LIST_CALLS])
def test_sdk_reads_every_resource(sdk, method: str, kwargs: dict[str, Any], attribute: str) -> None:
    _xero, tenant_id, _, accounting, _, _ = sdk
    result = getattr(accounting, method)(tenant_id, **kwargs)
    records = getattr(result, attribute)
    assert records, f"{method} returned nothing"


def test_sdk_paging_and_if_modified_since(sdk) -> None:
    xero, tenant_id, _, accounting, _, _ = sdk
    truth = xero.records(tenant_id, "Invoices")
    # Paging with the SDK: pageSize pages cover every invoice once, with line items
    seen = []
    page = 1
    while True:
        result = accounting.get_invoices(tenant_id, page=page, page_size=70)
        assert result.pagination.item_count == len(truth) and result.pagination.page_size == 70
        seen += result.invoices
        if page >= result.pagination.page_count:
            break
        page += 1
    assert [str(i.invoice_id) for i in seen] == [i["InvoiceID"] for i in truth]
    assert any(i.line_items for i in seen)
    # If-Modified-Since as a datetime: only records changed strictly after it
    pivot = sorted(i.updated_date_utc for i in seen)[len(seen) // 2]
    since = pivot.replace(microsecond=0)
    recent = accounting.get_invoices(tenant_id, if_modified_since=since, page=1, page_size=1000).invoices
    assert recent and {str(i.invoice_id) for i in recent} == {
        str(i.invoice_id) for i in seen if i.updated_date_utc > since
    }
    future = datetime.now(UTC) + timedelta(days=3650)
    assert accounting.get_contacts(tenant_id, if_modified_since=future, page=1).contacts == []


def test_sdk_journals_by_offset_and_single_reads(sdk) -> None:
    xero, tenant_id, _, accounting, _, _ = sdk
    first = accounting.get_journals(tenant_id).journals
    assert len(first) == 100
    nxt = accounting.get_journals(tenant_id, offset=first[-1].journal_number).journals
    assert nxt[0].journal_number == first[-1].journal_number + 1
    invoice_id = xero.records(tenant_id, "Invoices")[0]["InvoiceID"]
    assert str(accounting.get_invoice(tenant_id, invoice_id).invoices[0].invoice_id) == invoice_id
    contact_id = xero.records(tenant_id, "Contacts")[0]["ContactID"]
    assert str(accounting.get_contact(tenant_id, contact_id).contacts[0].contact_id) == contact_id


def test_sdk_sees_xeros_errors(sdk) -> None:
    xero, tenant_id, _, accounting, identity, _ = sdk
    connection = identity.get_connections()[0]
    xero.admin("POST", f"/connections/{connection.id}/disconnect")
    with pytest.raises(HTTPStatusException) as error:
        accounting.get_invoices(tenant_id, page=1)
    assert error.value.status == 403
