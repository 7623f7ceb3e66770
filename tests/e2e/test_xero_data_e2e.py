"""The data API on the local stack: an organisation linked through the API and Xero's consent, its first sync run by
the queue worker, then its invoices paged through the front door to the end: exactly the emulator's ground truth."""

from typing import Any

import pytest

from local.stack import LocalStack
from tests.e2e.helpers import Api
from tests.e2e.test_linking_e2e import a_synced_client
from tests.xero import Xero


@pytest.fixture
def stack(xero_stack: LocalStack) -> LocalStack:
    return xero_stack


def test_a_synced_clients_invoices_page_to_the_end_equal_to_xeros(api: Api, stack: LocalStack, xero: Xero) -> None:
    # Given an organisation linked and synced by the worker
    practice = "data-practice"
    tenant, client_id, _ = a_synced_client(api, stack, xero, practice, "Data API E2E Ltd")

    # When its invoices are paged through the API, five a page
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        response = api.get(f"/clients/{client_id}/xero/Invoices", practice, params=params)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["nextCursor"]
        if cursor is None:
            break

    # Then they are Xero's invoices, each once
    truth = xero.admin("GET", f"/orgs/{tenant}/records/Invoices").json()["records"]
    assert len(items) == len({i["InvoiceID"] for i in items}) == len(truth) > 5
    assert {i["InvoiceID"]: i for i in items} == {i["InvoiceID"]: i for i in truth}
