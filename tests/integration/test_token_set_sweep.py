"""The nightly dispatch forgets token sets no client names (token_sweep): those the two killed calls leave behind,
a link completion stopped before its clients' writes and an organisation's removal stopped before the set's
deletion. Sets a client names, and sets younger than an hour, are kept."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import Stubber

from tests.faults import Killed, killed
from tests.integration.test_dispatch import invoke_dispatch
from tests.integration.test_linking import complete, link, secrets_of, start, token_sets_no_client_names
from xero_sync import aws_clients
from xero_sync.dispatch import dispatch_nightly
from xero_sync.linking import LinkCompletion, complete_link, start_link
from xero_sync.models import CLEANUP_PARTITION, Client, LinkState, TokenSetRef
from xero_sync.observability import metrics
from xero_sync.tokens import TokenRefreshBusy, TokenStore
from xero_sync.unlinking import mark_needs_relink, retry_remote_cleanups, unlink_client


def completion_killed_once_its_token_set_is_written(xero, tenants: list[str], client_id: str | None = None) -> str:
    """A link completion (a relink when `client_id` is given) killed just after it wrote its token set, before any
    client names it; returns that set's id."""
    create, before = TokenStore.create, token_sets_no_client_names()

    def create_then_killed(self: TokenStore, *args, **kwargs) -> str:
        create(self, *args, **kwargs)
        raise Killed("create")

    with pytest.MonkeyPatch.context() as patched, pytest.raises(Killed):
        patched.setattr(TokenStore, "create", create_then_killed)
        complete_as_user(xero, tenants, client_id)
    (orphan,) = token_sets_no_client_names() - before
    return orphan


def complete_as_user(xero, tenants: list[str], client_id: str | None = None) -> None:
    """A link completion (a relink when `client_id` is given) of the practice's user, in-process."""
    started = start_link("practice-a", "user-1", client_id)
    complete_link("practice-a", "user-1", LinkCompletion(**xero.consent(started.authorize_url, tenants)))


def created_ago(token_set_id: str, age: timedelta) -> None:
    TokenSetRef(token_set_id=token_set_id).update(actions=[TokenSetRef.created_at.set(datetime.now(UTC) - age)])


def age_every_token_set(age: timedelta = timedelta(hours=2)) -> None:
    for ref in TokenSetRef.scan():
        created_ago(ref.token_set_id, age)


def connected_users(xero) -> set[str]:
    """The Xero users with a connection to the app."""
    return {c["userId"] for c in xero.admin("GET", "/connections").json()["connections"]}


def forgotten(aws, token_set_id: str) -> bool:
    """Its ref and its secret are both gone."""
    return TokenSetRef.count(token_set_id) == 0 and token_set_id not in secrets_of(aws)


def forgotten_count(answer: dict) -> int:
    assert "token_sets_forgotten" in answer, answer
    return int(answer["token_sets_forgotten"])


@pytest.mark.parametrize("completion", ["new_clients", "relink"])
def test_a_completion_killed_before_its_client_writes_leaves_a_token_set_the_nightly_forgets(
    aws, xero, api, completion
):
    # Given a completion killed (its Lambda's timeout) after writing its token set, before any client names it: a
    # consent of two new organisations, or the relink of a client linked an hour ago
    alpha, beta = xero.create_org("Alpha Ltd"), xero.create_org("Beta Ltd")
    kept: set[str] = set()
    if completion == "relink":
        (client_id,) = link(api, xero, [alpha])["clientIds"]
        kept = {Client.get("practice-a", client_id).token_set_id}
    if completion == "relink":
        orphan = completion_killed_once_its_token_set_is_written(xero, [alpha], client_id)
    else:
        orphan = completion_killed_once_its_token_set_is_written(xero, [alpha, beta])
    assert orphan in secrets_of(aws)
    age_every_token_set()

    # When the nightly dispatch runs
    answer = invoke_dispatch(aws, {"trigger": "nightly"})

    # Then the orphan's secret and ref are gone, and the relinked client keeps its own token set, which works
    assert forgotten_count(answer) == 1 and forgotten(aws, orphan)
    assert secrets_of(aws) == kept
    # And the orphan's connections at Xero went with it, but the one the relinked client still uses
    assert connected_users(xero) == ({"demo-user"} if completion == "relink" else set())
    for token_set_id in kept:
        assert TokenStore().fresh(token_set_id).seconds_left() > 0


def test_an_organisations_removal_killed_before_the_sets_deletion_leaves_a_set_the_nightly_forgets(
    aws, xero, api, monkeypatch, every_log_line
):
    # Given a client relinked, whose completion took its organisation out of the old token set (its last) and was
    # killed before deleting that set: a ref with no organisations, its secret still there
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = link(api, xero, [tenant])["clientIds"]
    old = Client.get("practice-a", client_id).token_set_id
    monkeypatch.setattr(TokenStore, "delete", killed)  # the invocation is killed as it deletes the set
    with pytest.raises(Killed):
        complete_as_user(xero, [tenant], client_id)
    monkeypatch.undo()
    new = Client.get("practice-a", client_id).token_set_id
    assert new != old and TokenSetRef.get(old).tenant_ids == set() and old in secrets_of(aws)
    age_every_token_set()
    metrics.clear_metrics()
    first_line = len(every_log_line.lines)

    # When the nightly dispatch runs
    summary = dispatch_nightly()

    # Then the old set is forgotten (counted, its metric, a log line naming its id), the client's own is kept
    assert summary.token_sets_forgotten == 1 and forgotten(aws, old)
    assert sum(metrics.metric_set["TokenSetsForgotten"]["Value"]) == 1
    assert secrets_of(aws) == {new}
    lines = [json.loads(line) for line in every_log_line.lines[first_line:] if "token set forgotten" in line]
    assert [line["token_set_id"] for line in lines] == [old]


def test_a_relink_through_another_xero_user_leaves_the_old_users_connection_to_the_nightly_which_removes_it(
    aws, xero, api
):
    # Given a client linked through one Xero user, which a colleague relinks through another Xero login
    tenant = xero.create_org("Alpha Ltd")
    xero.admin("POST", f"/orgs/{tenant}/users", json={"userId": "colleague"})
    (client_id,) = link(api, xero, [tenant])["clientIds"]
    old = Client.get("practice-a", client_id).token_set_id
    params = xero.consent(start(api, client_id), [tenant], user_id="colleague")
    assert complete(api, params).body.get("outcome") == "relinked"
    relinked = Client.get("practice-a", client_id)
    # (the link function may not read a token set: the old one keeps the organisation, named by no client)
    assert token_sets_no_client_names() == {old} and connected_users(xero) == {"demo-user", "colleague"}
    age_every_token_set()

    # When the nightly dispatch runs, Xero away at first
    xero.admin("POST", "/faults", json={"path": "/connections", "kind": "503", "count": 1000})
    assert forgotten_count(invoke_dispatch(aws, {"trigger": "nightly"})) == 0
    xero.admin("DELETE", "/faults")
    answer = invoke_dispatch(aws, {"trigger": "nightly"})

    # Then the first user's connection, which no client uses, is removed at Xero and the old token set forgotten;
    # the client syncs through the colleague's
    assert forgotten_count(answer) == 1 and forgotten(aws, old)
    assert connected_users(xero) == {"colleague"} and secrets_of(aws) == {relinked.token_set_id}
    assert api.call("POST", f"/clients/{client_id}/sync").status == 202


def test_token_sets_an_hour_old_that_clients_name_are_kept(aws, xero, api):
    # Given token sets an hour old named by a linked client, by one needing a relink, and by one unlinked whose Xero
    # clean-up is still to do (Xero away through the night)
    linked, refused, unlinked = xero.create_org("Alpha Ltd"), xero.create_org("Beta Ltd"), xero.create_org("Gamma")
    (refused_id,) = link(api, xero, [refused])["clientIds"]
    assert mark_needs_relink(Client.get("practice-a", refused_id).token_set_id, "token_revoked").client_ids
    (unlinked_id,) = link(api, xero, [unlinked])["clientIds"]
    link(api, xero, [linked])
    xero.admin("POST", "/faults", json={"path": "/connections", "kind": "503", "count": 100})
    assert unlink_client("practice-a", unlinked_id).remote_cleanup == "pending"
    named = {c.token_set_id for c in Client.scan()}
    assert len(named) == 3 and named == secrets_of(aws)
    age_every_token_set(timedelta(hours=1, minutes=1))

    # When the nightly dispatch runs
    answer = invoke_dispatch(aws, {"trigger": "nightly"})

    # Then every one is kept
    assert forgotten_count(answer) == 0 and answer["cleanups_pending"] == 1
    assert {ref.token_set_id for ref in TokenSetRef.scan()} == named == secrets_of(aws)
    assert Client.get("practice-a", unlinked_id).cleanup_partition == CLEANUP_PARTITION


def test_a_token_set_no_client_names_is_kept_while_younger_than_an_hour(aws, xero, api):
    # Given a completion killed before its client write 50 minutes ago
    orphan = completion_killed_once_its_token_set_is_written(xero, [xero.create_org("Alpha Ltd")])
    created_ago(orphan, timedelta(minutes=50))
    # When the nightly dispatch runs, it is kept (a completion may be writing its clients)
    assert forgotten_count(invoke_dispatch(aws, {"trigger": "nightly"})) == 0
    assert orphan in secrets_of(aws) and TokenSetRef.count(orphan) == 1


def test_a_set_with_no_organisations_is_forgotten_though_an_unlinked_client_still_names_it(aws, xero, api, monkeypatch):
    # Given a client whose unlink's clean-up took its organisation out of its token set (the set's last) and was
    # killed before deleting the set: the set holds no organisation, and the client still names it, its clean-up
    # pending
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = link(api, xero, [tenant])["clientIds"]
    token_set_id = Client.get("practice-a", client_id).token_set_id
    monkeypatch.setattr(TokenStore, "delete", killed)  # the invocation is killed as it deletes the set
    with pytest.raises(Killed):
        unlink_client("practice-a", client_id)
    monkeypatch.undo()
    client = Client.get("practice-a", client_id)
    assert (client.link_state, client.token_set_id) == (LinkState.UNLINKED.value, token_set_id)
    assert TokenSetRef.get(token_set_id).tenant_ids == set() and token_set_id in secrets_of(aws)
    created_ago(token_set_id, timedelta(hours=2))

    # When the nightly dispatch runs while Xero is away (the clean-up's retry stays pending)
    xero.admin("POST", "/faults", json={"path": "/connections", "kind": "503", "count": 100})
    answer = invoke_dispatch(aws, {"trigger": "nightly"})

    # Then the set is forgotten: a set with no organisation is named by no client it could serve
    assert (forgotten_count(answer), answer["cleanups_pending"]) == (1, 1) and forgotten(aws, token_set_id)
    # And the client's clean-up ends at its next retry, the set gone being nothing left to clean
    xero.admin("DELETE", "/faults")
    assert retry_remote_cleanups() == 0
    cleaned = Client.get("practice-a", client_id)
    assert (cleaned.token_set_id, cleaned.cleanup_partition, cleaned.link_state) == (None, None, "unlinked")


def test_a_set_secrets_manager_fails_to_delete_is_counted_kept_whole_and_forgotten_the_next_night(
    aws, xero, every_log_line
):
    # Given an orphan two hours old (a completion killed before its client write)
    orphan = completion_killed_once_its_token_set_is_written(xero, [xero.create_org("Alpha Ltd")])
    created_ago(orphan, timedelta(hours=2))
    metrics.clear_metrics()
    first_line = len(every_log_line.lines)

    # When Secrets Manager fails its deletion through the night (its secret read first, as stored, for its
    # connections at Xero)
    secret_name = TokenSetRef.get(orphan).secret_name
    stored = aws.session.client("secretsmanager").get_secret_value(SecretId=secret_name)["SecretString"]
    with Stubber(aws_clients.secrets_manager()) as secrets:
        secrets.add_response("get_secret_value", {"Name": secret_name, "SecretString": stored})
        secrets.add_client_error("delete_secret", "InternalServiceError", http_status_code=500)
        summary = dispatch_nightly()

    # Then it is logged by its id and counted, not forgotten, and its ref still names its secret; the next night
    # forgets it
    assert summary.token_sets_forgotten == 0 and sum(metrics.metric_set["TokenSetsNotForgotten"]["Value"]) == 1
    lines = [json.loads(line) for line in every_log_line.lines[first_line:] if "could not be forgotten" in line]
    assert [(line["token_set_id"], line["error"]) for line in lines] == [(orphan, "InternalServiceError")]
    assert TokenSetRef.count(orphan) == 1 and orphan in secrets_of(aws)
    assert dispatch_nightly().token_sets_forgotten == 1 and forgotten(aws, orphan)


def test_orphans_whose_connections_cannot_be_checked_now_are_kept_and_the_others_forgotten(
    aws, xero, monkeypatch, every_log_line
):
    # Given three orphans two hours old: one whose secret is gone from under its ref, one whose refresh is held by
    # another (busy), and one that is fine
    orphans = [completion_killed_once_its_token_set_is_written(xero, [xero.create_org(f"Org {n}")]) for n in range(3)]
    secretless, busy, fine = orphans
    age_every_token_set()
    secrets = aws.session.client("secretsmanager")
    secrets.delete_secret(SecretId=TokenSetRef.get(secretless).secret_name, ForceDeleteWithoutRecovery=True)
    fresh = TokenStore.fresh

    def busy_for_one(self: TokenStore, token_set_id: str, *args, **kwargs):
        if token_set_id == busy:
            raise TokenRefreshBusy()
        return fresh(self, token_set_id, *args, **kwargs)

    monkeypatch.setattr(TokenStore, "fresh", busy_for_one)
    metrics.clear_metrics()
    first_line = len(every_log_line.lines)

    # When the nightly dispatch runs
    summary = dispatch_nightly()

    # Then the busy one is logged, counted and kept whole for the next night; the others are forgotten (nothing
    # reaches Xero through a set with no secret)
    assert summary.token_sets_forgotten == 2 and forgotten(aws, secretless) and forgotten(aws, fine)
    assert sum(metrics.metric_set["TokenSetsNotForgotten"]["Value"]) == 1
    lines = [json.loads(line) for line in every_log_line.lines[first_line:] if "could not be checked" in line]
    assert [(line["token_set_id"], line["error"]) for line in lines] == [(busy, "TokenRefreshBusy")]
    assert TokenSetRef.count(busy) == 1 and busy in secrets_of(aws)
    monkeypatch.undo()
    assert dispatch_nightly().token_sets_forgotten == 1 and forgotten(aws, busy)
