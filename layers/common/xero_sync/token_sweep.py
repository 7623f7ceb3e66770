"""The nightly dispatch's safety net for token sets no client names: each holds a live refresh token in its secret,
and nothing else would ever delete it. Two killed calls leave one: a link completion stopped (its Lambda's timeout)
between `TokenStore.create` and its clients' writes, and an organisation's removal that took the set's last one and
was stopped before `TokenStore.delete` (a ref with no organisations).

A token set is forgotten once it is older than ORPHAN_AGE and no client names it. Only the completion that creates a
set ever makes a client name it, within seconds, so an hour on none can start to. "Names" is read, not guessed: for
each organisation in the set's `tenant_ids`, that organisation's client in the set's practice (`client_id_for`),
read consistently; a set with no organisations names none. A client naming a set has its organisation among the
set's, but in one case: an unlinked or deleted client whose clean-up (`unlinking.clean_up_remote`, the purge's end)
has taken its organisation out of the set and has not yet let go of the set (or been purged). That clean-up has done
its work at Xero by then, and reads a set gone meanwhile as nothing left to clean: it ends all the same.

Forgetting is `TokenStore.delete` (the secret without a recovery window, then the ref), never a revocation: Xero ties
connections to the user, and other consents of that user rely on them (docs/link-flow.md). Before it, the set's
connections to its organisations are removed at Xero unless a client uses them (`_disconnect`).
"""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import batched

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DoesNotExist, PynamoDBException

from xero_sync.connections import remove_connection_unless_used
from xero_sync.ids import client_id_for
from xero_sync.models import Client, TokenSetRef
from xero_sync.observability import logger, metrics
from xero_sync.tokens import TokenSetRevoked, TokenStore
from xero_sync.xero_identity import XeroIdentity

ORPHAN_AGE = timedelta(hours=1)
# Token sets whose organisations' clients are read together: a BatchGetItem reads 100 keys, and most sets have one.
SETS_PER_READ = 100


def forget_orphaned_token_sets() -> int:
    """Forgets every token set older than ORPHAN_AGE that no client names; returns how many. One that cannot be
    forgotten now (AWS failing) is logged and counted (TokenSetsNotForgotten), and tried again the next night."""
    cutoff = datetime.now(UTC) - ORPHAN_AGE
    old = TokenSetRef.scan(filter_condition=TokenSetRef.created_at < cutoff, consistent_read=True)
    store: TokenStore | None = None  # made at the first orphan: most nights find none
    forgotten = 0
    for refs in batched(old, SETS_PER_READ, strict=False):
        for ref in _named_by_no_client(refs):
            store = store or TokenStore()
            if ref.tenant_ids and not _disconnect(store, ref):
                metrics.add_metric(name="TokenSetsNotForgotten", unit="Count", value=1)
                continue  # Xero away: kept whole for the next night
            try:
                # Only if its organisations are still among those just read (nothing adds one to a set: belt and
                # braces), checked on a consistent read of the ref before its secret goes.
                deleted = store.delete(ref.token_set_id, only_within=ref.tenant_ids)
            except (ClientError, BotoCoreError, PynamoDBException) as error:
                logger.error(
                    "a token set no client names could not be forgotten",
                    extra={"token_set_id": ref.token_set_id, "error": type(error).__name__},
                )
                metrics.add_metric(name="TokenSetsNotForgotten", unit="Count", value=1)
                continue
            if deleted:
                logger.info("token set forgotten: no client names it", extra={"token_set_id": ref.token_set_id})
                forgotten += 1
    return forgotten


def _disconnect(store: TokenStore, ref: TokenSetRef) -> bool:
    """An orphan's connections to its organisations at Xero go before it, unless a client uses them: those of a
    completion killed before its clients' writes, and the old Xero user's once a relink went through another (the
    link function may not read a token set, and leaves the old one here for this). False when that could not be
    done now (Xero away or answering oddly, the refresh busy or not saved, AWS failing): one set's failure must not
    stop the others' nor the rest of the dispatch."""
    try:
        token_set = store.fresh(ref.token_set_id)
        identity = XeroIdentity()
        for connection in identity.connections(token_set):
            if connection.tenant_id in ref.tenant_ids:
                remove_connection_unless_used(identity, token_set, connection.id, remover=ref.token_set_id)
    except TokenSetRevoked:
        return True  # Xero dropped the consent, and its connections with it
    except DoesNotExist:
        return True  # forgotten meanwhile
    except Exception as failure:
        if isinstance(failure, ClientError) and failure.response["Error"]["Code"] == "ResourceNotFoundException":
            return True  # its secret is gone: nothing reaches Xero through it any more
        logger.warning(
            "an orphaned token set's connections could not be checked at Xero: kept for the next night",
            extra={"token_set_id": ref.token_set_id, "error": type(failure).__name__},
        )
        return False
    return True


def _named_by_no_client(refs: Iterable[TokenSetRef]) -> list[TokenSetRef]:
    """The token sets among `refs` that no client of their organisations names, their clients read consistently in
    BatchGetItems of 100 keys."""
    clients_of = {
        ref.token_set_id: (ref, [(ref.practice_id, client_id_for(ref.practice_id, t)) for t in ref.tenant_ids])
        for ref in refs
    }
    keys = {key for _ref, clients in clients_of.values() for key in clients}
    named = {
        (client.practice_id, client.client_id): client.token_set_id
        for client in Client.batch_get(
            keys, consistent_read=True, attributes_to_get=["practice_id", "client_id", "token_set_id"]
        )
    }
    return [
        ref
        for token_set_id, (ref, clients) in clients_of.items()
        if all(named.get(key) != token_set_id for key in clients)
    ]
