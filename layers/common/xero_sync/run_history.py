"""A client's sync history, newest first: the runs as the API shows them (GET /clients/{id}/syncs)."""

from pynamodb.attributes import MapAttribute

from xero_sync.clients import load_client
from xero_sync.ids import RUN_ID_PATTERN
from xero_sync.models import SyncRun
from xero_sync.paging import MAX_PAGE_SIZE, decode_cursor, encode_cursor
from xero_sync.schemas import SyncRunPage, SyncRunView


def _run_view(run: SyncRun) -> SyncRunView:
    return SyncRunView.model_validate(
        {
            "run_id": run.run_id,
            "trigger": run.trigger,
            "mode": run.mode,
            "status": run.status,
            "queued_at": run.queued_at,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "resumes_at": run.resumes_at,
            "waiting_reason": run.waiting_reason,
            "counts": run.counts.as_dict() if isinstance(run.counts, MapAttribute) else dict(run.counts or {}),
            "api_calls": run.api_calls,
            "rate_limited": run.rate_limited,
            "waited_seconds": run.waited_seconds,
            "error_code": run.error_code,
            "error_message": run.error_message,
            "unavailable": sorted(run.unavailable or ()),
            "failed_resources": sorted(run.failed_resources or ()),
        }
    )


def list_runs(practice_id: str, client_id: str, limit: int = MAX_PAGE_SIZE, cursor: str | None = None) -> SyncRunPage:
    """A client's sync history, newest first."""
    load_client(practice_id, client_id)  # scopes the history to the caller's practice (404 otherwise)
    start_key = None
    if cursor is not None:
        last_run_id = decode_cursor(cursor, RUN_ID_PATTERN)
        start_key = {"client_id": {"S": client_id}, "run_id": {"S": last_run_id}}
    result = SyncRun.query(client_id, scan_index_forward=False, limit=limit, last_evaluated_key=start_key)
    items = [_run_view(run) for run in result]
    last_key = result.last_evaluated_key
    return SyncRunPage(items=items, next_cursor=encode_cursor(last_key["run_id"]["S"]) if last_key else None)
