"""Odd answers from Xero never delete a client's data and one resource never blocks a client (issue 21), on the local
stack: clients linked through the API and Xero's consent, synced by the queue worker against the emulator with its
faults, and checked as a practice user would: the run in GET /clients/{id}/syncs, the overview GET /clients/{id}
and the records through the data API GET /clients/{id}/xero/{resource}. (A link whose access token is not a JWT:
tests/e2e/test_linking_e2e.py, test_a_token_that_is_not_a_jwt_or_names_no_consent_links_nothing.)"""

from datetime import datetime
from typing import Any

import pytest

from local.stack.offline_stack import OfflineStack
from tests.e2e.helpers import Api
from tests.e2e.test_linking_e2e import a_synced_client, finished_runs, overview
from tests.e2e.test_one_sync_at_a_time import sync_now
from tests.e2e.test_xero_data_e2e import assert_reads_as_xero, every_record
from tests.xero import Xero

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("xero_minute_a_second")]


@pytest.fixture
def stack(xero_stack: OfflineStack) -> OfflineStack:
    return xero_stack


def full_sync(api: Api, practice: str, client_id: str) -> dict[str, Any]:
    response = api.post(f"/clients/{client_id}/sync", practice, json={"mode": "full"})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def invoice_ids(api: Api, practice: str, client_id: str) -> set[str]:
    return {i["InvoiceID"] for i in every_record(api, practice, client_id, "Invoices")}


def deleted(run: dict[str, Any]) -> dict[str, int]:
    """What a run deleted, per resource it deleted from."""
    return {name: counts["deleted"] for name, counts in run["counts"].items() if counts["deleted"]}


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


# --- a sweep needs proof ----------------------------------------------------------------------------------------------
def test_a_full_sync_whose_answers_lose_pagination_deletes_nothing_and_says_so(
    api: Api, stack: OfflineStack, xero: Xero, practice: str
) -> None:
    # Given a synced client, its invoices readable through the data API
    tenant, client_id, _ = a_synced_client(api, stack, xero, practice, "Unpaged Ltd")
    invoices, counts = invoice_ids(api, practice, client_id), overview(api, practice, client_id)["recordCounts"]
    assert len(invoices) > 5
    # When a full sync meets answers without Xero's `pagination`, from a server paging by 5 (a proxy, a Xero change)
    xero.admin("POST", "/faults", json={"kind": "no-pagination", "tenantId": tenant, "path": "Invoices", "records": 5})
    accepted = full_sync(api, practice, client_id)
    latest, _ = finished_runs(api, practice, client_id, 2)

    # Then the run succeeds, deleted nothing, and says on the invoices that their read could not prove its end
    assert (latest["runId"], latest["mode"], latest["status"]) == (accepted["runId"], "full", "succeeded"), latest
    assert deleted(latest) == {}
    assert latest["counts"]["Invoices"]["warnings"] == ["pagination_missing"]
    # And every invoice is still readable, and the overview's counts are unchanged
    assert invoice_ids(api, practice, client_id) == invoices
    assert overview(api, practice, client_id)["recordCounts"] == counts
    assert_reads_as_xero(api, xero, practice, client_id, tenant, "after the unproven read")


def test_a_real_mass_deletion_in_xero_is_applied_after_a_confirming_read(
    api: Api, stack: OfflineStack, xero: Xero, practice: str
) -> None:
    # Given a synced client with a few hundred invoices
    tenant, client_id, _ = a_synced_client(api, stack, xero, practice, "Shrinking Ltd", size="small")
    invoices = sorted(invoice_ids(api, practice, client_id))
    # When 30 % of them disappear from Xero (more than the sweep removes without a second whole read)
    gone = invoices[: int(len(invoices) * 0.3)]
    assert len(gone) > 10
    removed = xero.admin("DELETE", f"/orgs/{tenant}/records/Invoices", json={"ids": gone}).json()["removed"]
    assert sorted(removed) == gone
    # And the practice asks for a full sync
    accepted = full_sync(api, practice, client_id)
    latest, _ = finished_runs(api, practice, client_id, 2)

    # Then the run deleted exactly those invoices, once a second read confirmed it, and nothing else
    assert (latest["runId"], latest["status"]) == (accepted["runId"], "succeeded"), latest
    assert deleted(latest) == {"Invoices": len(gone)}
    assert latest["counts"]["Invoices"]["warnings"] == ["mass_deletion_confirmed"]
    # And the data API and the overview show what Xero shows now
    assert invoice_ids(api, practice, client_id) == set(invoices) - set(gone)
    assert overview(api, practice, client_id)["recordCounts"]["Invoices"] == len(invoices) - len(gone)
    assert_reads_as_xero(api, xero, practice, client_id, tenant, "after the mass deletion")


# --- one resource never blocks a client -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["not-offered", "gone"])  # Xero's 404 and 410 on the collection
def test_a_resource_xero_does_not_offer_is_listed_unavailable_and_the_run_succeeds(
    api: Api, stack: OfflineStack, xero: Xero, practice: str, kind: str
) -> None:
    # Given a synced client
    tenant, client_id, _ = a_synced_client(api, stack, xero, practice, f"Unoffered {kind} Ltd")
    before = overview(api, practice, client_id)
    quotes = every_record(api, practice, client_id, "Quotes")
    assert quotes
    # When Xero stops offering it Quotes, and the practice presses Sync Now
    xero.admin("POST", "/faults", json={"kind": kind, "count": 100, "tenantId": tenant, "path": "Quotes"})
    accepted = sync_now(api, practice, client_id)
    latest, _ = finished_runs(api, practice, client_id, 2)

    # Then the run succeeds and lists Quotes as unavailable, as the overview does
    assert (latest["runId"], latest["status"]) == (accepted["runId"], "succeeded"), latest
    assert (latest["unavailable"], latest["failedResources"], latest["errorCode"]) == (["Quotes"], [], None)
    after = overview(api, practice, client_id)
    assert list(after["unavailableResources"]) == ["Quotes"]
    assert "Quotes" not in after["lastImportedAt"]
    # And the client's last successful sync moves; what was imported of Quotes stays readable
    assert at(after["lastSuccessfulSyncAt"]) > at(before["lastSuccessfulSyncAt"])
    assert every_record(api, practice, client_id, "Quotes") == quotes

    # When Xero offers it again, the next full sync asks for it and it is no longer listed
    xero.admin("DELETE", "/faults")
    full_sync(api, practice, client_id)
    again, *_ = finished_runs(api, practice, client_id, 3)
    assert (again["status"], again["unavailable"]) == ("succeeded", []), again
    assert overview(api, practice, client_id)["unavailableResources"] == {}
    assert_reads_as_xero(api, xero, practice, client_id, tenant, "once offered again")


def test_a_resource_failing_after_its_retries_leaves_the_run_partial_and_the_others_fresh(
    api: Api, stack: OfflineStack, xero: Xero, practice: str
) -> None:
    # Given a synced client
    tenant, client_id, _ = a_synced_client(api, stack, xero, practice, "Half Ltd")
    before = overview(api, practice, client_id)
    # When Xero answers every call for its invoices with a 500, and the practice presses Sync Now
    fault = xero.admin("POST", "/faults", json={"kind": "500", "count": 100, "tenantId": tenant, "path": "Invoices"})
    accepted = sync_now(api, practice, client_id)
    latest, _ = finished_runs(api, practice, client_id, 2)

    # Then the engine asked more than once (its retries) and the run is partial, naming the resource and a code
    (left,) = [f for f in xero.admin("GET", "/faults").json()["faults"] if f["id"] == fault.json()["id"]]
    assert left["remaining"] <= 100 - 2
    assert (latest["runId"], latest["status"]) == (accepted["runId"], "partial"), latest
    assert (latest["errorCode"], latest["failedResources"]) == ("xero_transient_failure", ["Invoices"])
    assert "Invoices" in latest["errorMessage"] and "<" not in latest["errorMessage"]  # no response body
    # And the overview shows every other resource imported by this run, the invoices as they were, and the last
    # successful sync where it was
    after = overview(api, practice, client_id)
    assert after["lastSuccessfulSyncAt"] == before["lastSuccessfulSyncAt"]
    assert after["lastImportedAt"]["Invoices"] == before["lastImportedAt"]["Invoices"]
    others = set(before["lastImportedAt"]) - {"Invoices"}
    assert len(others) >= 20
    stale = {name for name in others if at(after["lastImportedAt"][name]) < at(latest["startedAt"])}
    assert stale == set(), stale
    assert after["lastError"] == latest["errorMessage"]
    assert_reads_as_xero(api, xero, practice, client_id, tenant, "after the partial run")

    # When Xero answers again, the next Sync Now completes the client
    xero.admin("DELETE", "/faults")
    sync_now(api, practice, client_id)
    again, *_ = finished_runs(api, practice, client_id, 3)
    assert again["status"] == "succeeded", again
    assert at(overview(api, practice, client_id)["lastSuccessfulSyncAt"]) >= at(again["startedAt"])
