"""The client API's logic: list a practice's clients, show one. Every read is scoped to the caller's practice."""

from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import MapAttribute
from pynamodb.exceptions import DoesNotExist

from xero_sync.errors import ClientNotFound
from xero_sync.ids import CLIENT_ID_PATTERN
from xero_sync.models import Client, LinkState, RunStatus, SyncRun
from xero_sync.paging import MAX_PAGE_SIZE, decode_cursor, encode_cursor
from xero_sync.record_store import RecordStore
from xero_sync.schemas import (
    ClientOverview,
    ClientPage,
    ClientSummary,
    CurrentRun,
    CurrentRunDetail,
    RunProgress,
    RunWait,
)


def load_client(practice_id: str, client_id: str, consistent: bool = True) -> Client:
    """The practice's own client; anything else (missing, another practice's, or being deleted) is the same
    ClientNotFound: a client is gone for every route and flow from the moment its deletion starts."""
    try:
        client = Client.get(practice_id, client_id, consistent_read=consistent)
    except DoesNotExist:
        raise ClientNotFound() from None
    if client.deleting_since is not None:
        raise ClientNotFound()
    return client


def practice_of(client_id: str) -> str:
    """The practice of a client named by its id alone (console reruns): found through the client-id index."""
    keys = list(Client.by_client_id.query(client_id, limit=2))
    if len(keys) != 1:
        raise ClientNotFound()
    return keys[0].practice_id


def _current_run(client: Client) -> CurrentRun | None:
    """The run holding the client; none when its claim lapsed (its worker died: the next sync takes over)."""
    if not client.has_active_run(datetime.now(UTC)) or client.current_run_status is None:
        return None
    assert client.current_run_id is not None
    return CurrentRun(run_id=client.current_run_id, status=RunStatus(client.current_run_status))


def current_run_detail(client: Client, now: datetime) -> CurrentRunDetail | None:
    """The client's live run with its progress and what it waits on (None when none, or its claim lapsed)."""
    if not client.has_active_run(now) or client.current_run_status is None:
        return None
    assert client.current_run_id is not None
    detail = CurrentRunDetail(run_id=client.current_run_id, status=RunStatus(client.current_run_status))
    try:
        run = SyncRun.get(client.client_id, client.current_run_id)
    except DoesNotExist:
        return detail
    if run.status == RunStatus.RUNNING.value and run.progress is not None:
        raw = run.progress.as_dict() if isinstance(run.progress, MapAttribute) else dict(run.progress)
        detail.progress = RunProgress.model_validate(raw)
        detail.waiting_on = detail.progress.waiting_on
    elif run.waiting_reason and run.resumes_at and run.resumes_at > now:
        detail.waiting_on = RunWait(reason=run.waiting_reason, until=run.resumes_at)
    return detail


def _summary_fields(client: Client) -> dict[str, object]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "tenant_id": client.tenant_id,
        "link_state": LinkState(client.link_state),
        "last_successful_sync_at": client.last_successful_sync_at,
        "current_run": _current_run(client),
    }


def list_clients(practice_id: str, limit: int = MAX_PAGE_SIZE, cursor: str | None = None) -> ClientPage:
    start_key = None
    if cursor is not None:
        last_client_id = decode_cursor(cursor, CLIENT_ID_PATTERN)
        start_key = {"practice_id": {"S": practice_id}, "client_id": {"S": last_client_id}}
    # Clients being deleted are left out (PynamoDB reads on until it has `limit` of the others).
    result = Client.query(
        practice_id, filter_condition=Client.deleting_since.does_not_exist(), limit=limit, last_evaluated_key=start_key
    )
    items = [ClientSummary.model_validate(_summary_fields(client)) for client in result]
    last_key = result.last_evaluated_key
    next_cursor = encode_cursor(last_key["client_id"]["S"]) if last_key else None
    return ClientPage(items=items, next_cursor=next_cursor)


def client_overview(practice_id: str, client_id: str) -> ClientOverview:
    client = load_client(practice_id, client_id)
    return ClientOverview.model_validate(
        {
            **_summary_fields(client),
            "current_run": current_run_detail(client, datetime.now(UTC)),
            "link_state_reason": client.link_state_reason,
            "last_error": client.last_error,
            **_imports(client_id),
        }
    )


def _imports(client_id: str) -> dict[str, dict[str, Any]]:
    """Per resource, from one Query of the client's checkpoints: records stored, when last imported, and since when
    Xero has not offered it."""
    counts: dict[str, int] = {}
    imported: dict[str, datetime] = {}
    unavailable: dict[str, datetime] = {}
    for resource, state in RecordStore(client_id).imports().items():
        if state.records is not None:
            counts[resource] = state.records
        if state.unavailable_since is not None:
            unavailable[resource] = state.unavailable_since
        elif (last_imported_at := state.last_imported_at) is not None:
            imported[resource] = last_imported_at
    return {"record_counts": counts, "last_imported_at": imported, "unavailable_resources": unavailable}
