"""Who uses a Xero connection, and removing one at Xero once nobody does.

A connection belongs to (Xero user, app, organisation): one owner linking the same organisation for two practices
makes one connection, and removing it under one practice's client would cut that client off. Its users are an item
of their own (models.XeroConnection), written in the transaction that links each client (`join`), so a removal
never misses a link made a moment before, as the Clients table's connection index (which lags) could. A removal
claims the item first, and only while nobody uses it, and marks it removed after; a link that would join a connection
being removed, or removed, is refused (ConnectionBeingRemoved): linking again a minute later makes a new connection.
"""

from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from xero_sync.models import Client, LinkState, XeroConnection, condition_failed
from xero_sync.observability import logger
from xero_sync.runs import refused_on_a_condition, retry_cancelled_in_passing
from xero_sync.tables import shared_connection
from xero_sync.xero_identity import TokenSet, XeroIdentity, XeroUnavailable

# How long a removal holds its claim: more than twice its one call to Xero at the longest (a lapsed claim would let a
# link join the connection that call then removes), and the minute a refused link is told to wait.
REMOVAL_CLAIM_SECONDS = 60
REMOVED_MARK_KEPT = timedelta(days=1)  # a completion lists its connections seconds before it joins them


class ConnectionBeingRemoved(Exception):
    """A link would have joined a connection whose removal at Xero is under way, or done."""


class RemovalUnderWay(XeroUnavailable):
    """Another removal of the connection holds it, its outcome not known yet: tried again later, as when Xero is
    away."""


def user_key(client: Client) -> str:
    return f"{client.practice_id}#{client.client_id}"


def join(transaction: TransactWrite, client: Client, connection_id: str) -> None:
    """Adds to `transaction` the client joining the connection's users, refused while another's removal holds it or
    once it is removed. The client's own clean-up's claim does not hold its relink back: Xero answering that removal
    too late at worst leaves the client needing a relink, as it did before it unlinked."""
    claim = XeroConnection.removal_claimed_until
    not_being_removed = (
        claim.does_not_exist() | (claim < datetime.now(UTC)) | (XeroConnection.removal_claimed_by == user_key(client))
    )
    transaction.update(
        XeroConnection(connection_id=connection_id),
        actions=[XeroConnection.users.add({user_key(client)})],
        condition=not_being_removed & XeroConnection.removed_at.does_not_exist(),
    )


def leave(transaction: TransactWrite, client: Client, connection_id: str) -> None:
    """Adds to `transaction` the client leaving the connection's users (a relink through another Xero user)."""
    transaction.update(
        XeroConnection(connection_id=connection_id), actions=[XeroConnection.users.delete({user_key(client)})]
    )


@retry_cancelled_in_passing
def leave_unlinked(client: Client) -> bool:
    """An unlinked or deleted client leaves its connection's users, only while it still is unlinked and names the
    connection: a relink meanwhile joined it again. False when the client was relinked or is gone."""
    connection_id = client.connection_id
    if connection_id is None:
        return True
    try:
        with TransactWrite(connection=shared_connection()) as transaction:
            transaction.condition_check(
                Client,
                client.practice_id,
                client.client_id,
                condition=(Client.link_state == LinkState.UNLINKED.value) & (Client.connection_id == connection_id),
            )
            leave(transaction, client, connection_id)
    except TransactWriteError as error:
        if not refused_on_a_condition(error):
            raise
        return False
    return True


def remove_connection_unless_used(
    identity: XeroIdentity, token_set: TokenSet, connection_id: str, remover: str
) -> bool:
    """Removes a connection at Xero when no client uses it. True when it was removed (or already gone); False when a
    client uses it. Raises RemovalUnderWay while another remover's claim holds it (`remover` names this one: a
    retry of its own removal takes its claim over)."""
    if users := _clients_named_by_index(connection_id):
        logger.info("Xero connection kept: another client uses it", extra={"clients": len(users)})
        return False
    claimed_until = _claim_removal(connection_id, remover)
    if claimed_until is None:
        logger.info("Xero connection kept: a client uses it")
        return False
    # Should Xero fail, the claim is left to lapse: a call that timed out may still have removed the connection.
    identity.delete_connection(token_set, connection_id)
    _mark_removed(connection_id, claimed_until)
    return True


def _claim_removal(connection_id: str, remover: str) -> datetime | None:
    """Claims the connection's removal while it has no user and no other remover holds it; returns until when, or
    None when a client uses it."""
    now = datetime.now(UTC)
    until = now + timedelta(seconds=REMOVAL_CLAIM_SECONDS)
    claim = XeroConnection.removal_claimed_until
    try:
        XeroConnection(connection_id=connection_id).update(
            actions=[claim.set(until), XeroConnection.removal_claimed_by.set(remover)],
            condition=XeroConnection.users.does_not_exist()
            & (claim.does_not_exist() | (claim < now) | (XeroConnection.removal_claimed_by == remover)),
        )
    except UpdateError as error:
        if not condition_failed(error):
            raise
        if XeroConnection.get(connection_id, consistent_read=True).users:
            return None
        raise RemovalUnderWay("another removal of the connection is under way") from None
    return until


def _mark_removed(connection_id: str, claimed_until: datetime) -> None:
    """The removed connection stays marked for a day (then DynamoDB's TTL removes it): no link joins it again."""
    now = datetime.now(UTC)
    try:
        XeroConnection(connection_id=connection_id).update(
            actions=[
                XeroConnection.removed_at.set(now),
                XeroConnection.expires_at.set(now + REMOVED_MARK_KEPT),
                XeroConnection.removal_claimed_until.remove(),
                XeroConnection.removal_claimed_by.remove(),
            ],
            condition=(XeroConnection.removal_claimed_until == claimed_until) & XeroConnection.users.does_not_exist(),
        )
    except UpdateError as error:
        if not condition_failed(error):
            raise
        # A client joined once the claim had lapsed: its first sync finds the connection gone (needs a relink).
        logger.error("a Xero connection's removal outlasted its claim")


def _clients_named_by_index(connection_id: str) -> set[tuple[str, str]]:
    """The clients that name the connection in the Clients table and are not unlinked, found through its connection
    index: clients linked before connections had users of their own (XeroConnection) are known only there. Each is
    read again, consistently, as the index lags."""
    users = set()
    for key in Client.by_connection.query(connection_id):
        try:
            client = Client.get(key.practice_id, key.client_id, consistent_read=True)
        except DoesNotExist:
            continue
        if client.connection_id == connection_id and client.link_state != LinkState.UNLINKED.value:
            users.add((client.practice_id, client.client_id))
    return users
