"""Client API: list, overview, sync history, delete (the purge that follows runs in the purge function)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from xero_sync import clients, deletion, run_history
from xero_sync.api import ClientIdPath, caller_practice_id, create_resolver, documented, resolve
from xero_sync.limits import limited
from xero_sync.observability import logger, metrics, tracer
from xero_sync.paging import MAX_PAGE_SIZE
from xero_sync.schemas import ClientOverview, ClientPage, SyncRunPage

app = create_resolver()
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page")]
Cursor = Annotated[str | None, Query(min_length=1, max_length=256, description="next_cursor of the previous page")]


@app.get("/clients", **limited())
def list_clients(limit: PageSize = MAX_PAGE_SIZE, cursor: Cursor = None) -> ClientPage:
    return clients.list_clients(caller_practice_id(app), limit, cursor)


@app.get("/clients/<clientId>", responses=documented())
def get_client(client_id: ClientIdPath) -> ClientOverview:
    return clients.client_overview(caller_practice_id(app), client_id)


@app.get("/clients/<clientId>/syncs", responses=documented())
def list_syncs(client_id: ClientIdPath, limit: PageSize = 20, cursor: Cursor = None) -> SyncRunPage:
    return run_history.list_runs(caller_practice_id(app), client_id, limit, cursor)


@app.delete(
    "/clients/<clientId>",
    responses=documented(
        {202: {"description": "Deleted from now on (a 404 everywhere); its data is purged in the background"}}
    ),
)
def delete_client(client_id: ClientIdPath) -> tuple[deletion.DeleteAccepted, int]:
    return deletion.delete_client(caller_practice_id(app), client_id), 202


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
