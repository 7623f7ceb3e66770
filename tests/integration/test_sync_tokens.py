"""A sync's access token: refreshed when Xero says it has expired, even before our clock does; a token set that
cannot be refreshed for now is retried in minutes, never failed (nor its token set lost)."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

from tests.integration.test_linking import complete, start
from tests.integration.test_token_store import make_stale
from tests.sync_support import drain, run_to_end, sync
from xero_sync import tokens
from xero_sync.config import forget_environment
from xero_sync.models import Client, RunStatus, SyncRun
from xero_sync.sync_worker import process_sync_message
from xero_sync.tokens import TokenStore
from xero_sync.xero_identity import XeroIdentity


def test_a_sync_meeting_xero_token_endpoint_away_is_retried_in_minutes_not_failed(aws, emu, link, queue_url):
    # Given a linked client whose access token is about to expire, and Xero's token endpoint answering 503 for a
    # while (Xero may have rotated the refresh token on a call whose answer never came back)
    tenant, client, message = link("Offline Token Ltd")
    make_stale(aws, TokenStore(), client.token_set_id)
    emu.fault("503", count=6, path="/connect/token")

    # When the sync runs
    status = process_sync_message(message)

    # Then the run goes back to the queue for a few minutes (Xero's grace for the kept refresh token is 30), instead
    # of failing until the next nightly run, hours after that grace
    run = SyncRun.get(client.client_id, message.run_id)
    assert (status, run.status, run.error_code) == ("queued", "queued", None)
    assert run.resumes_at is not None
    assert datetime.now(UTC) < run.resumes_at <= datetime.now(UTC) + timedelta(minutes=10)
    assert Client.get("practice-a", client.client_id).link_state == "linked"
    # And once Xero answers, the token set the retry will use is still good
    emu.admin("DELETE", "/faults")
    fresh = TokenStore().fresh(client.token_set_id)
    assert tenant in {c.tenant_id for c in XeroIdentity().connections(fresh)}


def test_a_sync_whose_access_token_xero_calls_expired_before_our_clock_does_refreshes_it_and_succeeds(
    aws, emu, link, queue_url
):
    # Given a linked client, and Xero's clock half an hour ahead of ours: every access token we hold has expired
    # for Xero, while ours says each has nearly 30 minutes left
    _tenant, client, message = link("Clock Skew Ltd")
    before = TokenStore().read(client.token_set_id)
    emu.admin("POST", "/clock", json={"advance": 1800})

    # When the sync runs
    status = process_sync_message(message)

    # Then Xero's 401 made it refresh the token set, and the sync imported everything
    run = SyncRun.get(client.client_id, message.run_id)
    assert (status, run.error_code, run.error_message) == ("succeeded", None, None)
    after = TokenStore().read(client.token_set_id)
    assert after.access_token.get_secret_value() != before.access_token.get_secret_value()
    assert run.not_entitled is None  # Journals' 401 was the expired token, not a plan without journals


def test_a_sync_whose_rotated_token_set_cannot_be_saved_is_retried_in_minutes_within_xeros_grace(
    aws, emu, link, queue_url
):
    # Given a linked client whose access token is about to expire, and Secrets Manager refusing every write for a
    # while: Xero rotates the token set, and the new one cannot be saved
    tenant, client, message = link("Unsaved Token Ltd")
    make_stale(aws, TokenStore(), client.token_set_id)
    refused = {"count": 0}

    def refuse(**_):
        refused["count"] += 1
        raise ClientError({"Error": {"Code": "InternalServiceError", "Message": "injected"}}, "PutSecretValue")

    stop_refusing = refuse_secret_writes(refuse)

    # When the sync runs
    status = process_sync_message(message)

    # Then the run goes back to the queue for minutes (the refresh token kept is honoured for 30 of them only),
    # instead of failing until the next nightly run, when that refresh token would be dead
    run = SyncRun.get(client.client_id, message.run_id)
    assert refused["count"] >= tokens.SAVE_ATTEMPTS
    assert (status, run.status, run.error_code, run.waiting_reason) == ("queued", "queued", None, "xero_retry")
    assert datetime.now(UTC) < run.resumes_at <= datetime.now(UTC) + timedelta(minutes=10)
    # And the retry, minutes later by Xero's clock, refreshes with the kept refresh token and goes on
    stop_refusing()
    emu.admin("POST", "/clock", json={"advance": 600})
    assert process_sync_message(message) is RunStatus.SUCCEEDED
    assert Client.get("practice-a", client.client_id).link_state == "linked"
    fresh = TokenStore().fresh(client.token_set_id)
    assert tenant in {c.tenant_id for c in XeroIdentity().connections(fresh)}


def refuse_secret_writes(refuse: Callable[..., Any]) -> Callable[[], None]:
    """Every PutSecretValue of the product's clients goes to `refuse` first (botocore's before-call event on the
    default session they come from; they are made again so that they carry it). Returns what stops it."""
    event = "before-call.secrets-manager.PutSecretValue"
    session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register(event, refuse)
    forget_environment()

    def stop() -> None:
        session.events.unregister(event, refuse)
        forget_environment()

    return stop


def test_a_queued_sync_of_a_client_whose_shared_token_set_xero_refused_ends_and_its_relink_syncs_at_once(
    aws, api, emu, xero, queue_url
):
    # Given two organisations linked in one consent (one token set), both synced, and a Sync Now of Beta queued
    alpha, beta = emu.create_org("Alpha Revoked Ltd"), emu.create_org("Beta Revoked Ltd")
    linked = complete(api, xero.consent(start(api), [alpha, beta])).body
    by_tenant = {Client.get("practice-a", c).tenant_id: c for c in linked["clientIds"]}
    for first in drain(aws.session, queue_url):
        assert run_to_end(aws.session, queue_url, first).status == "succeeded"
    beta_id = by_tenant[beta]
    assert api.call("POST", f"/clients/{beta_id}/sync").status == 202
    (beta_message,) = drain(aws.session, queue_url)
    # And the consent revoked in Xero, the access token about to expire
    token_set_id = Client.get("practice-a", beta_id).token_set_id
    store = TokenStore()
    XeroIdentity().revoke(store.read(token_set_id).refresh_token)
    make_stale(aws, store, token_set_id)
    aws.events()

    # When Alpha's sync meets invalid_grant (both clients now need a relink), then Beta's message arrives
    assert sync(aws.session, queue_url, Client.get("practice-a", by_tenant[alpha])).error_code == "token_revoked"
    assert process_sync_message(beta_message) is None

    # Then Beta's queued run has ended, failed as needing a relink, with its one event, and holds Beta no more
    newest = api.call("GET", f"/clients/{beta_id}/syncs").body["items"][0]
    assert (newest["runId"], newest["status"], newest["errorCode"]) == (beta_message.run_id, "failed", "token_revoked")
    beta_events = [(t, d["errorCode"]) for t, d in aws.events() if d.get("runId") == beta_message.run_id]
    assert beta_events == [("Xero Sync Failed", "token_revoked")]
    assert Client.get("practice-a", beta_id).current_run_id is None
    # And when the practice relinks Beta, the relink's own sync is queued and runs
    assert complete(api, xero.consent(start(api, beta_id), [beta])).status == 200
    (relink_sync,) = drain(aws.session, queue_url)
    assert (relink_sync.client_id, relink_sync.trigger) == (beta_id, "relink")
    assert relink_sync.run_id != beta_message.run_id
    assert run_to_end(aws.session, queue_url, relink_sync).status == "succeeded"
