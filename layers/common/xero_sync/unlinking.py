"""A client's link ending: unlinked by the practice (it stops syncing at once, its data stays, and Xero's side is
cleaned up now or at the nightly retry), or refused by Xero (it needs a relink). Starting and completing a link is
`linking`; tokens go through the token store only.
"""

import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pynamodb.exceptions import DoesNotExist, UpdateError

from xero_sync.clients import load_client
from xero_sync.connections import leave_unlinked, remove_connection_unless_used, user_key
from xero_sync.errors import run_error_message
from xero_sync.events import link_changed, publish
from xero_sync.ids import client_id_for
from xero_sync.models import CLEANUP_PARTITION, Client, LinkState, TokenSetRef, condition_failed
from xero_sync.observability import logger, metrics
from xero_sync.runs import RunKey, close_current_run, end_stranded_run
from xero_sync.schemas import ApiModel
from xero_sync.tokens import LEASE_SECONDS, TokenRefreshBusy, TokenSaveFailed, TokenSetRevoked, TokenStore
from xero_sync.xero_identity import HTTP_TIMEOUT, XeroAuthError, XeroIdentity, XeroUnavailable


# --- unlinking ------------------------------------------------------------------------------------------------------
class UnlinkResult(ApiModel):
    client_id: str
    link_state: LinkState
    remote_cleanup: Literal["done", "pending", "not_needed"]


# How long an unlink waits on Xero for its clean-up there: its answer must reach the practice within API Gateway's
# 30 s (HTTP APIs end a request there). What Xero has not done by then waits for the nightly retry.
UNLINK_WAITS_FOR_XERO_SECONDS = 15.0


def unlink_client(practice_id: str, client_id: str) -> UnlinkResult:
    """The client stops syncing at once (its data stays); Xero's side is cleaned up now, or later if Xero is away or
    slow."""
    deadline = time.monotonic() + UNLINK_WAITS_FOR_XERO_SECONDS
    client = load_client(practice_id, client_id)
    if client.link_state != LinkState.UNLINKED.value:
        if _mark_unlinked(client):
            publish(link_changed(client, "unlinked"))  # before the run's closure: a consumer learns why it failed first
            close_current_run(client, "client_unlinked")
            done = clean_up_remote(client, deadline)
            return UnlinkResult(
                client_id=client_id, link_state=LinkState.UNLINKED, remote_cleanup="done" if done else "pending"
            )
        client = load_client(practice_id, client_id)  # another request came first: gone (404), or it unlinked
    # Unlinked already: one an earlier unlink could not close (it answered 500) is closed now.
    close_current_run(client, "client_unlinked")
    return UnlinkResult(client_id=client_id, link_state=LinkState.UNLINKED, remote_cleanup="not_needed")


def _mark_unlinked(client: Client) -> bool:
    """Marks the client unlinked unless another request did first, or its deletion began (a write on a purged item
    would create one with keys alone). False when it lost that race."""
    try:
        client.update(
            actions=[
                *Client.link_state_actions(LinkState.UNLINKED, "Unlinked by the practice"),
                Client.cleanup_partition.set(CLEANUP_PARTITION),
                Client.updated_at.set(datetime.now(UTC)),
            ],
            condition=Client.client_id.exists()
            & Client.deleting_since.does_not_exist()
            & (Client.link_state != LinkState.UNLINKED.value),
        )
    except UpdateError as error:
        if not condition_failed(error):
            raise
        return False
    return True


# The longest clean_up_remote waits when Xero answers slowly: another holder's lease on the token set waited out,
# its refresh (retried for half a lease, with one attempt in flight), then three identity calls (delete the
# connection, list the connections, revoke), each up to its connect and read timeouts. The purge's function outlasts
# it (template.yaml); an unlink, behind API Gateway's 30 s, cannot, and stops at its deadline instead.
REMOTE_CLEANUP_LONGEST_SECONDS = (LEASE_SECONDS + 5) + (LEASE_SECONDS / 2 + sum(HTTP_TIMEOUT)) + 3 * sum(HTTP_TIMEOUT)


def clean_up_remote(client: Client, deadline: float | None = None) -> bool:
    """The unlinked client leaves its connection's users; the connection is removed at Xero, and its token set,
    once no client uses them. True when done; False leaves the client marked for the next attempt (the nightly
    dispatch retries them): so does Xero not being done by `deadline` (time.monotonic()), when one is given.

    `client` may be stale (read from an index, or before a relink): it is read again, and a client linked meanwhile
    is left alone, its connection and its new token set in use."""
    try:
        client.refresh(consistent_read=True)
    except DoesNotExist:
        return True  # purged meanwhile: its purge cleaned up
    if client.link_state != LinkState.UNLINKED.value or not leave_unlinked(client):
        return True
    store = TokenStore(identity_factory=lambda: XeroIdentity(deadline=deadline), deadline=deadline)
    token_set_id = client.token_set_id
    try:
        if token_set_id:
            token_set = store.fresh(token_set_id)
            identity = XeroIdentity(deadline=deadline)
            if client.connection_id:
                remove_connection_unless_used(identity, token_set, client.connection_id, remover=user_key(client))

            def revoke_unless_connected() -> None:
                # Revoking would also cut the Xero user's other connections to this app: only when none are left.
                if not identity.connections(token_set):
                    identity.revoke(token_set.refresh_token)

            store.forget_tenant(token_set_id, client.tenant_id, before_delete=revoke_unless_connected)
    except TokenSetRevoked:
        # Xero dropped it: nothing left there to clean. Only this organisation leaves it: the other clients that
        # name it learn at their next sync that they need a relink.
        store.forget_tenant(token_set_id, client.tenant_id)
    except (DoesNotExist, UpdateError) as error:
        if isinstance(error, UpdateError) and not condition_failed(error):
            raise  # DynamoDB failing (the connection's claim, say): the clean-up is not done
        # the token set is gone here already
    except (XeroUnavailable, XeroAuthError, TokenRefreshBusy, TokenSaveFailed) as failure:
        # The unlink itself is done: what is left at Xero waits for the next attempt, as when Xero is away.
        logger.warning("Xero clean-up after unlink postponed", extra={"error": type(failure).__name__})
        return False
    # Purged meanwhile (never re-create it), being deleted (its purge's), or relinked meanwhile (a new token set).
    with contextlib.suppress(UpdateError):
        client.update(
            actions=[Client.cleanup_partition.remove(), Client.token_set_id.remove(), Client.connection_id.remove()],
            condition=Client.client_id.exists()
            & Client.deleting_since.does_not_exist()
            & (Client.link_state == LinkState.UNLINKED.value)
            & (Client.token_set_id == token_set_id if token_set_id else Client.token_set_id.does_not_exist()),
        )
    return True


def retry_remote_cleanups() -> int:
    """Retries the Xero clean-up of clients unlinked while Xero was away; returns how many are still pending. One
    client's clean-up failing in a way not foreseen (a token set's secret gone from under its ref, an answer unlike
    Xero's) is logged and counted, and stays pending: it must not stop the others', nor the rest of the dispatch."""
    pending = 0
    for client in Client.pending_cleanups.query(CLEANUP_PARTITION):
        if client.link_state != LinkState.UNLINKED.value:
            continue
        try:
            done = clean_up_remote(client)
        except Exception as error:
            logger.error(
                "Xero clean-up after unlink failed",
                extra={"client_id": client.client_id, "error": type(error).__name__},
            )
            metrics.add_metric(name="RemoteCleanupsFailed", unit="Count", value=1)
            done = False
        pending += not done
    return pending


# --- needing a relink -----------------------------------------------------------------------------------------------
@dataclass
class RelinkNeeded:
    token_set_id: str
    reason: str
    client_ids: list[str] = field(default_factory=list)


def mark_needs_relink(
    token_set_id: str, error_code: str, tenant_id: str | None = None, refused_run_id: str | None = None
) -> RelinkNeeded:
    """Xero no longer honours a token set (invalid_grant: all its clients) or one organisation's connection (a 403
    for that tenant: that client alone, the others of the consent still sync): they stop syncing, data kept. The
    reason shown is the fixed message of the error's code. A client's queued or deferred run ends failed with that
    code (no worker would take it, and it would hold the client past its relink); the run Xero refused
    (`refused_run_id`) is its worker's to end, and a run running elsewhere its own worker's."""
    reason = run_error_message(error_code)
    result = RelinkNeeded(token_set_id, reason)
    try:
        ref = TokenSetRef.get(token_set_id, consistent_read=True)
    except DoesNotExist:
        return result
    tenants = ref.tenant_ids if tenant_id is None else ref.tenant_ids & {tenant_id}
    for tenant in tenants:
        client = Client(practice_id=ref.practice_id, client_id=client_id_for(ref.practice_id, tenant))
        try:
            client.update(
                actions=[
                    *Client.link_state_actions(LinkState.NEEDS_RELINK, reason),
                    Client.updated_at.set(datetime.now(UTC)),
                ],
                condition=(Client.link_state == LinkState.LINKED.value) & (Client.token_set_id == token_set_id),
            )
        except UpdateError:
            continue  # unlinked meanwhile, or already on a newer token set
        result.client_ids.append(client.client_id)
        publish(link_changed(client, "needs_relink", reason_code=error_code))
        if client.current_run_id and client.current_run_id != refused_run_id:
            end_stranded_run(RunKey(client.practice_id, client.client_id, client.current_run_id), error_code)
    return result
