"""The purge of deleted clients: one slice of one client's purge per purge-queue message (purge.py). A function of
its own, so that only it holds the table-wide deletes and the token secrets; the read API holds neither."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from xero_sync.deletion import PurgeMessage
from xero_sync.observability import logger, metrics, tracer
from xero_sync.purge import process_purge_message
from xero_sync.sqs_batch import process_sqs_batch


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_sqs_batch(event, context, PurgeMessage.model_validate_json, process_purge_message)
