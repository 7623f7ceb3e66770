"""A sync's access token: refreshed when Xero says it has expired, even before our clock does; a token set that
cannot be refreshed for now is retried in minutes, never failed (nor its token set lost)."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

from tests.integration.test_token_store import make_stale
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
