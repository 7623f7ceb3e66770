"""Linking clients with Xero: start the authorisation and complete it for the user who started it (a new client, or
a relink). A link's end (unlink, needs relink) is `unlinking`. Tokens go through the token store only.

The flow (docs/link-flow.md): the front end starts a link (a state bound to the caller's practice and user), sends
the user to Xero, and Xero sends the browser back to the front end's callback page; that page hands `{state, code}`
to `complete_link` with the user's JWT. Only the user who started it can complete it: anyone else's completion
leaves the state and the code untouched.
"""

import contextlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Literal

from pydantic import Field
from pynamodb.exceptions import DeleteError, DoesNotExist, TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from xero_sync.clients import load_client
from xero_sync.connections import ConnectionBeingRemoved, join, leave, remove_connection_unless_used
from xero_sync.errors import LinkNotCompleted, SyncNotQueued
from xero_sync.events import link_changed, publish
from xero_sync.ids import client_id_for
from xero_sync.models import (
    Client,
    LinkState,
    OAuthState,
    RunTrigger,
)
from xero_sync.observability import logger, metrics
from xero_sync.runs import refused_parts, retry_cancelled_in_passing
from xero_sync.schemas import ApiModel, SyncMode
from xero_sync.sync_requests import request_sync
from xero_sync.tables import shared_connection
from xero_sync.tokens import TokenStore
from xero_sync.xero_identity import (
    Connection,
    TokenSet,
    UnexpectedXeroAnswer,
    XeroAuthError,
    XeroIdentity,
    XeroUnavailable,
    new_code_verifier,
)

STATE_TTL = timedelta(minutes=10)
# What start_link issues (secrets.token_urlsafe(32)); anything else is refused before any lookup (a key DynamoDB
# would refuse, over 2,048 bytes, must not be a 500).
STATE_PATTERN = r"^[A-Za-z0-9_-]{16,128}$"
_STATE = re.compile(STATE_PATTERN)

# Why a completion linked nothing: the code the front end switches on, its status, and the one message users see.
REFUSALS: dict[str, tuple[HTTPStatus, str]] = {
    "invalid_state": (HTTPStatus.BAD_REQUEST, "This link has expired or was already used. Start linking again."),
    "state_mismatch": (
        HTTPStatus.FORBIDDEN,
        "This link was started by someone else. Start linking again from your own account.",
    ),
    "access_denied": (HTTPStatus.BAD_REQUEST, "Access to Xero was not allowed."),
    "xero_error": (HTTPStatus.BAD_REQUEST, "Xero could not complete the authorisation. Start linking again."),
    "missing_code": (HTTPStatus.BAD_REQUEST, "Xero sent no authorisation code. Start linking again."),
    "exchange_failed": (HTTPStatus.BAD_REQUEST, "Xero did not accept the authorisation. Start linking again."),
    "xero_unavailable": (HTTPStatus.SERVICE_UNAVAILABLE, "Xero could not be reached. Try again in a few minutes."),
    "no_organisation": (HTTPStatus.BAD_REQUEST, "No Xero organisation was chosen."),
    "wrong_organisation": (
        HTTPStatus.CONFLICT,
        "The organisation chosen in Xero is not this client's. Relink and choose its own.",
    ),
    "client_being_deleted": (
        HTTPStatus.CONFLICT,
        "This organisation's client is being deleted. Link it again once the deletion has finished.",
    ),
    "connection_being_removed": (
        HTTPStatus.CONFLICT,
        "Xero was removing this organisation's connection as you linked it. Link it again in a minute.",
    ),
}


class LinkStarted(ApiModel):
    authorize_url: str
    expires_at: datetime


class LinkCompletion(ApiModel):
    """What Xero put in the callback page's query string, as the front end found it."""

    state: str = Field(min_length=1, max_length=256)
    code: str | None = Field(default=None, min_length=1, max_length=2048)
    error: str | None = Field(default=None, min_length=1, max_length=256)


class LinkOutcome(ApiModel):
    """A completed link. Never a token."""

    outcome: Literal["linked", "relinked"]
    code: Literal["linked", "relinked"]
    message: str
    client_ids: list[str] = Field(default_factory=list)


def refused(code: str) -> LinkNotCompleted:
    status, message = REFUSALS[code]
    logger.info("link not completed", extra={"code": code})
    return LinkNotCompleted(status, code, message)


# --- starting -------------------------------------------------------------------------------------------------------
def start_link(practice_id: str, user_id: str, target_client_id: str | None = None) -> LinkStarted:
    """A Xero authorisation URL bound to a single-use state (practice, user, target client, PKCE verifier)."""
    if target_client_id is not None:
        load_client(practice_id, target_client_id)  # relinking someone else's client is a 404
    now = datetime.now(UTC)
    state = secrets.token_urlsafe(32)
    verifier = new_code_verifier()
    OAuthState(
        state=state,
        practice_id=practice_id,
        user_id=user_id,
        target_client_id=target_client_id,
        code_verifier=verifier,
        created_at=now,
        expires_at=now + STATE_TTL,
    ).save(condition=OAuthState.state.does_not_exist())
    return LinkStarted(authorize_url=XeroIdentity().authorization_url(state, verifier), expires_at=now + STATE_TTL)


def _take_state(state: str, practice_id: str, user_id: str) -> OAuthState:
    """The caller's own pending authorisation, removed so it can never be used twice. Another user's (of any
    practice) is refused and left as it is, for its owner to complete; an unknown, used or expired one is refused."""
    if not _STATE.fullmatch(state):
        raise refused("invalid_state")
    try:
        pending = OAuthState.get(state, consistent_read=True)
    except DoesNotExist:
        raise refused("invalid_state") from None
    if (pending.practice_id, pending.user_id) != (practice_id, user_id):
        logger.warning("a link completion by someone other than the user who started it was refused")
        raise refused("state_mismatch")
    try:
        pending.delete(condition=OAuthState.state.exists())
    except DeleteError:
        raise refused("invalid_state") from None  # a concurrent completion took it first
    if pending.expires_at <= datetime.now(UTC):  # TTL deletion can lag by hours
        raise refused("invalid_state")
    return pending


# --- completing -----------------------------------------------------------------------------------------------------
def complete_link(practice_id: str, user_id: str, completion: LinkCompletion) -> LinkOutcome:
    """Links what the caller chose in Xero, if the state is the caller's own; raises LinkNotCompleted otherwise.
    The code is exchanged only once the state is proven the caller's."""
    pending = _take_state(completion.state, practice_id, user_id)
    if completion.error:
        logger.info("Xero sent the user back with an error", extra={"xero_error": completion.error[:64]})
        raise refused("access_denied" if completion.error == "access_denied" else "xero_error")
    if not completion.code:
        raise refused("missing_code")
    identity = XeroIdentity()
    try:
        token_set = identity.exchange_code(completion.code, pending.code_verifier)
        connections = [
            c for c in identity.connections(token_set, token_set.auth_event_id()) if c.tenant_type == "ORGANISATION"
        ]
    except (XeroAuthError, UnexpectedXeroAnswer) as failure:
        # Refused, or answered unlike Xero (no JWT, no authentication event, a body of the wrong shape): fail closed.
        logger.warning("Xero code exchange failed", extra={"error": type(failure).__name__, "detail": str(failure)})
        raise refused("exchange_failed") from None
    except XeroUnavailable as failure:
        logger.warning("Xero unavailable during the code exchange", extra={"error": type(failure).__name__})
        raise refused("xero_unavailable") from None
    if not connections:
        raise refused("no_organisation")
    if pending.target_client_id:
        return _relink(pending, identity, token_set, connections)
    return _add(pending, token_set, connections)


def _queue_first_sync(practice_id: str, client: Client, trigger: RunTrigger) -> None:
    """A client never synced gets its initial import; one relinked after syncing, the changes since. The link stands
    even when the queue does not take the sync: the run shows that it failed, and Sync Now or the nightly run syncs
    the client."""
    mode: SyncMode = "initial" if client.last_successful_sync_at is None else "incremental"
    with contextlib.suppress(SyncNotQueued):
        request_sync(practice_id, client.client_id, trigger, mode)


@dataclass(frozen=True)
class _PreviousLink:
    """What a relinked client used before: its token set and its connection at Xero (either may be gone)."""

    token_set_id: str | None
    connection_id: str | None


class _ClientBeingDeleted(Exception):
    """The client's deletion began after the completion checked it, before its link was written."""


def _being_deleted(practice_id: str, tenant_id: str) -> bool:
    try:
        client = Client.get(practice_id, client_id_for(practice_id, tenant_id), consistent_read=True)
    except DoesNotExist:
        return False
    return client.deleting_since is not None


def _add(pending: OAuthState, token_set: TokenSet, connections: list[Connection]) -> LinkOutcome:
    """Links every organisation of the consent but those whose client is being deleted (never brought back); when
    every one is, nothing is linked."""
    store = TokenStore()
    linkable = [c for c in connections if not _being_deleted(pending.practice_id, c.tenant_id)]
    if not linkable:
        raise refused("client_being_deleted")  # before anything is written
    token_set_id = store.create(pending.practice_id, token_set, {c.tenant_id for c in linkable})
    client_ids = []
    being_removed = 0
    for connection in linkable:
        try:
            client, previous = _link_client(pending.practice_id, connection, token_set_id)
        except (_ClientBeingDeleted, ConnectionBeingRemoved) as skipped:
            being_removed += isinstance(skipped, ConnectionBeingRemoved)
            store.forget_tenant(token_set_id, connection.tenant_id)  # no client will name it for this organisation
            continue
        _leave_previous(previous, connection)
        _queue_first_sync(pending.practice_id, client, RunTrigger.LINK)
        client_ids.append(client.client_id)
    if not client_ids:
        # Its token set went with the last organisation. Linking again soon links those whose connection was going.
        raise refused("connection_being_removed" if being_removed else "client_being_deleted")
    metrics.add_metric(name="ClientsLinked", unit="Count", value=len(client_ids))
    message = f"{len(client_ids)} organisation(s) linked."
    if being_removed:
        message += f" {being_removed} not linked: Xero was removing its connection. Link it again in a minute."
    if being_deleted := len(connections) - len(client_ids) - being_removed:
        message += (
            f" {being_deleted} not linked: a client being deleted can be linked again once its deletion has finished."
        )
    return LinkOutcome(outcome="linked", code="linked", message=message, client_ids=client_ids)


def _relink(
    pending: OAuthState, identity: XeroIdentity, token_set: TokenSet, connections: list[Connection]
) -> LinkOutcome:
    assert pending.target_client_id is not None
    try:
        target: Client | None = Client.get(pending.practice_id, pending.target_client_id, consistent_read=True)
    except DoesNotExist:
        target = None  # deleted and purged while the user was at Xero
    chosen = next((c for c in connections if target and c.tenant_id == target.tenant_id), None)
    _disconnect_strangers(identity, token_set, [c for c in connections if c is not chosen])
    if target is not None and target.deleting_since is not None:
        raise refused("client_being_deleted")
    if target is None or chosen is None:
        raise refused("wrong_organisation")
    store = TokenStore()
    token_set_id = store.create(pending.practice_id, token_set, {chosen.tenant_id})
    try:
        client, previous = _link_client(pending.practice_id, chosen, token_set_id)
    except (_ClientBeingDeleted, ConnectionBeingRemoved) as failure:
        store.forget_tenant(token_set_id, chosen.tenant_id)  # its only organisation: the token set goes
        code = "client_being_deleted" if isinstance(failure, _ClientBeingDeleted) else "connection_being_removed"
        raise refused(code) from None
    _leave_previous(previous, chosen)
    _queue_first_sync(pending.practice_id, client, RunTrigger.RELINK)
    return LinkOutcome(outcome="relinked", code="relinked", message="Relinked.", client_ids=[client.client_id])


def _leave_previous(previous: _PreviousLink | None, connection: Connection) -> None:
    """The consent a relinked client used before gives its organisation up. When another Xero user consented (a new
    connection), the old token set keeps the organisation instead, named by no client: the nightly sweep removes
    the old user's connection at Xero through it, unless a client still uses it (this function may not read a token
    set), then forgets it."""
    if previous is None or previous.token_set_id is None:
        return
    if previous.connection_id not in (None, connection.id):
        logger.info("relinked through another Xero user: the previous connection is left to the nightly sweep")
        return
    TokenStore().forget_tenant(previous.token_set_id, connection.tenant_id)


def _disconnect_strangers(identity: XeroIdentity, token_set: TokenSet, strangers: list[Connection]) -> None:
    """Connections made by a refused consent are removed at Xero again, unless a client relies on them. A
    connection the consent did not make (re-consenting an organisation keeps its connection, only updated) belongs
    to an earlier consent, maybe another practice's, and is left alone."""
    for connection in strangers:
        if not connection.made_by_this_consent():
            continue
        try:
            consent = f"consent:{connection.auth_event_id}"
            remove_connection_unless_used(identity, token_set, connection.id, remover=consent)
        except (XeroAuthError, XeroUnavailable):
            logger.warning("could not remove a refused connection at Xero")


def _organisation_name(connection: Connection) -> str:
    """The organisation's name as Xero shows it, but for lone surrogates (valid in Xero's JSON, not in any text we
    store or answer), which become U+FFFD."""
    return (connection.tenant_name or "Xero organisation").encode("utf-8", "replace").decode()[:512]


def _link_client(practice_id: str, connection: Connection, token_set_id: str) -> tuple[Client, _PreviousLink | None]:
    """Creates the client, or relinks the one that already has this organisation (a new consent for a client
    there was already, through either flow, is a relink), and says which on the bus. Returns the client and what it
    used before (None for a new client)."""
    now = datetime.now(UTC)
    client_id = client_id_for(practice_id, connection.tenant_id)
    linked_fields: list[Action] = [
        Client.name.set(_organisation_name(connection)),
        *Client.link_state_actions(LinkState.LINKED, None),
        Client.token_set_id.set(token_set_id),
        Client.connection_id.set(connection.id),
        Client.cleanup_partition.remove(),
        Client.updated_at.set(now),
    ]
    try:
        existing = Client.get(practice_id, client_id, consistent_read=True)
    except DoesNotExist:
        client = Client(
            practice_id=practice_id,
            client_id=client_id,
            name=_organisation_name(connection),
            tenant_id=connection.tenant_id,
            link_state=LinkState.LINKED.value,
            link_state_key=LinkState.LINKED.value,
            token_set_id=token_set_id,
            connection_id=connection.id,
            created_at=now,
            updated_at=now,
        )
        try:
            _create_linked(client, connection.id)
        except TransactWriteError as error:
            if not _refused_client_write(error):
                raise
            existing = Client.get(practice_id, client_id, consistent_read=True)  # a racing callback created it
        else:
            publish(link_changed(client, "linked"))
            return client, None
    # Conditional on the token set read, so the one it replaces is known for sure: a racing relink's is never left
    # behind, named by no client. Each lost race is another completion's write, and those are few: the loop ends.
    while True:
        previous = _PreviousLink(existing.token_set_id, existing.connection_id)
        try:
            _relink_existing(existing, previous, linked_fields, connection.id)
        except TransactWriteError as error:
            if not _refused_client_write(error):
                raise  # the write may have been applied (an answer lost): the token set is left as it is
            try:
                existing.refresh(consistent_read=True)
            except DoesNotExist:
                raise _ClientBeingDeleted() from None  # deleted and purged since it was read
            if existing.deleting_since is not None:
                raise _ClientBeingDeleted() from None  # its deletion began after the check before the token set
            continue
        break
    try:
        existing.refresh(consistent_read=True)  # a transaction's write leaves the model as it was read
    except DoesNotExist:
        raise _ClientBeingDeleted() from None  # deleted and purged the moment after its relink
    publish(link_changed(existing, "relinked"))
    return existing, previous


# Where each part stands in the transactions below (PynamoDB sends a transaction's puts before its updates, each kind
# in the order added): the client's write first, its joining the connection's users second.
_CLIENT_WRITE, _CONNECTION_JOIN = 0, 1


@retry_cancelled_in_passing
def _create_linked(client: Client, connection_id: str) -> None:
    with TransactWrite(connection=shared_connection()) as transaction:
        transaction.save(client, condition=Client.client_id.does_not_exist())
        join(transaction, client, connection_id)


@retry_cancelled_in_passing
def _relink_existing(
    existing: Client, previous: _PreviousLink, linked_fields: list[Action], connection_id: str
) -> None:
    names_previous = (
        Client.token_set_id == previous.token_set_id if previous.token_set_id else Client.token_set_id.does_not_exist()
    )
    with TransactWrite(connection=shared_connection()) as transaction:
        transaction.update(
            existing,
            actions=linked_fields,
            condition=Client.client_id.exists() & Client.deleting_since.does_not_exist() & names_previous,
        )
        join(transaction, existing, connection_id)
        if previous.connection_id not in (None, connection_id):
            leave(transaction, existing, previous.connection_id)  # relinked through another Xero user


def _refused_client_write(error: TransactWriteError) -> bool:
    """Whether the client's own condition refused the link's transaction (another completion, or a deletion, came
    first). Raises ConnectionBeingRemoved when the connection's did: its removal at Xero is under way, or done."""
    failed = refused_parts(error)
    if _CONNECTION_JOIN in failed:
        raise ConnectionBeingRemoved() from error
    return _CLIENT_WRITE in failed
