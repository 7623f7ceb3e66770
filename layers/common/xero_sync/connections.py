"""Who uses a Xero connection, and removing one at Xero once nobody does.

A connection belongs to (Xero user, app, organisation): one owner linking the same organisation for two practices
makes one connection, and removing it under one practice's client would cut that client off. Its users are an item
of their own (models.XeroConnection), written in the transaction that links each client (`join`), so a removal
never misses a link made a moment before, as the Clients table's connection index (which lags) could. A removal
claims the item first, and only while nobody uses it; a link that would join a connection being removed is refused
(ConnectionBeingRemoved): linking again a moment later makes a new connection.
"""

from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import DeleteError, DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from xero_sync.models import Client, LinkState, XeroConnection, condition_failed
from xero_sync.observability import logger
from xero_sync.runs import refused_on_a_condition, retry_cancelled_in_passing
from xero_sync.tables import shared_connection
from xero_sync.xero_identity import HTTP_TIMEOUT, TokenSet, XeroIdentity

# How long a removal holds its claim: its one call to Xero ends well within it (a lapsed claim would let a link join
# the connection that call then removes), and a removal that died holding it refuses links for no longer.
REMOVAL_CLAIM_SECONDS = 3 * sum(HTTP_TIMEOUT)


class ConnectionBeingRemoved(Exception):
    """A link would have joined a connection whose removal at Xero is under way."""


def user_key(client: Client) -> str:
    return f"{client.practice_id}#{client.client_id}"


def join(transaction: TransactWrite, client: Client, connection_id: str) -> None:
    """Adds to `transaction` the client joining the connection's users, refused while a removal holds it."""
    item = XeroConnection(connection_id=connection_id)
    transaction.update(
        item,
        actions=[XeroConnection.users.add({user_key(client)})],
        condition=XeroConnection.removal_claimed_until.does_not_exist()
        | (XeroConnection.removal_claimed_until < datetime.now(UTC)),
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


def remove_connection_unless_used(identity: XeroIdentity, token_set: TokenSet, connection_id: str) -> bool:
    """Removes a connection at Xero when no client uses it. True when it was removed (or already gone); False when a
    client uses it, or another removal of it is under way."""
    claimed_until = _claim_removal(connection_id)
    if claimed_until is None:
        logger.info("Xero connection kept: a client uses it, or its removal is under way")
        return False
    removed = False
    try:
        if users := _clients_named_by_index(connection_id):
            logger.info("Xero connection kept: another client uses it", extra={"clients": len(users)})
            return False
        identity.delete_connection(token_set, connection_id)
        removed = True
    finally:
        _end_claim(connection_id, claimed_until, removed)
    return True


def _claim_removal(connection_id: str) -> datetime | None:
    """Claims the connection's removal while it has no user and no other removal holds it; returns until when."""
    now = datetime.now(UTC)
    until = now + timedelta(seconds=REMOVAL_CLAIM_SECONDS)
    try:
        XeroConnection(connection_id=connection_id).update(
            actions=[XeroConnection.removal_claimed_until.set(until)],
            condition=XeroConnection.users.does_not_exist()
            & (XeroConnection.removal_claimed_until.does_not_exist() | (XeroConnection.removal_claimed_until < now)),
        )
    except UpdateError as error:
        if condition_failed(error):
            return None  # in use, or another removal holds it
        raise
    return until


def _end_claim(connection_id: str, claimed_until: datetime, removed: bool) -> None:
    """A removed connection's item goes; one kept (in use after all, or Xero failed) is released for links."""
    item = XeroConnection(connection_id=connection_id)
    ours = XeroConnection.removal_claimed_until == claimed_until
    try:
        if removed:
            item.delete(condition=ours)
        else:
            item.update(actions=[XeroConnection.removal_claimed_until.remove()], condition=ours)
    except (DeleteError, UpdateError) as error:
        if not condition_failed(error):
            raise
        logger.warning("a Xero connection's removal outlasted its claim")


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
