"""Sync Now (HTTP API): queues a sync of one client, or answers with the run already queued or running."""

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from xero_sync import sync_requests
from xero_sync.api import ClientIdPath, caller_practice_id, create_resolver, resolve
from xero_sync.limits import limited
from xero_sync.models import RunTrigger
from xero_sync.observability import logger, metrics, tracer
from xero_sync.schemas import SyncAccepted, SyncNowRequest

app = create_resolver()


@app.post(
    "/clients/<clientId>/sync",
    **limited(
        {202: {"description": "Queued, or already queued or running"}},
        HTTPStatus.CONFLICT,
        HTTPStatus.SERVICE_UNAVAILABLE,
    ),
)
def sync_now(
    client_id: ClientIdPath,
    request: Annotated[SyncNowRequest | None, Body()] = None,
) -> tuple[SyncAccepted, int]:
    mode = request.mode if request else "incremental"
    return sync_requests.request_sync(caller_practice_id(app), client_id, RunTrigger.MANUAL, mode), 202


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
