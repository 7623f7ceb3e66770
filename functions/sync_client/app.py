"""Sync worker: takes sync messages from the queue; a message that fails goes back for redelivery (partial batch
failures). An operator reruns a client through the dispatch function: `{"clientIds": [...], "mode": "full"}`."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from xero_sync.observability import logger, metrics, tracer
from xero_sync.schemas import SyncMessage
from xero_sync.sqs_batch import process_sqs_batch
from xero_sync.sync_worker import process_sync_message


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_sqs_batch(event, context, SyncMessage.model_validate_json, process_sync_message)
