"""Linking, relinking and unlinking clients through the API and the Xero emulator."""

import contextvars
import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlparse

import botocore.session
import pytest

from local.stack import handler_loader
from local.stack.function_environment import forget_cached_clients
from tests.api import Api
from tests.integration.conftest import Aws
from tests.integration.test_delete_client import run_purge
from tests.integration.test_token_store import make_stale
from xero_sync import unlinking
from xero_sync.deletion import delete_client
from xero_sync.linking import LinkCompletion, complete_link, start_link
from xero_sync.models import CLEANUP_PARTITION, Client, OAuthState, TokenSetRef
from xero_sync.runs import begin_run
from xero_sync.schemas import SyncMessage
from xero_sync.sync_worker import process_sync_message
from xero_sync.tokens import TokenRefreshBusy, TokenSaveFailed, TokenSetRevoked, TokenStore
from xero_sync.unlinking import clean_up_remote, mark_needs_relink, retry_remote_cleanups
from xero_sync.xero_identity import XeroIdentity


def start(api: Api, client_id: str | None = None, practice: str = "practice-a") -> str:
    path = f"/clients/{client_id}/link" if client_id else "/clients/link"
    response = api.call("POST", path, practice=practice)
    assert response.status == 201, response.body
    return response.body["authorizeUrl"]


def complete(api: Api, params: dict[str, str], practice: str = "practice-a", user: str = "user-1"):
    """What the front end's callback page does: Xero's query (state, code or error) to the API, as the signed-in
    user."""
    return api.call("POST", "/xero/link-completions", practice=practice, user=user, body=json.dumps(params))


def refusal(response) -> tuple[int, str]:
    """A completion that linked nothing: its status and the code in the API's error shape."""
    assert set(response.body) == {"error"}, response.body
    return response.status, response.body["error"]["code"]


def link(api: Api, xero, tenant_ids: list[str], practice: str = "practice-a") -> dict:
    response = complete(api, xero.consent(start(api, practice=practice), tenant_ids), practice)
    assert response.status == 200, response.body
    return response.body


def connections_at_xero(xero) -> set[str]:
    return {c["tenantId"] for c in xero.admin("GET", "/connections").json()["connections"]}


def queued(aws) -> list[SyncMessage]:
    return [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]


def test_linking_one_organisation_creates_a_linked_client_and_queues_its_first_sync(aws, xero, api):
    tenant = xero.create_org("Alpha Ltd")
    outcome = link(api, xero, [tenant])
    assert (outcome["outcome"], len(outcome["clientIds"])) == ("linked", 1)
    (listed,) = api.call("GET", "/clients").body["items"]
    assert (listed["clientId"], listed["name"], listed["tenantId"], listed["linkState"]) == (
        outcome["clientIds"][0],
        "Alpha Ltd",
        tenant,
        "linked",
    )
    assert [(m.client_id, m.trigger) for m in queued(aws)] == [(listed["clientId"], "link")]


def test_a_cold_link_reads_the_app_secret_and_stores_its_token_set_through_one_secrets_manager_client(
    aws, xero, api, monkeypatch
):
    # Given a process that has built no AWS client yet (a cold start)
    forget_cached_clients()
    created: list[str] = []
    create_client = botocore.session.Session.create_client

    def counted(session, service_name, *args, **kwargs):
        created.append(service_name)
        return create_client(session, service_name, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", counted)
    # When a user links an organisation (its app credentials read, its token set stored)
    assert link(api, xero, [xero.create_org("Alpha Ltd")])["outcome"] == "linked"
    # Then both went through one Secrets Manager client: a second would cost the cold start a boto3 session too
    assert created.count("secretsmanager") == 1


def test_a_link_whose_first_sync_sqs_does_not_take_stands_and_its_history_says_so(aws, xero, api, sqs_not_taking):
    # Given SQS not taking the first sync's message as an organisation is linked
    tenant = xero.create_org("Alpha Ltd")
    with sqs_not_taking():
        outcome = link(api, xero, [tenant])
    # Then the link stands: the client is listed, linked, with no sync queued or running
    assert outcome["outcome"] == "linked"
    (listed,) = api.call("GET", "/clients").body["items"]
    assert (listed["clientId"], listed["linkState"], listed["currentRun"]) == (outcome["clientIds"][0], "linked", None)
    # And its history shows the first sync failed to queue, with the fixed message; Sync Now queues it again
    (run,) = api.call("GET", f"/clients/{listed['clientId']}/syncs").body["items"]
    assert (run["trigger"], run["status"], run["errorCode"]) == ("link", "failed", "enqueue_failed")
    assert run["errorMessage"] == "The sync could not be queued. Try again."
    assert api.call("POST", f"/clients/{listed['clientId']}/sync").status == 202
    assert [m.client_id for m in queued(aws)] == [listed["clientId"]]


def test_two_organisations_in_one_consent_become_two_clients_sharing_one_secret(aws, xero, api):
    tenants = [xero.create_org("Alpha Ltd"), xero.create_org("Beta Ltd")]
    outcome = link(api, xero, tenants)
    clients = [Client.get("practice-a", client_id) for client_id in outcome["clientIds"]]
    assert sorted(c.tenant_id for c in clients) == sorted(tenants)
    assert clients[0].token_set_id == clients[1].token_set_id
    assert TokenSetRef.get(clients[0].token_set_id).tenant_ids == set(tenants)
    secrets = aws.session.client("secretsmanager").list_secrets()["SecretList"]
    assert len([s for s in secrets if "/token-sets/" in s["Name"]]) == 1


def test_the_completion_answers_the_outcome_and_no_token(xero, api):
    tenant = xero.create_org("Alpha Ltd")
    response = complete(api, xero.consent(start(api), [tenant]))
    assert response.status == 200
    assert set(response.body) == {"outcome", "code", "message", "clientIds"}
    assert (response.body["outcome"], response.body["code"]) == ("linked", "linked")
    assert "token" not in json.dumps(response.body).lower()


def test_linking_an_organisation_again_relinks_the_same_client(xero, api):
    tenant = xero.create_org("Alpha Ltd")
    first = link(api, xero, [tenant])
    second = link(api, xero, [tenant])
    assert first["clientIds"] == second["clientIds"]
    assert len(api.call("GET", "/clients").body["items"]) == 1


@pytest.mark.parametrize("tamper", ["replayed", "forged", "expired", "pkce"])
def test_a_bad_state_or_verifier_is_refused_and_changes_nothing(aws, xero, api, tamper):
    tenant = xero.create_org("Alpha Ltd")
    params = xero.consent(start(api), [tenant])
    if tamper == "replayed":
        complete(api, params)
        aws.receive_all("SyncQueue")
    elif tamper == "forged":
        params["state"] = "forged-" + params["state"][7:]
    elif tamper == "expired":
        OAuthState.get(params["state"]).update(
            actions=[OAuthState.expires_at.set(datetime.now(UTC) - timedelta(seconds=1))]
        )
    elif tamper == "pkce":
        OAuthState.get(params["state"]).update(actions=[OAuthState.code_verifier.set("x" * 64)])
    clients_before = api.call("GET", "/clients").body["items"]
    response = complete(api, params)
    expected = "exchange_failed" if tamper == "pkce" else "invalid_state"
    assert refusal(response) == (400, expected)
    assert api.call("GET", "/clients").body["items"] == clients_before
    assert queued(aws) == []


def test_consent_denied_changes_nothing(aws, xero, api):
    url = start(api)
    xero.admin("POST", "/consent", json={"deny": True})
    params = dict(parse_qsl(urlparse(xero.session.get(url, allow_redirects=False).headers["Location"]).query))
    response = complete(api, params)
    assert refusal(response) == (400, "access_denied")
    assert response.body["error"]["message"] == "Access to Xero was not allowed."
    assert api.call("GET", "/clients").body["items"] == [] and queued(aws) == []


def test_unlink_removes_the_connection_and_the_unused_secret_but_keeps_the_client(aws, xero, api):
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = link(api, xero, [tenant])["clientIds"]
    queued(aws)
    response = api.call("POST", f"/clients/{client_id}/unlink")
    assert response.status == 200
    assert response.body == {"clientId": client_id, "linkState": "unlinked", "remoteCleanup": "done"}
    assert tenant not in connections_at_xero(xero)
    secrets = aws.session.client("secretsmanager").list_secrets()["SecretList"]
    assert [s for s in secrets if "/token-sets/" in s["Name"]] == []
    overview = api.call("GET", f"/clients/{client_id}").body
    assert (overview["linkState"], overview["name"]) == ("unlinked", "Alpha Ltd")
    assert api.call("POST", f"/clients/{client_id}/sync").status == 409
    # And unlinking again is a no-op
    again = api.call("POST", f"/clients/{client_id}/unlink")
    assert (again.status, again.body["remoteCleanup"]) == (200, "not_needed")


@pytest.mark.parametrize(
    ("racing", "expected"),
    [("unlink", (200, "not_needed")), ("delete", (404, "client_not_found")), ("purge", (404, "client_not_found"))],
)
def test_an_unlink_racing_another_unlink_or_the_delete_answers_as_the_client_now_is(
    aws, xero, api, monkeypatch, racing, expected
):
    # Given a practice's unlink, and another request on the client (a double click, or its deletion, maybe purged
    # already) landing between the unlink's read of the client and its write
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = link(api, xero, [tenant])["clientIds"]
    read, raced = Client.get, []

    def read_then_race(*args, **kwargs) -> Client:
        found = read(*args, **kwargs)
        if not raced:
            raced.append(None)  # before the racing request, which reads the client too
            if racing == "unlink":
                raced[0] = api.call("POST", f"/clients/{client_id}/unlink")
            else:
                raced[0] = api.call("DELETE", f"/clients/{client_id}")
                if racing == "purge":
                    contextvars.Context().run(run_purge, aws)  # as the purge function, not inside the unlink's
        return found

    monkeypatch.setattr(Client, "get", read_then_race)
    answer = api.call("POST", f"/clients/{client_id}/unlink")
    monkeypatch.undo()

    # Then the racing request did its work, and the unlink answers as for the client it finds: unlinked by the
    # other (nothing more to do), or gone
    assert raced[0].status in {200, 202}, raced[0].body
    code = answer.body["remoteCleanup"] if answer.status == 200 else answer.body["error"]["code"]
    assert (answer.status, code) == expected
    if racing == "unlink":
        assert tenant not in connections_at_xero(xero)  # the other unlink cleaned up
    elif racing == "delete":
        assert Client.get("practice-a", client_id).deleting_since is not None  # its purge cleans up
    # And a client deleted is never brought back (not even as an item with its keys alone)
    listed = api.call("GET", "/clients")
    assert (listed.status, len(listed.body["items"])) == (200, racing == "unlink")


def test_unlinking_one_of_two_clients_sharing_a_token_set_leaves_the_other_working(xero, api):
    alpha, beta = xero.create_org("Alpha Ltd"), xero.create_org("Beta Ltd")
    outcome = link(api, xero, [alpha, beta])
    by_tenant = {Client.get("practice-a", c).tenant_id: c for c in outcome["clientIds"]}
    api.call("POST", f"/clients/{by_tenant[alpha]}/unlink")
    beta_client = Client.get("practice-a", by_tenant[beta])
    token_set = TokenStore().fresh(beta_client.token_set_id)
    assert [c.tenant_id for c in XeroIdentity().connections(token_set)] == [beta]
    assert api.call("POST", f"/clients/{by_tenant[beta]}/sync").status == 202


def test_unlinking_one_client_of_a_token_set_xero_revoked_leaves_the_others_to_need_a_relink(aws, xero, api):
    # Given two clients linked by one consent, whose refresh token Xero no longer accepts (revoked in Xero), its
    # access token about to expire
    alpha, beta = xero.create_org("Alpha Ltd"), xero.create_org("Beta Ltd")
    outcome = link(api, xero, [alpha, beta])
    by_tenant = {Client.get("practice-a", c).tenant_id: c for c in outcome["clientIds"]}
    first_syncs = {m.client_id: m for m in queued(aws)}
    token_set_id = Client.get("practice-a", by_tenant[beta]).token_set_id
    store = TokenStore()
    XeroIdentity().revoke(store.read(token_set_id).refresh_token)
    make_stale(aws, store, token_set_id)

    # When the practice unlinks one of them (its clean-up meets the revoked token set)
    assert api.call("POST", f"/clients/{by_tenant[alpha]}/unlink").status == 200

    # Then the other's next sync finds out what happened to it: it needs a relink, its data kept
    assert process_sync_message(first_syncs[by_tenant[beta]]) == "failed"
    overview = api.call("GET", f"/clients/{by_tenant[beta]}").body
    assert overview["linkState"] == "needs_relink", overview
    # And the unlinked client no longer counts in the token set
    assert TokenSetRef.get(token_set_id).tenant_ids == {beta}


def test_relink_after_unlink_brings_back_the_same_client_and_queues_a_sync(aws, xero, api):
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = link(api, xero, [tenant])["clientIds"]
    (first_sync,) = queued(aws)
    api.call("POST", f"/clients/{client_id}/unlink")
    # The link's sync, still queued, is closed by the unlink: it will not run for an unlinked client
    (closed,) = api.call("GET", f"/clients/{client_id}/syncs").body["items"]
    assert (closed["runId"], closed["status"], closed["errorCode"]) == (first_sync.run_id, "failed", "client_unlinked")
    assert begin_run(first_sync) is None
    response = complete(api, xero.consent(start(api, client_id), [tenant]))
    assert response.body == {
        "outcome": "relinked",
        "code": "relinked",
        "message": "Relinked.",
        "clientIds": [client_id],
    }
    assert api.call("GET", f"/clients/{client_id}").body["linkState"] == "linked"
    assert len(api.call("GET", "/clients").body["items"]) == 1
    assert [(m.client_id, m.trigger) for m in queued(aws)] == [(client_id, "relink")]
    assert tenant in connections_at_xero(xero)


def test_relinking_with_another_organisation_is_refused_and_its_connection_removed(xero, api):
    own, other = xero.create_org("Alpha Ltd"), xero.create_org("Stranger Ltd")
    (client_id,) = link(api, xero, [own])["clientIds"]
    api.call("POST", f"/clients/{client_id}/unlink")
    response = complete(api, xero.consent(start(api, client_id), [other]))
    assert refusal(response) == (409, "wrong_organisation")
    assert other not in connections_at_xero(xero)
    assert api.call("GET", f"/clients/{client_id}").body["linkState"] == "unlinked"


def test_relinking_another_practices_client_is_not_found(xero, api):
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = link(api, xero, [tenant], practice="practice-b")["clientIds"]
    response = api.call("POST", f"/clients/{client_id}/link", practice="practice-a")
    assert (response.status, response.body["error"]["code"]) == (404, "client_not_found")


@pytest.mark.parametrize("failure", [TokenRefreshBusy(), TokenSaveFailed()], ids=["refresh-busy", "save-failed"])
def test_an_unlink_whose_token_set_cannot_be_refreshed_now_is_done_and_cleaned_up_later(
    xero, api, monkeypatch, failure
):
    # Given the client's token set, which cannot be refreshed right now (another holder's lease; the rotated set
    # not saved)
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = link(api, xero, [tenant])["clientIds"]

    def fails(*_args, **_kwargs):
        raise failure

    monkeypatch.setattr(TokenStore, "fresh", fails)
    response = api.call("POST", f"/clients/{client_id}/unlink")
    monkeypatch.undo()

    # Then the unlink is done, its clean-up at Xero left to the next attempt, which does it
    assert (response.status, response.body["remoteCleanup"]) == (200, "pending")
    assert api.call("GET", f"/clients/{client_id}").body["linkState"] == "unlinked"
    assert retry_remote_cleanups() == 0
    assert tenant not in connections_at_xero(xero)


def test_an_unlink_while_xero_is_away_is_done_locally_and_cleaned_up_later(xero, api):
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = link(api, xero, [tenant])["clientIds"]
    xero.admin("POST", "/faults", json={"path": "/connections", "kind": "503", "count": 3})
    response = api.call("POST", f"/clients/{client_id}/unlink")
    assert (response.status, response.body["remoteCleanup"]) == (200, "pending")
    assert api.call("GET", f"/clients/{client_id}").body["linkState"] == "unlinked"
    assert tenant in connections_at_xero(xero)
    xero.admin("DELETE", "/faults")
    assert retry_remote_cleanups() == 0
    assert tenant not in connections_at_xero(xero)


def test_an_unlink_answers_by_its_deadline_when_xero_is_slow_and_the_clean_up_is_done_later(xero, api, monkeypatch):
    # Given a client, and Xero holding its answer to the connection's removal longer than an unlink may wait
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = link(api, xero, [tenant])["clientIds"]
    monkeypatch.setattr(unlinking, "UNLINK_WAITS_FOR_XERO_SECONDS", 1.0)
    xero.admin("POST", "/faults", json={"path": "/connections", "kind": "timeout", "holdSeconds": 6, "count": 1})

    # When the practice unlinks it
    started = time.monotonic()
    response = api.call("POST", f"/clients/{client_id}/unlink")

    # Then the answer comes by the deadline, not when Xero answers: unlinked, the clean-up left pending
    assert time.monotonic() - started < 4
    assert (response.status, response.body["remoteCleanup"]) == (200, "pending")
    assert api.call("GET", f"/clients/{client_id}").body["linkState"] == "unlinked"
    # And the nightly retry, with no deadline, removes the connection
    assert retry_remote_cleanups() == 0
    assert tenant not in connections_at_xero(xero)


def test_a_token_set_xero_refuses_puts_its_clients_in_needs_relink_with_data_kept(aws, xero, api):
    tenants = [xero.create_org("Alpha Ltd"), xero.create_org("Beta Ltd")]
    client_ids = link(api, xero, tenants)["clientIds"]
    token_set_id = Client.get("practice-a", client_ids[0]).token_set_id
    store = TokenStore()
    XeroIdentity().revoke(store.read(token_set_id).refresh_token)
    stale = store.read(token_set_id)
    stale.expires_at = 0
    aws.session.client("secretsmanager").put_secret_value(
        SecretId=f"xero-sync-local/xero/token-sets/{token_set_id}", SecretString=stale.to_secret_string()
    )
    with pytest.raises(TokenSetRevoked) as revoked:
        store.fresh(token_set_id)
    assert "invalid_grant" in revoked.value.reason
    assert sorted(mark_needs_relink(token_set_id, "token_revoked").client_ids) == sorted(client_ids)
    for client_id in client_ids:
        overview = api.call("GET", f"/clients/{client_id}").body
        assert (overview["linkState"], overview["linkStateReason"]) == (
            "needs_relink",
            "Xero no longer accepts this client's authorisation. Relink it to sync.",
        )
        assert api.call("POST", f"/clients/{client_id}/sync").status == 409


# --- a deletion that begins while a link completes ------------------------------------------------------------------
def token_sets_no_client_names() -> set[str]:
    """Token sets (refs or secrets) that no client names: nothing would ever delete them."""
    named = {c.token_set_id for c in Client.scan() if c.token_set_id}
    return {t.token_set_id for t in TokenSetRef.scan()} - named


def secrets_of(aws) -> set[str]:
    secrets = aws.session.client("secretsmanager").list_secrets()["SecretList"]
    return {s["Name"].rsplit("/", 1)[1] for s in secrets if "/token-sets/" in s["Name"]}


def deleted_by_a_colleague(client_id: str, purged_by: Aws | None = None) -> None:
    """A colleague's DELETE of the client, as the clients function; then, given the stack, its purge to the end."""
    as_clients_function = handler_loader.CURRENT_FUNCTION.set("ClientsFunction")  # the DELETE's own calls
    try:
        delete_client("practice-a", client_id)
    finally:
        handler_loader.CURRENT_FUNCTION.reset(as_clients_function)
    if purged_by is not None:
        contextvars.Context().run(run_purge, purged_by)  # as the purge function


@pytest.fixture
def deleted_once_the_token_set_is_written(aws, monkeypatch):
    """`arrange(client_id)`: a colleague deletes that client just after the completion wrote its token set, so the
    completion's check that the client is not being deleted came too early. With `purged`, once the completion has
    read the client again, and its purge ends: the client is gone when the link is written."""

    def arrange(client_id: str, purged: bool = False) -> None:
        create, read, armed = TokenStore.create, Client.get, []

        def create_then_delete(self: TokenStore, *args, **kwargs) -> str:
            token_set_id = create(self, *args, **kwargs)
            if purged:
                armed.append(True)
            else:
                deleted_by_a_colleague(client_id)
            return token_set_id

        def read_then_purge(*args, **kwargs) -> Client:
            found = read(*args, **kwargs)
            if armed and armed.pop():
                deleted_by_a_colleague(client_id, purged_by=aws)
            return found

        monkeypatch.setattr(TokenStore, "create", create_then_delete)
        monkeypatch.setattr(Client, "get", read_then_purge)

    return arrange


@pytest.mark.parametrize("purged", [False, True], ids=["deleted", "purged_before_the_link_is_written"])
def test_a_relink_whose_client_is_deleted_after_its_token_set_is_written_leaves_no_token_set(
    aws, xero, api, deleted_once_the_token_set_is_written, purged
):
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = link(api, xero, [tenant])["clientIds"]
    api.call("POST", f"/clients/{client_id}/unlink")
    params = xero.consent(start(api, client_id), [tenant])
    deleted_once_the_token_set_is_written(client_id, purged)

    response = complete(api, params)

    assert refusal(response) == (409, "client_being_deleted")
    if purged:
        assert list(Client.query("practice-a")) == []
    else:
        assert Client.get("practice-a", client_id).deleting_since is not None
    assert TokenSetRef.count() == 0 and secrets_of(aws) == set()


@pytest.mark.parametrize("deletion_began", ["before_the_completion", "after_the_token_set_was_written"])
def test_a_consent_naming_a_client_being_deleted_links_the_others_and_says_so(
    aws, xero, api, deleted_once_the_token_set_is_written, deletion_began
):
    # Given Beta's client, linked earlier, whose deletion begins before or during a consent for Alpha and Beta
    alpha, beta = xero.create_org("Alpha Ltd"), xero.create_org("Beta Ltd")
    (beta_id,) = link(api, xero, [beta])["clientIds"]
    beta_token_set = Client.get("practice-a", beta_id).token_set_id
    params = xero.consent(start(api), [alpha, beta])
    if deletion_began == "before_the_completion":
        delete_client("practice-a", beta_id)
    else:
        deleted_once_the_token_set_is_written(beta_id)

    response = complete(api, params)

    # Then Alpha is linked, the answer says Beta was not and why, and Beta's client is left to its deletion
    assert response.status == 200, response.body
    (alpha_id,) = response.body["clientIds"]
    assert Client.get("practice-a", alpha_id).tenant_id == alpha
    assert response.body["message"] == (
        "1 organisation(s) linked. 1 not linked: a client being deleted can be linked again once its deletion has "
        "finished."
    )
    beta_client = Client.get("practice-a", beta_id)
    assert beta_client.deleting_since is not None and beta_client.token_set_id == beta_token_set
    # And the new token set holds Alpha alone; every token set is named by a client (Beta's by its purge's)
    new_token_set = Client.get("practice-a", alpha_id).token_set_id
    assert TokenSetRef.get(new_token_set).tenant_ids == {alpha}
    assert token_sets_no_client_names() == set()
    assert secrets_of(aws) == {new_token_set, beta_token_set}


def test_a_consent_whose_every_client_is_being_deleted_is_refused_and_leaves_no_token_set(
    aws, xero, api, deleted_once_the_token_set_is_written
):
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = link(api, xero, [tenant])["clientIds"]
    own_token_set = Client.get("practice-a", client_id).token_set_id
    params = xero.consent(start(api), [tenant])
    deleted_once_the_token_set_is_written(client_id)

    response = complete(api, params)

    assert refusal(response) == (409, "client_being_deleted")
    assert token_sets_no_client_names() == set() and secrets_of(aws) == {own_token_set}


@pytest.mark.parametrize("relinked", ["before_the_retry", "during_the_retry"])
def test_a_clean_up_of_a_client_relinked_meanwhile_leaves_its_new_token_set_and_connection(
    aws, xero, api, monkeypatch, relinked
):
    # Given a client unlinked while Xero was away, which the nightly retry reads (the index can lag behind)...
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = link(api, xero, [tenant])["clientIds"]
    xero.admin("POST", "/faults", json={"path": "/connections", "kind": "503", "count": 3})
    assert api.call("POST", f"/clients/{client_id}/unlink").body["remoteCleanup"] == "pending"
    xero.admin("DELETE", "/faults")
    (read_by_the_retry,) = Client.pending_cleanups.query(CLEANUP_PARTITION)

    # ...and which the practice relinks (the same Xero user: the same connection) just before the retry, or during
    # it, once the retry has read the client again and refreshed the old token set
    def relink() -> None:
        assert complete(api, xero.consent(start(api, client_id), [tenant])).body["outcome"] == "relinked"

    if relinked == "before_the_retry":
        relink()
    else:
        fresh = TokenStore.fresh

        def fresh_then_relink(self: TokenStore, *args, **kwargs):
            token_set = fresh(self, *args, **kwargs)
            monkeypatch.undo()  # once
            relink()
            return token_set

        monkeypatch.setattr(TokenStore, "fresh", fresh_then_relink)

    # When the retry cleans up what it read
    assert clean_up_remote(read_by_the_retry)

    # Then the relinked client keeps its new token set and its connection at Xero, and syncs
    relinked_client = Client.get("practice-a", client_id)
    assert relinked_client.link_state == "linked" and relinked_client.connection_id is not None
    assert secrets_of(aws) == {relinked_client.token_set_id} and token_sets_no_client_names() == set()
    assert tenant in connections_at_xero(xero)
    assert api.call("POST", f"/clients/{client_id}/sync").status == 202


def test_two_relinks_of_one_client_racing_leave_it_one_token_set(aws, xero, api, monkeypatch):
    # Given two completions relinking one client (two colleagues), the second completing between the first's read of
    # the client and its write
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = link(api, xero, [tenant])["clientIds"]
    first = xero.consent(start(api, client_id), [tenant])
    create, read = TokenStore.create, Client.get
    armed: list[bool] = []

    def create_and_arm(self: TokenStore, *args, **kwargs) -> str:
        armed.append(len(armed) == 0)  # the first completion's token set only
        return create(self, *args, **kwargs)

    def read_then_race(*args, **kwargs) -> Client:
        found = read(*args, **kwargs)
        if armed and armed[0] and len(armed) == 1:
            armed.append(False)
            second = xero.consent(start_link("practice-a", "user-1", client_id).authorize_url, [tenant])
            assert complete_link("practice-a", "user-1", LinkCompletion(**second)).outcome == "relinked"
        return found

    monkeypatch.setattr(TokenStore, "create", create_and_arm)
    monkeypatch.setattr(Client, "get", read_then_race)

    answer = complete(api, first)
    assert answer.body.get("outcome") == "relinked", answer.body

    # Then the client names the last token set written, and no other is left
    relinked = read("practice-a", client_id)
    assert len(armed) == 3 and relinked.link_state == "linked"
    assert secrets_of(aws) == {relinked.token_set_id} and token_sets_no_client_names() == set()
