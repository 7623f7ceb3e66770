"""One Xero connection, two practices: a Xero connection belongs to (Xero user, app, organisation), so one owner who
links the same organisation for two practices makes one connection. What one practice does (unlink, delete, relink)
never cuts the other off; the last client to leave removes it. And a client being deleted is never brought back."""

import json
import logging
from urllib.parse import parse_qsl, urlparse

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_delete_client import run_purge
from tests.integration.test_linking import complete, refusal, start
from tests.sync_support import drain, link_client, run_to_end, sync
from xero_sync import connections
from xero_sync.connections import RemovalUnderWay, remove_connection_unless_used
from xero_sync.models import Client, TokenSetRef
from xero_sync.tokens import TokenStore
from xero_sync.xero_identity import XeroIdentity, XeroUnavailable


def connections_of(emu) -> list[dict]:
    return emu.admin("GET", "/connections").json()["connections"]


def token_secrets(aws) -> list[str]:
    secrets = aws.session.client("secretsmanager").list_secrets()["SecretList"]
    return [s["Name"] for s in secrets if "/token-sets/" in s["Name"]]


def synced(aws, queue_url, client: Client) -> str:
    return sync(aws.session, queue_url, Client.get(client.practice_id, client.client_id)).status


@pytest.fixture
def shared(aws, api, emu, queue_url) -> tuple[str, Client, Client]:
    """One organisation linked by the same Xero user for practices A and B, each first sync done."""
    tenant = emu.create_org("Shared Ltd")
    a = link_client(api, emu, tenant, "practice-a")
    b = link_client(api, emu, tenant, "practice-b")
    for message in drain(aws.session, queue_url):
        assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    (connection,) = [c for c in connections_of(emu) if c["tenantId"] == tenant]
    assert Client.get("practice-a", a.client_id).connection_id == connection["id"]
    assert Client.get("practice-b", b.client_id).connection_id == connection["id"]
    return tenant, a, b


def test_one_practice_unlinking_keeps_the_connection_the_other_syncs_through(aws, api, emu, queue_url, shared):
    tenant, a, b = shared

    response = api.call("POST", f"/clients/{a.client_id}/unlink", practice="practice-a")

    assert (response.status, response.body["remoteCleanup"]) == (200, "done")
    assert [c["tenantId"] for c in connections_of(emu)] == [tenant]
    assert synced(aws, queue_url, b) == "succeeded"
    assert Client.get("practice-b", b.client_id).link_state == "linked"
    # And practice A's token set is forgotten all the same
    assert TokenSetRef.count() == 1 and len(token_secrets(aws)) == 1
    # And when B, the last client using it, unlinks too, the connection goes
    api.call("POST", f"/clients/{b.client_id}/unlink", practice="practice-b")
    assert connections_of(emu) == [] and token_secrets(aws) == []


def during_the_first(monkeypatch, owner, name: str, interloper, after: bool = False) -> list:
    """Runs `interloper` once, as the first call of `owner.name` begins (another request at that moment), or once it
    has returned (`after`); returns what the interloper answered, in a list (empty until then)."""
    real, answers, begun = getattr(owner, name), [], []

    def interrupted(*args, **kwargs):
        if begun:
            return real(*args, **kwargs)
        begun.append(True)  # first: the interloper's own calls of it are not interrupted
        if not after:
            answers.append(interloper())
            return real(*args, **kwargs)
        result = real(*args, **kwargs)
        answers.append(interloper())
        return result

    monkeypatch.setattr(owner, name, interrupted)
    return answers


def test_two_practices_unlinking_at_once_remove_the_connection(aws, api, emu, queue_url, shared, monkeypatch):
    # Given practices A and B unlinking the shared organisation at once: B's unlink runs whole while A's clean-up,
    # past leaving the connection's users, refreshes A's token set
    _, a, b = shared
    raced = during_the_first(
        monkeypatch,
        TokenStore,
        "fresh",
        lambda: api.call("POST", f"/clients/{b.client_id}/unlink", practice="practice-b"),
    )

    answer = api.call("POST", f"/clients/{a.client_id}/unlink", practice="practice-a")

    # Then the connection no client uses any more is removed at Xero, and both clients are unlinked
    assert [r.status for r in (*raced, answer)] == [200, 200]
    assert connections_of(emu) == []
    assert {Client.get(c.practice_id, c.client_id).link_state for c in (a, b)} == {"unlinked"}


def test_a_link_the_connection_index_has_not_caught_up_with_keeps_its_connection(aws, api, emu, queue_url, monkeypatch):
    # Given practice A's client of an organisation, unlinked: while its clean-up runs, practice B links the same
    # organisation through the same Xero user (its one connection), and the Clients table's connection index has not
    # caught up with B's client yet
    tenant = emu.create_org("Shared Ltd")
    a = link_client(api, emu, tenant, "practice-a")
    drain(aws.session, queue_url)
    query = Client.by_connection.query
    monkeypatch.setattr(
        Client.by_connection,
        "query",
        lambda *args, **kwargs: (k for k in query(*args, **kwargs) if k.practice_id != "practice-b"),
    )
    linked_b = during_the_first(monkeypatch, TokenStore, "fresh", lambda: link_client(api, emu, tenant, "practice-b"))

    answer = api.call("POST", f"/clients/{a.client_id}/unlink", practice="practice-a")
    monkeypatch.undo()

    # Then A is unlinked, and B keeps the connection: it syncs
    (b,) = linked_b
    assert answer.status == 200
    assert [c["tenantId"] for c in connections_of(emu)] == [tenant]
    (message,) = drain(aws.session, queue_url)
    assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    assert Client.get("practice-b", b.client_id).link_state == "linked"


def test_a_link_meeting_its_connections_removal_is_refused_and_links_again_after(aws, api, emu, queue_url, monkeypatch):
    # Given practice A's client of an organisation, unlinked: as its clean-up removes the connection at Xero, practice
    # B completes a link of the same organisation through the same Xero user (the connection being removed)
    tenant = emu.create_org("Shared Ltd")
    a = link_client(api, emu, tenant, "practice-a")
    drain(aws.session, queue_url)
    authorize_url = start(api, practice="practice-b")
    completed_b = during_the_first(
        monkeypatch,
        XeroIdentity,
        "delete_connection",
        lambda: complete(api, emu_consent(emu, authorize_url, tenant), practice="practice-b"),
    )

    answer = api.call("POST", f"/clients/{a.client_id}/unlink", practice="practice-a")
    monkeypatch.undo()

    # Then B's link is refused with its own code, nothing of it is kept, and the connection is gone
    assert (answer.status, answer.body["remoteCleanup"]) == (200, "done")
    assert refusal(completed_b[0]) == (409, "connection_being_removed")
    assert api.call("GET", "/clients", practice="practice-b").body["items"] == []
    assert connections_of(emu) == [] and token_secrets(aws) == []
    # And linking again a moment later links B, through a new connection, and it syncs
    b = link_client(api, emu, tenant, "practice-b")
    (message,) = drain(aws.session, queue_url)
    assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    assert Client.get("practice-b", b.client_id).link_state == "linked"


def unlinked_once_listed(monkeypatch, api, a: Client) -> list:
    """Practice A unlinks its client as the next link completion has listed the connections at Xero; returns A's
    answer, in a list."""

    def unlink():
        return api.call("POST", f"/clients/{a.client_id}/unlink", practice="practice-a")

    return during_the_first(monkeypatch, XeroIdentity, "connections", unlink, after=True)


@pytest.mark.parametrize("xero_answers", ["at once", "too late"])
def test_a_link_that_listed_a_connection_since_removed_is_refused(aws, api, emu, queue_url, monkeypatch, xero_answers):
    # Given practice A's client of an organisation, and practice B completing a link of it through the same Xero
    # user: B's completion has listed the connection at Xero when A's unlink removes it there (Xero answering the
    # removal at once, or too late for the unlink, which waited no longer, though Xero did remove it)
    tenant = emu.create_org("Shared Ltd")
    a = link_client(api, emu, tenant, "practice-a")
    drain(aws.session, queue_url)
    params = emu_consent(emu, start(api, practice="practice-b"), tenant)
    if xero_answers == "too late":
        delete_connection = XeroIdentity.delete_connection

        def removed_unanswered(identity, *args):
            delete_connection(identity, *args)
            raise XeroUnavailable("Xero's answer did not come in time")

        monkeypatch.setattr(XeroIdentity, "delete_connection", removed_unanswered)
    unlinked_a = unlinked_once_listed(monkeypatch, api, a)

    answer = complete(api, params, practice="practice-b")
    monkeypatch.undo()

    # Then B's link is refused with its own code and nothing of it is kept: the connection is gone at Xero
    assert unlinked_a[0].status == 200 and connections_of(emu) == []
    assert refusal(answer) == (409, "connection_being_removed")
    assert api.call("GET", "/clients", practice="practice-b").body["items"] == []
    assert drain(aws.session, queue_url) == []


def test_a_consent_whose_one_connection_was_removed_meanwhile_links_the_others_and_says_so(
    aws, api, emu, queue_url, monkeypatch
):
    # Given practice B consenting to two organisations through the same Xero user as practice A, whose client of the
    # first A unlinks as B's completion has listed the connections
    shared, own = emu.create_org("Shared Ltd"), emu.create_org("Own Ltd")
    a = link_client(api, emu, shared, "practice-a")
    drain(aws.session, queue_url)
    params = emu_consent(emu, start(api, practice="practice-b"), shared, own)
    unlinked_once_listed(monkeypatch, api, a)

    answer = complete(api, params, practice="practice-b")
    monkeypatch.undo()

    # Then B's own organisation is linked, and the answer says the other was not, and why
    assert answer.status == 200
    assert "1 not linked: Xero was removing its connection. Link it again in a minute." in answer.body["message"]
    (listed,) = api.call("GET", "/clients", practice="practice-b").body["items"]
    assert (listed["tenantId"], [c["tenantId"] for c in connections_of(emu)]) == (own, [own])


def test_one_practice_relinking_then_deleting_leaves_the_other_syncing(aws, api, emu, queue_url, shared):
    tenant, a, b = shared
    api.call("POST", f"/clients/{a.client_id}/unlink", practice="practice-a")
    # A relinks (the same Xero user, the same connection) and syncs
    params = emu_consent(emu, start(api, a.client_id, practice="practice-a"), tenant)
    assert complete(api, params, practice="practice-a").body["outcome"] == "relinked"
    for message in drain(aws.session, queue_url):
        assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    assert synced(aws, queue_url, b) == "succeeded"

    # When A deletes its client and the purge runs
    assert api.call("DELETE", f"/clients/{a.client_id}", practice="practice-a").status == 202
    run_purge(aws)

    # Then B's connection is still there and B keeps syncing
    assert [c["tenantId"] for c in connections_of(emu)] == [tenant]
    assert synced(aws, queue_url, b) == "succeeded"
    assert Client.get("practice-b", b.client_id).link_state == "linked"
    with pytest.raises(Client.DoesNotExist):
        Client.get("practice-a", a.client_id)


def emu_consent(emu, authorize_url: str, *tenants: str) -> dict[str, str]:
    """The owner (the same Xero user) ticks the organisations and presses Allow: the callback page's query."""
    emu.admin("POST", "/consent", json={"tenantIds": list(tenants), "deny": False, "userId": "demo-user"})
    answer = emu.session.get(authorize_url, allow_redirects=False, timeout=30)
    return dict(parse_qsl(urlparse(answer.headers["Location"]).query))


# --- no resurrection ------------------------------------------------------------------------------------------------
def test_linking_an_organisation_whose_client_is_being_deleted_is_refused_and_changes_nothing(aws, api, emu):
    tenant = emu.create_org("Leaving Ltd")
    client = link_client(api, emu, tenant, "practice-a")
    assert api.call("DELETE", f"/clients/{client.client_id}").status == 202
    drain(aws.session, aws.queue_url("SyncQueue"))
    before = Client.get("practice-a", client.client_id)
    token_sets_before = {t.token_set_id for t in TokenSetRef.scan()}

    # When the practice links the same organisation again before the purge has run
    response = complete(api, emu_consent(emu, start(api), tenant))

    # Then it is refused with its own code, and the client stays on its way out, untouched
    assert refusal(response) == (409, "client_being_deleted")
    after = Client.get("practice-a", client.client_id)
    assert after.deleting_since == before.deleting_since and after.link_state == "unlinked"
    assert after.updated_at == before.updated_at and after.token_set_id == before.token_set_id
    assert {t.token_set_id for t in TokenSetRef.scan()} == token_sets_before
    assert drain(aws.session, aws.queue_url("SyncQueue")) == []
    assert api.call("GET", f"/clients/{client.client_id}").status == 404


def test_a_relink_whose_client_began_its_deletion_meanwhile_is_refused(aws, api, emu):
    tenant = emu.create_org("Leaving Ltd")
    client = link_client(api, emu, tenant, "practice-a")
    api.call("POST", f"/clients/{client.client_id}/unlink")
    authorize_url = start(api, client.client_id)  # the user is at Xero...
    assert api.call("DELETE", f"/clients/{client.client_id}").status == 202  # ...while a colleague deletes it

    response = complete(api, emu_consent(emu, authorize_url, tenant))

    assert refusal(response) == (409, "client_being_deleted")
    assert Client.get("practice-a", client.client_id).deleting_since is not None
    assert api.call("GET", f"/clients/{client.client_id}").status == 404


# --- what a practice user sees of a failure -------------------------------------------------------------------------
def test_an_unexpected_aws_error_during_a_sync_shows_a_code_and_keeps_the_details_in_the_log(
    aws, api, emu, queue_url, monkeypatch, caplog
):
    tenant = emu.create_org("Denied Ltd")
    client = link_client(api, emu, tenant, "practice-a")
    (message,) = drain(aws.session, queue_url)
    secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:xero-sync-local/xero/token-sets/abc"
    denied = ClientError(
        {
            "Error": {
                "Code": "AccessDeniedException",
                "Message": f"User: arn:aws:sts::123456789012:assumed-role/sync-role/fn is not authorized to "
                f"perform: secretsmanager:GetSecretValue on resource: {secret_arn}",
            }
        },
        "GetSecretValue",
    )

    def refuse(*_args, **_kwargs):
        raise denied

    monkeypatch.setattr(TokenStore, "fresh", refuse)
    caplog.set_level(logging.INFO)

    run = run_to_end(aws.session, queue_url, message)

    shown = json.dumps(
        [
            api.call("GET", f"/clients/{client.client_id}").body,
            api.call("GET", f"/clients/{client.client_id}/syncs").body,
        ]
    )
    assert (run.status, run.error_code) == ("failed", "sync_error")
    assert run.error_message == "The sync failed on our side. The next sync will try again."
    assert Client.get("practice-a", client.client_id).last_error == run.error_message
    for detail in ("123456789012", "assumed-role", secret_arn, "AccessDenied"):
        assert detail not in shown
    assert secret_arn in caplog.text  # the operator finds it in the log


class XeroRemovingConnections:
    """Xero's identity API as a removal meets it: the connections it removed, or failing every call with `failure`."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.removed: list[str] = []

    def delete_connection(self, _token_set, connection_id: str) -> bool:
        if self.failure:
            raise self.failure
        self.removed.append(connection_id)
        return True


def test_a_removal_xero_failed_holds_off_other_removers_until_its_own_retry_or_its_claim_lapses(aws, monkeypatch):
    # Given a removal Xero failed (it may have done it all the same): its claim stays
    with pytest.raises(XeroUnavailable):
        remove_connection_unless_used(XeroRemovingConnections(XeroUnavailable("timed out")), None, "conn-1", "first")

    # Then another remover is told to come back later, while the first one's retry removes it
    later = XeroRemovingConnections()
    with pytest.raises(RemovalUnderWay):
        remove_connection_unless_used(later, None, "conn-1", "second")
    retry = XeroRemovingConnections()
    assert remove_connection_unless_used(retry, None, "conn-1", "first") is True
    assert (later.removed, retry.removed) == ([], ["conn-1"])
    # And a claim that lapsed holds nobody off
    monkeypatch.setattr(connections, "REMOVAL_CLAIM_SECONDS", 0)
    with pytest.raises(XeroUnavailable):
        remove_connection_unless_used(XeroRemovingConnections(XeroUnavailable("away")), None, "conn-2", "first")
    assert remove_connection_unless_used(later, None, "conn-2", "second") is True
    assert later.removed == ["conn-2"]
