"""Odd answers from Xero never delete data, and one resource never blocks a client (issue 21): a whole read sweeps
only when Xero proves it read everything, a mass deletion is confirmed by a second read, a resource Xero does not
offer is recorded as unavailable, and any other failure of one resource leaves the run partial, the rest imported."""

import pytest

from tests.sync_support import differences, drain, link_client, linked_client, run_to_end, sync
from xero_sync.engine import EngineHooks
from xero_sync.models import Client, PassCheckpoint, SyncRun
from xero_sync.record_store import RecordStore

pytestmark = pytest.mark.slow


def stored(client: Client, resource: str) -> int:
    return len(list(RecordStore(client.client_id).stored_ids(resource)))


def calls_to(emu, tenant: str, endpoint: str) -> int:
    return int(emu.stats(tenant).get("calls", {}).get(endpoint, 0))


# --- a sweep needs proof ----------------------------------------------------------------------------------------------
def test_a_full_sync_whose_answers_lose_pagination_deletes_nothing_and_says_so(aws, api, emu, queue_url):
    # Given a client whose invoices are all stored
    tenant, client, message = linked_client(aws.session, api, emu, queue_url, "Paged Ltd", size="tiny")
    assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    invoices = stored(client, "Invoices")
    assert invoices > 5
    before = PassCheckpoint.get(client.client_id, "Invoices")

    # When a full sync meets a server that pages by 5 and sends no `pagination` (a proxy, a lost page, a Xero change)
    emu.fault("no-pagination", count=1, tenantId=tenant, path="Invoices", records=5)
    run = sync(aws.session, queue_url, client, mode="full")

    # Then nothing is deleted, the run says so on the resource, and the resource's marks stay for the next run
    assert run.status == "succeeded", run.error_message
    assert stored(client, "Invoices") == invoices
    counts = run.counts.as_dict()["Invoices"]
    assert counts["deleted"] == 0 and counts["warnings"] == ["pagination_missing"]
    after = PassCheckpoint.get(client.client_id, "Invoices")
    assert (after.full_synced_at, after.modified_since) == (before.full_synced_at, before.modified_since)
    # And the next run, with Xero's answers whole again, converges
    assert sync(aws.session, queue_url, client).status == "succeeded"
    assert differences(emu, tenant, client.client_id) == {}


def test_a_real_mass_deletion_is_applied_after_a_confirming_read(aws, api, emu, queue_url):
    tenant, client, message = linked_client(aws.session, api, emu, queue_url, "Shrinking Ltd", size="small")
    assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    truth = sorted(emu.truth(tenant, "Invoices"))
    gone = truth[: int(len(truth) * 0.3)]
    assert len(gone) > 10
    emu.admin("DELETE", f"/orgs/{tenant}/records/Invoices", json={"ids": gone})
    emu.admin("DELETE", "/stats")

    run = sync(aws.session, queue_url, client, mode="full")

    assert run.status == "succeeded", run.error_message
    counts = run.counts.as_dict()["Invoices"]
    assert counts["deleted"] == len(gone) and counts["warnings"] == ["mass_deletion_confirmed"]
    assert set(RecordStore(client.client_id).stored_ids("Invoices")) == set(truth) - set(gone)
    assert calls_to(emu, tenant, "GET /Invoices") == 2  # the pass, and the read that confirmed the deletion
    assert differences(emu, tenant, client.client_id) == {}


def test_a_record_the_confirming_read_shows_without_its_stamp_is_not_deleted(aws, api, emu, queue_url):
    # Given a client whose accounts are all stored
    tenant, client, message = linked_client(aws.session, api, emu, queue_url, "Unstamped Again Ltd", size="tiny")
    assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    accounts = list(emu.truth(tenant, "Accounts"))  # in the order Xero lists them
    last = accounts[-1]
    assert api.call("GET", f"/clients/{client.client_id}/xero/Accounts/{last}").status == 200
    emu.admin("DELETE", "/stats")

    # When a full sync's read of the accounts leaves the last one out (a Xero glitch), and the read that would
    # confirm its deletion lists it, but without its UpdatedDateUTC (as every account of that answer)
    emu.fault("no-pagination", tenantId=tenant, path="Accounts", records=len(accounts) - 1)
    emu.fault("missing-fields", tenantId=tenant, path="Accounts", fields=["UpdatedDateUTC"], records=len(accounts))
    run = sync(aws.session, queue_url, client, mode="full")

    # Then the account Xero showed again is still stored, as the data API reads it, and nothing else changed
    assert run.status == "succeeded", run.error_message
    assert calls_to(emu, tenant, "GET /Accounts") == 2  # the pass, and the read that would have confirmed
    one = api.call("GET", f"/clients/{client.client_id}/xero/Accounts/{last}")
    assert one.status == 200, one.body
    assert stored(client, "Accounts") == len(accounts)
    assert differences(emu, tenant, client.client_id) == {}
    # And the run says what it did: nothing deleted, the sweep not confirmed, the records it could not take rejected
    counts = run.counts.as_dict()["Accounts"]
    assert (counts["deleted"], counts["warnings"]) == (0, ["sweep_unconfirmed"])
    assert counts["rejected"] == len(accounts)
    assert counts["errors"] and all(e.endswith(": no Xero UpdatedDateUTC") for e in counts["errors"])
    assert api.call("GET", f"/clients/{client.client_id}").body["recordCounts"]["Accounts"] == len(accounts)


# --- one resource never blocks a client -------------------------------------------------------------------------------
def test_a_resource_xero_does_not_offer_is_listed_unavailable_and_the_run_succeeds(aws, api, emu, queue_url):
    tenant = emu.create_org("Unoffered Ltd")
    client = link_client(api, emu, tenant, "practice-a")
    (message,) = drain(aws.session, queue_url)
    emu.fault("not-offered", count=100, tenantId=tenant, path="BatchPayments")

    run = run_to_end(aws.session, queue_url, message)

    # Then the run succeeds, lists the resource as unavailable, and the client's last successful sync moves
    assert run.status == "succeeded", run.error_message
    assert run.unavailable == {"BatchPayments"}
    overview = api.call("GET", f"/clients/{client.client_id}").body
    assert overview["lastSuccessfulSyncAt"] is not None
    assert list(overview["unavailableResources"]) == ["BatchPayments"]
    history = api.call("GET", f"/clients/{client.client_id}/syncs").body["items"]
    assert history[0]["unavailable"] == ["BatchPayments"]
    # And once the next sync finds it so too (it asks again: one 404 may be Xero's passing fault), incremental syncs
    # do not ask for it again; a full one does, and imports it once Xero offers it
    assert sync(aws.session, queue_url, Client.get("practice-a", client.client_id)).unavailable == {"BatchPayments"}
    emu.admin("DELETE", "/faults")
    emu.admin("DELETE", "/stats")
    assert sync(aws.session, queue_url, Client.get("practice-a", client.client_id)).unavailable == {"BatchPayments"}
    assert calls_to(emu, tenant, "GET /BatchPayments") == 0
    full = sync(aws.session, queue_url, Client.get("practice-a", client.client_id), mode="full")
    assert (full.status, full.unavailable) == ("succeeded", None)
    assert api.call("GET", f"/clients/{client.client_id}").body["unavailableResources"] == {}
    assert differences(emu, tenant, client.client_id) == {}


def test_a_resource_xero_did_not_offer_once_is_imported_by_the_next_sync(aws, api, emu, queue_url):
    # Given a first sync during which Xero answered the invoices' list with a 404 once
    tenant = emu.create_org("Blip Ltd")
    client = link_client(api, emu, tenant, "practice-a")
    (message,) = drain(aws.session, queue_url)
    emu.fault("not-offered", count=1, tenantId=tenant, path="Invoices")
    assert run_to_end(aws.session, queue_url, message).unavailable == {"Invoices"}
    # When the next (incremental) sync runs
    run = sync(aws.session, queue_url, Client.get("practice-a", client.client_id))
    # Then it imports the invoices: the client holds what Xero has, and none is listed unavailable
    assert (run.status, run.unavailable) == ("succeeded", None)
    assert api.call("GET", f"/clients/{client.client_id}").body["unavailableResources"] == {}
    assert differences(emu, tenant, client.client_id) == {}


def test_contacts_xero_does_not_offer_leave_the_run_succeeded_and_their_re_read_for_later(aws, api, emu, queue_url):
    # Given an initial sync of an organisation whose contacts Xero stops offering (410): the invoices name contacts
    # whose roles the sync would read again by IDs after the passes
    tenant = emu.create_org("Contactless Ltd")
    client = link_client(api, emu, tenant, "practice-a")
    (message,) = drain(aws.session, queue_url)
    emu.fault("gone", count=1000, tenantId=tenant, path="Contacts")

    run = run_to_end(aws.session, queue_url, message)

    # Then the run succeeds with the contacts unavailable (their re-read is not a failure of the run)
    assert (run.status, run.error_code, run.unavailable) == ("succeeded", None, {"Contacts"}), run.error_message
    # And once Xero offers them again, a full sync imports everything as Xero has it
    emu.admin("DELETE", "/faults")
    full = sync(aws.session, queue_url, Client.get("practice-a", client.client_id), mode="full")
    assert (full.status, full.unavailable) == ("succeeded", None)
    assert differences(emu, tenant, client.client_id) == {}


def test_a_resource_failing_after_its_retries_leaves_the_run_partial_and_the_others_fresh(aws, api, emu, queue_url):
    tenant = emu.create_org("Half Ltd")
    client = link_client(api, emu, tenant, "practice-a")
    (message,) = drain(aws.session, queue_url)
    emu.fault("500", count=100, tenantId=tenant, path="Invoices")

    run = run_to_end(aws.session, queue_url, message)

    # Then the run is partial, names the resource and a code (never a response body)
    assert (run.status, run.error_code, run.failed_resources) == ("partial", "xero_transient_failure", {"Invoices"})
    assert run.error_message == "Xero kept failing. The next sync will try again. Not imported this time: Invoices."
    # And every other resource is imported and shown fresh; the last successful sync waits for a complete run
    overview = api.call("GET", f"/clients/{client.client_id}").body
    assert overview["lastSuccessfulSyncAt"] is None
    assert "Invoices" not in overview["lastImportedAt"] and "Contacts" in overview["lastImportedAt"]
    assert len(overview["lastImportedAt"]) >= 20
    assert Client.get("practice-a", client.client_id).last_error == run.error_message
    # And once Xero answers again, the next run completes it
    emu.admin("DELETE", "/faults")
    again = sync(aws.session, queue_url, Client.get("practice-a", client.client_id))
    assert again.status == "succeeded"
    assert differences(emu, tenant, client.client_id) == {}


def test_the_first_sync_after_linking_is_labelled_initial(aws, api, emu, queue_url):
    _, client, message = linked_client(aws.session, api, emu, queue_url, "First Ltd", size="tiny")

    run = run_to_end(aws.session, queue_url, message)

    assert (message.mode, run.mode, run.status) == ("initial", "initial", "succeeded")
    assert SyncRun.get(client.client_id, message.run_id).mode == "initial"
    # And Sync Now afterwards is incremental
    assert sync(aws.session, queue_url, Client.get("practice-a", client.client_id)).mode == "incremental"


def test_a_resource_failing_after_some_of_its_pages_is_not_shown_as_freshly_imported(aws, api, emu, queue_url):
    # Given a synced client whose journals take several calls (100 a call)
    tenant, client, message = linked_client(aws.session, api, emu, queue_url, "Paged Half Ltd", size="small")
    assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    before = api.call("GET", f"/clients/{client.client_id}").body["lastImportedAt"]

    # When a full sync stores a first page of journals (checkpointed), then Xero fails every later call for them
    def fail_journals_after_a_page(checkpoint: PassCheckpoint) -> None:
        if checkpoint.resource == "Journals" and checkpoint.next_page:  # a page stored, the pass going on
            emu.fault("500", count=100, tenantId=tenant, path="Journals")

    hooks = EngineHooks(after_save=fail_journals_after_a_page)
    run = sync(aws.session, queue_url, client, mode="full", hooks=hooks)

    # Then the run is partial, and the last import of the journals shown is their last complete one
    assert (run.status, run.failed_resources) == ("partial", {"Journals"})
    after = api.call("GET", f"/clients/{client.client_id}").body["lastImportedAt"]
    assert after["Journals"] == before["Journals"]
    assert after["Contacts"] > before["Contacts"]
    view = api.call("GET", f"/clients/{client.client_id}/xero").body["resources"]
    (journals,) = [r for r in view if r["resource"] == "Journals"]
    assert journals["lastImportedAt"] == before["Journals"]
