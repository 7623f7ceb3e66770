"""Unlink a client from Xero: it stops syncing, its data stays."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from xero_sync import linking
from xero_sync.api import caller_practice_id, create_resolver, resolve
from xero_sync.ids import CLIENT_ID_PATTERN
from xero_sync.linking import UnlinkResult
from xero_sync.observability import logger, metrics, tracer

app = create_resolver()


@app.post("/clients/<client_id>/unlink")
def unlink(client_id: Annotated[str, Path(pattern=CLIENT_ID_PATTERN)]) -> UnlinkResult:
    return linking.unlink_client(caller_practice_id(app), client_id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
