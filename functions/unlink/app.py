"""Unlink a client from Xero: it stops syncing, its data stays."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from xero_sync import unlinking
from xero_sync.api import ClientIdPath, caller_practice_id, create_resolver, resolve
from xero_sync.limits import limited
from xero_sync.observability import logger, metrics, tracer
from xero_sync.unlinking import UnlinkResult

app = create_resolver()


@app.post("/clients/<clientId>/unlink", **limited())
def unlink(client_id: ClientIdPath) -> UnlinkResult:
    return unlinking.unlink_client(caller_practice_id(app), client_id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
