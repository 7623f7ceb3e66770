"""Linking, relinking and unlinking clients end to end: the front end calls the front door with a JWT, the user
answers Xero's consent (the emulator), Xero sends the browser back to the console's callback page, which completes
the link with the user's JWT, and the queue worker runs the sync the link asked for against the emulator. The same
scenarios as tests/integration/test_linking.py, on the local stack."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse

import boto3
import pytest

from local.stack.offline_stack import OfflineStack
from tests.e2e.helpers import Api, eventually
from tests.xero import Xero

SYNC_TIMEOUT = 90  # seconds for the worker to take and finish a tiny organisation's sync on a busy machine
# Linking, not pacing, is tested here: the syncs of one organisation linked twice share its minute budget, and with
# Xero's real minute the third sync within it waits the rest of the minute out.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("xero_minute_a_second")]


@pytest.fixture
def stack(xero_stack: OfflineStack) -> OfflineStack:
    """Every test of this module runs on the stack with the Xero emulator."""
    return xero_stack


# --- what the user does ---------------------------------------------------------------------------------------------
def an_organisation(xero: Xero, name: str, size: str = "tiny", seed: str | None = None) -> str:
    """A Xero organisation of this test's own (the emulator lives as long as the stack: names must not repeat); its
    records are built from `seed` when given (the same every run), else from its unique name."""
    return xero.create_org(f"{name} {uuid.uuid4().hex[:8]}", size=size, seed=seed)


def start(api: Api, practice: str, client_id: str | None = None) -> str:
    """The front end asks for a Xero authorisation URL (add, or relink a client)."""
    response = api.post(f"/clients/{client_id}/link" if client_id else "/clients/link", practice)
    assert response.status_code == 201, response.text
    url: str = response.json()["authorizeUrl"]
    return url


def at_xero(xero: Xero, authorize_url: str, tenant_ids: list[str] | None = None, deny: bool = False) -> str:
    """The user answers Xero's consent screen; Xero redirects the browser: the callback URL it sends it to."""
    xero.admin("POST", "/consent", json={"tenantIds": tenant_ids or [], "deny": deny})
    response = xero.session.get(authorize_url, allow_redirects=False, timeout=30)
    assert response.status_code == 302, response.text
    location: str = response.headers["Location"]
    return location


def back_from_xero(
    api: Api, stack: OfflineStack, callback_url: str, practice: str | None, token: str | None = None
) -> Any:
    """Xero sent the browser to the console's callback page, which hands what Xero put in its query to the API with
    the signed-in user's JWT (`practice`'s, or `token`)."""
    assert callback_url.startswith(f"{stack.xero_redirect_uri}?"), callback_url
    query = dict(parse_qsl(urlparse(callback_url).query))
    completion = {name: query[name] for name in ("state", "code", "error") if name in query}
    return api.post("/xero/link-completions", practice, token=token, json=completion)


def refusal(response: Any) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"}, body
    return response.status_code, body["error"]["code"]


def link(
    api: Api, stack: OfflineStack, xero: Xero, practice: str, tenant_ids: list[str], client_id: str | None = None
) -> dict[str, Any]:
    response = back_from_xero(api, stack, at_xero(xero, start(api, practice, client_id), tenant_ids), practice)
    assert response.status_code == 200, response.text
    outcome: dict[str, Any] = response.json()
    return outcome


def a_synced_client(
    api: Api, stack: OfflineStack, xero: Xero, practice: str, name: str, size: str = "tiny", seed: str | None = None
) -> tuple[str, str, dict[str, Any]]:
    """An organisation linked as a client whose first sync the worker ran: its tenant, client id and that run."""
    tenant = an_organisation(xero, name, size, seed)
    (client_id,) = link(api, stack, xero, practice, [tenant])["clientIds"]
    (run,) = finished_runs(api, practice, client_id, 1)
    assert run["status"] == "succeeded", run
    return tenant, client_id, run


# --- what the user sees ---------------------------------------------------------------------------------------------
def clients(api: Api, practice: str) -> list[dict[str, Any]]:
    response = api.get("/clients", practice)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def overview(api: Api, practice: str, client_id: str) -> dict[str, Any]:
    response = api.get(f"/clients/{client_id}", practice)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def runs(api: Api, practice: str, client_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/clients/{client_id}/syncs", practice)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def finished_runs(api: Api, practice: str, client_id: str, count: int) -> list[dict[str, Any]]:
    """The client's runs (newest first) once `count` of them exist and every one has finished."""

    def done() -> list[dict[str, Any]] | None:
        found = runs(api, practice, client_id)
        return found if len(found) >= count and all(r["finishedAt"] is not None for r in found) else None

    found = eventually(done, timeout=SYNC_TIMEOUT)
    assert found, f"{client_id}'s runs did not finish: {runs(api, practice, client_id)}"
    assert len(found) == count, found
    return list(found)


def connected_tenants(xero: Xero) -> set[str]:
    return {c["tenantId"] for c in xero.admin("GET", "/connections").json()["connections"]}


def token_set_secrets(stack: OfflineStack) -> set[str]:
    secretsmanager = boto3.client("secretsmanager", endpoint_url=stack.moto.endpoint, region_name=stack.region)
    secrets = secretsmanager.list_secrets()["SecretList"]
    return {s["Name"] for s in secrets if "/token-sets/" in s["Name"]}


def secret_of(stack: OfflineStack, practice: str, client_id: str) -> str:
    """The name of the secret holding the client's token set."""
    from xero_sync.models import Client

    token_set_id = Client.get(practice, client_id).token_set_id
    assert token_set_id
    (name,) = [name for name in token_set_secrets(stack) if name.endswith(token_set_id)]
    return name


def stored_records(client_id: str, resource: str) -> int:
    from xero_sync.models import XeroRecord

    return sum(1 for _ in XeroRecord.query(f"{client_id}#{resource}"))


# --- adding ---------------------------------------------------------------------------------------------------------
def test_adding_one_organisation_links_a_client_whose_first_sync_the_worker_runs(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    # Given an organisation in Xero
    tenant = an_organisation(xero, "Alpha Ltd")

    # When the user adds it
    outcome = link(api, stack, xero, practice, [tenant])

    # Then it is a linked client of the practice
    assert (outcome["outcome"], outcome["code"], len(outcome["clientIds"])) == ("linked", "linked", 1)
    (listed,) = clients(api, practice)
    assert (listed["clientId"], listed["tenantId"], listed["linkState"]) == (outcome["clientIds"][0], tenant, "linked")
    assert listed["name"].startswith("Alpha Ltd")
    # And the sync the link queued is taken by the worker and imports the organisation
    (run,) = finished_runs(api, practice, listed["clientId"], 1)
    assert (run["trigger"], run["status"]) == ("link", "succeeded"), run
    after = overview(api, practice, listed["clientId"])
    assert after["lastSuccessfulSyncAt"] is not None and after["currentRun"] is None
    assert stored_records(listed["clientId"], "Contacts") > 0


def test_xero_sends_the_browser_to_the_consoles_callback_page_and_the_apis_old_callback_links_nothing(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    tenant = an_organisation(xero, "Bravo Ltd")

    # When Xero sends the browser back after consent
    callback_url = at_xero(xero, start(api, practice), [tenant])

    # Then it lands on the console's callback page (another origin than the API's), served by the console
    page = api.session.get(callback_url, timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert '<script type="module" src="/js/xero-callback.js">' in page.text
    assert not callback_url.startswith(stack.api_url)
    # And the API's old unauthenticated callback route is gone: following Xero's query there links nothing
    query = callback_url.split("?", 1)[1]
    assert api.session.get(f"{stack.api_url}/xero/callback?{query}", timeout=30).status_code == 404
    assert clients(api, practice) == []
    # And the user who started it can still complete it
    assert back_from_xero(api, stack, callback_url, practice).json()["outcome"] == "linked"


@pytest.mark.parametrize("who", ["nobody", "another practice", "another user of the practice"])
def test_only_the_user_who_started_a_link_can_complete_it(
    stack: OfflineStack, api: Api, xero: Xero, practice: str, who: str
) -> None:
    # Given a link started by a user of the practice, approved in Xero by someone they sent the URL to
    tenant = xero.create_org(f"Stranger {uuid.uuid4().hex[:8]}", user_id="stranger")
    xero.admin("POST", "/consent", json={"tenantIds": [tenant], "deny": False, "userId": "stranger"})
    answer = xero.session.get(start(api, practice), allow_redirects=False, timeout=30)
    callback_url = answer.headers["Location"]
    token = {
        "nobody": None,
        "another practice": stack.token(f"other-{practice}"),
        "another user of the practice": stack.token(practice, "someone-else"),
    }[who]

    # When the stranger's browser completes it, with no JWT or with their own
    response = back_from_xero(api, stack, callback_url, None, token=token)

    # Then nothing is linked anywhere: the gateway refuses a call with no JWT, the API any JWT but the starter's
    if who == "nobody":
        assert response.status_code == 401
    else:
        assert refusal(response) == (403, "state_mismatch")
    assert clients(api, practice) == [] and clients(api, f"other-{practice}") == []
    assert tenant not in {c["tenantId"] for c in clients(api, practice)}


def test_two_organisations_in_one_consent_become_two_clients_sharing_one_secret(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    from xero_sync.models import Client, TokenSetRef

    tenants = [an_organisation(xero, "Charlie Ltd"), an_organisation(xero, "Delta Ltd")]
    secrets_before = token_set_secrets(stack)

    outcome = link(api, stack, xero, practice, tenants)

    # Then two clients, one per organisation, share one token set, kept in one new secret
    assert (outcome["outcome"], len(outcome["clientIds"])) == ("linked", 2)
    assert sorted(c["tenantId"] for c in clients(api, practice)) == sorted(tenants)
    linked = [Client.get(practice, client_id) for client_id in outcome["clientIds"]]
    assert linked[0].token_set_id == linked[1].token_set_id
    assert TokenSetRef.get(linked[0].token_set_id).tenant_ids == set(tenants)
    (new_secret,) = token_set_secrets(stack) - secrets_before
    assert new_secret.endswith(linked[0].token_set_id)
    # And each client's first sync runs
    for client_id in outcome["clientIds"]:
        (run,) = finished_runs(api, practice, client_id, 1)
        assert (run["trigger"], run["status"]) == ("link", "succeeded"), run


# --- relinking ------------------------------------------------------------------------------------------------------
def test_relink_after_unlink_brings_back_the_same_client_and_syncs_it(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    # Given a client that was linked, synced, then unlinked
    tenant, client_id, _ = a_synced_client(api, stack, xero, practice, "Echo Ltd")
    assert api.post(f"/clients/{client_id}/unlink", practice).status_code == 200
    assert tenant not in connected_tenants(xero)

    # When the user relinks it and chooses its organisation in Xero
    response = back_from_xero(api, stack, at_xero(xero, start(api, practice, client_id), [tenant]), practice)

    # Then it is the same client, linked again, with no duplicate, and the relink's sync runs
    assert response.status_code == 200, response.text
    assert response.json() == {
        "outcome": "relinked",
        "code": "relinked",
        "message": "Relinked.",
        "clientIds": [client_id],
    }
    assert [c["clientId"] for c in clients(api, practice)] == [client_id]
    assert overview(api, practice, client_id)["linkState"] == "linked"
    assert tenant in connected_tenants(xero)
    relinked, first = finished_runs(api, practice, client_id, 2)
    assert (first["trigger"], first["status"]) == ("link", "succeeded"), first
    assert (relinked["trigger"], relinked["status"]) == ("relink", "succeeded"), relinked


def test_unlinking_while_the_links_sync_is_queued_closes_that_run_and_the_worker_skips_it(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    tenant = an_organisation(xero, "Foxtrot Ltd")
    with stack.worker_for("SyncQueue").paused():
        (client_id,) = link(api, stack, xero, practice, [tenant])["clientIds"]

        assert api.post(f"/clients/{client_id}/unlink", practice).status_code == 200

        (closed,) = runs(api, practice, client_id)
        assert (closed["trigger"], closed["status"], closed["errorCode"]) == ("link", "failed", "client_unlinked")
    # When the worker takes the link's message, it does nothing with it: the run stays closed, no other appears
    eventually(lambda: _queue_is_empty(stack), timeout=SYNC_TIMEOUT)
    assert [(r["runId"], r["status"]) for r in runs(api, practice, client_id)] == [(closed["runId"], "failed")]
    assert stored_records(client_id, "Contacts") == 0


def test_relinking_with_another_organisation_is_refused_and_its_connection_removed(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    own, other = an_organisation(xero, "Golf Ltd"), an_organisation(xero, "Stranger Ltd")
    (client_id,) = link(api, stack, xero, practice, [own])["clientIds"]
    assert api.post(f"/clients/{client_id}/unlink", practice).status_code == 200

    # When the user relinks it but chooses another organisation in Xero
    response = back_from_xero(api, stack, at_xero(xero, start(api, practice, client_id), [other]), practice)

    # Then it is refused, the connection that consent made is removed again, and the client stays unlinked
    assert refusal(response) == (409, "wrong_organisation")
    assert other not in connected_tenants(xero)
    assert overview(api, practice, client_id)["linkState"] == "unlinked"
    assert [c["clientId"] for c in clients(api, practice)] == [client_id]


def test_relinking_another_practices_client_is_not_found(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    (client_id,) = link(api, stack, xero, practice, [an_organisation(xero, "Hotel Ltd")])["clientIds"]

    response = api.post(f"/clients/{client_id}/link", f"other-{practice}")

    assert (response.status_code, response.json()["error"]["code"]) == (404, "client_not_found")


# --- refused completions --------------------------------------------------------------------------------------------
def test_consent_denied_changes_nothing(stack: OfflineStack, api: Api, xero: Xero, practice: str) -> None:
    callback_url = at_xero(xero, start(api, practice), deny=True)

    response = back_from_xero(api, stack, callback_url, practice)

    assert refusal(response) == (400, "access_denied")
    assert clients(api, practice) == []


@pytest.mark.parametrize("tamper", ["replayed", "forged", "expired", "pkce"])
def test_a_bad_state_or_verifier_is_refused_and_changes_nothing(
    stack: OfflineStack, api: Api, xero: Xero, practice: str, tamper: str
) -> None:
    from xero_sync.models import OAuthState

    tenant = an_organisation(xero, f"India {tamper} Ltd")
    callback_url = at_xero(xero, start(api, practice), [tenant])
    params = dict(parse_qsl(urlparse(callback_url).query))
    if tamper == "replayed":
        (client_id,) = back_from_xero(api, stack, callback_url, practice).json()["clientIds"]
        finished_runs(api, practice, client_id, 1)  # the first callback's link and its sync, settled
    elif tamper == "forged":
        params["state"] = "forged-" + params["state"][7:]
        callback_url = f"{stack.xero_redirect_uri}?{urlencode(params)}"
    elif tamper == "expired":
        OAuthState.get(params["state"]).update(
            actions=[OAuthState.expires_at.set(datetime.now(UTC) - timedelta(seconds=1))]
        )
    elif tamper == "pkce":
        OAuthState.get(params["state"]).update(actions=[OAuthState.code_verifier.set("x" * 64)])
    clients_before = clients(api, practice)

    response = back_from_xero(api, stack, callback_url, practice)

    expected = "exchange_failed" if tamper == "pkce" else "invalid_state"
    assert refusal(response) == (400, expected)
    assert clients(api, practice) == clients_before
    for client in clients_before:  # the replayed link's client: its one sync, and no other
        (run,) = finished_runs(api, practice, client["clientId"], 1)
        assert run["trigger"] == "link"


# --- unlinking ------------------------------------------------------------------------------------------------------
def test_unlink_removes_the_connection_and_the_unused_secret_but_keeps_the_data(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:

    # Given a linked client whose first sync imported its organisation
    tenant, client_id, run = a_synced_client(api, stack, xero, practice, "Juliet Ltd")
    secret = secret_of(stack, practice, client_id)
    records = stored_records(client_id, "Contacts")
    assert records > 0
    before = overview(api, practice, client_id)

    # When the user unlinks it
    response = api.post(f"/clients/{client_id}/unlink", practice)

    # Then Xero's connection and the token set's secret are gone
    assert response.status_code == 200, response.text
    assert response.json() == {"clientId": client_id, "linkState": "unlinked", "remoteCleanup": "done"}
    assert tenant not in connected_tenants(xero)
    assert secret not in token_set_secrets(stack)
    # And the client, its history and its data are kept, frozen
    after = overview(api, practice, client_id)
    assert after["linkState"] == "unlinked"
    assert (after["name"], after["tenantId"]) == (before["name"], tenant)
    assert after["lastSuccessfulSyncAt"] == before["lastSuccessfulSyncAt"]
    assert [r["runId"] for r in runs(api, practice, client_id)] == [run["runId"]]
    assert stored_records(client_id, "Contacts") == records
    # And Sync Now is refused
    sync = api.post(f"/clients/{client_id}/sync", practice)
    assert (sync.status_code, sync.json()["error"]["code"]) == (409, "client_not_linked")
    # And unlinking again is a no-op
    again = api.post(f"/clients/{client_id}/unlink", practice)
    assert (again.status_code, again.json()["remoteCleanup"]) == (200, "not_needed")


def test_unlinking_one_of_two_clients_sharing_a_token_set_leaves_the_other_syncing(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    from xero_sync.models import Client

    alpha, beta = an_organisation(xero, "Kilo Ltd"), an_organisation(xero, "Lima Ltd")
    client_ids = link(api, stack, xero, practice, [alpha, beta])["clientIds"]
    by_tenant = {Client.get(practice, c).tenant_id: c for c in client_ids}
    for client_id in client_ids:
        finished_runs(api, practice, client_id, 1)
    shared_secret = secret_of(stack, practice, client_ids[0])

    # When the user unlinks one of them
    assert api.post(f"/clients/{by_tenant[alpha]}/unlink", practice).status_code == 200

    # Then only its connection is gone; the token set the other uses stays
    connected = connected_tenants(xero)
    assert alpha not in connected and beta in connected
    assert shared_secret in token_set_secrets(stack)
    # And the other still syncs: Sync Now is accepted and the worker runs it
    sync = api.post(f"/clients/{by_tenant[beta]}/sync", practice)
    assert sync.status_code == 202, sync.text
    latest, _ = finished_runs(api, practice, by_tenant[beta], 2)
    assert (latest["runId"], latest["trigger"], latest["status"]) == (sync.json()["runId"], "manual", "succeeded")
    assert overview(api, practice, by_tenant[beta])["linkState"] == "linked"


def test_a_disconnect_inside_xero_puts_the_client_in_needs_relink_at_its_next_sync(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    # Given a linked client that synced
    tenant, client_id, _ = a_synced_client(api, stack, xero, practice, "Mike Ltd")

    # When the user removes the app inside Xero, and the client is synced next
    (connection,) = [c for c in xero.admin("GET", "/connections").json()["connections"] if c["tenantId"] == tenant]
    xero.admin("POST", f"/connections/{connection['id']}/disconnect")
    sync = api.post(f"/clients/{client_id}/sync", practice)
    assert sync.status_code == 202, sync.text

    # Then that sync fails saying Xero refused it, and the client needs relinking (its data kept)
    latest, _ = finished_runs(api, practice, client_id, 2)
    assert (latest["runId"], latest["status"]) == (sync.json()["runId"], "failed"), latest
    assert latest["errorCode"] in {"xero_forbidden", "token_revoked"}, latest
    after = overview(api, practice, client_id)
    assert after["linkState"] == "needs_relink" and after["linkStateReason"], after
    assert after["lastSuccessfulSyncAt"] is not None
    refused = api.post(f"/clients/{client_id}/sync", practice)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "client_not_linked")

    # And relinking it brings it back, and it syncs again
    assert link(api, stack, xero, practice, [tenant], client_id)["outcome"] == "relinked"
    assert overview(api, practice, client_id)["linkState"] == "linked"
    relinked, *_ = finished_runs(api, practice, client_id, 3)
    assert (relinked["trigger"], relinked["status"]) == ("relink", "succeeded"), relinked


# --- what one practice does never breaks another's -----------------------------------------------------------------
def test_two_practices_on_one_connection_one_unlinks_relinks_and_deletes_the_other_keeps_syncing(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    # Given one organisation that its owner (one Xero user) linked for two practices: one connection at Xero
    other = f"other-{practice}"
    tenant = an_organisation(xero, "Shared Ltd")
    (mine,) = link(api, stack, xero, practice, [tenant])["clientIds"]
    (theirs,) = link(api, stack, xero, other, [tenant])["clientIds"]
    finished_runs(api, practice, mine, 1)
    finished_runs(api, other, theirs, 1)
    assert [c["tenantId"] for c in xero.admin("GET", "/connections").json()["connections"]].count(tenant) == 1

    def the_other_syncs(runs_so_far: int) -> None:
        sync = api.post(f"/clients/{theirs}/sync", other, json={})
        assert sync.status_code == 202, sync.text
        latest, *_ = finished_runs(api, other, theirs, runs_so_far + 1)
        assert (latest["runId"], latest["status"]) == (sync.json()["runId"], "succeeded"), latest

    # When the first practice unlinks, then the other syncs
    assert api.post(f"/clients/{mine}/unlink", practice).json()["remoteCleanup"] == "done"
    assert tenant in connected_tenants(xero)
    the_other_syncs(1)
    # When it relinks (and syncs), then deletes its client and the purge runs
    assert link(api, stack, xero, practice, [tenant], mine)["outcome"] == "relinked"
    finished_runs(api, practice, mine, 2)
    assert api.request("DELETE", f"/clients/{mine}", practice).status_code == 202
    eventually(lambda: api.get(f"/clients/{mine}", practice).status_code == 404 and _purged(practice, mine), 60)

    # Then the connection the other practice relies on is still there, and it keeps syncing
    assert tenant in connected_tenants(xero)
    the_other_syncs(2)
    assert overview(api, other, theirs)["linkState"] == "linked"


def _purged(practice: str, client_id: str) -> bool:
    from xero_sync.models import Client

    try:
        Client.get(practice, client_id)
    except Client.DoesNotExist:
        return True
    return False


def test_linking_an_organisation_whose_client_is_being_deleted_is_refused(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    tenant = an_organisation(xero, "November Ltd")
    with stack.worker_for("PurgeQueue").paused():  # the client stays on its way out while the user links again
        (client_id,) = link(api, stack, xero, practice, [tenant])["clientIds"]
        assert api.request("DELETE", f"/clients/{client_id}", practice).status_code == 202

        response = back_from_xero(api, stack, at_xero(xero, start(api, practice), [tenant]), practice)

        assert refusal(response) == (409, "client_being_deleted")
        assert clients(api, practice) == []
        assert api.get(f"/clients/{client_id}", practice).status_code == 404


@pytest.mark.parametrize("kind", ["opaque-token", "no-auth-event"])
def test_a_token_that_is_not_a_jwt_or_names_no_consent_links_nothing(
    stack: OfflineStack, api: Api, xero: Xero, practice: str, kind: str
) -> None:
    tenant = an_organisation(xero, f"Oscar {kind}")
    callback_url = at_xero(xero, start(api, practice), [tenant])
    xero.admin("POST", "/faults", json={"path": "/connect/token", "kind": kind})

    response = back_from_xero(api, stack, callback_url, practice)

    assert refusal(response) == (400, "exchange_failed")
    assert response.json()["error"]["message"] == "Xero did not accept the authorisation. Start linking again."
    assert clients(api, practice) == []


def _queue_is_empty(stack: OfflineStack) -> bool:
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=stack.queue_url("SyncQueue"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
