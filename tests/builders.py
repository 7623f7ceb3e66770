"""Builders for test data, written through the same PynamoDB models the code uses."""

import uuid
from datetime import UTC, datetime

from xero_sync.ids import client_id_for, new_run_id
from xero_sync.models import Client, LinkState, RunTrigger
from xero_sync.schemas import SyncMessage


def a_client(
    practice_id: str, name: str = "Acme Ltd", state: LinkState = LinkState.LINKED, tenant_id: str | None = None
) -> Client:
    tenant_id = tenant_id or str(uuid.uuid4())
    now = datetime.now(UTC)
    client = Client(
        practice_id=practice_id,
        client_id=client_id_for(practice_id, tenant_id),
        name=name,
        tenant_id=tenant_id,
        link_state=state.value,
        link_state_key=state.value,
        created_at=now,
        updated_at=now,
    )
    client.save()
    return client


def a_client_sorting_first(practice_id: str, others: list[Client]) -> Client:
    """A linked client of the practice whose id sorts before every one of `others`: an index of clients (keyed by
    client id within its partition) gives it first."""
    lowest = min(client.client_id for client in others)
    while client_id_for(practice_id, tenant_id := str(uuid.uuid4())) >= lowest:
        pass
    return a_client(practice_id, tenant_id=tenant_id)


def nightly_message(client: Client) -> SyncMessage:
    """The message the nightly dispatch queues for a client (a fresh run id)."""
    return SyncMessage(
        practice_id=client.practice_id,
        client_id=client.client_id,
        run_id=new_run_id(datetime.now(UTC)),
        trigger=RunTrigger.NIGHTLY,
    )
