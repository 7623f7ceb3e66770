"""Sync worker: takes sync messages from the queue; a message that fails goes back for redelivery (partial batch
failures). An operator reruns a client through the dispatch function: `{"clientIds": [...], "mode": "full"}`."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from xero_sync.observability import logger, metrics, tracer
from xero_sync.schemas import SyncMessage
from xero_sync.sync_worker import process_sync_message


class SyncRecord(SqsRecordModel):
    body: Json[SyncMessage]  # type: ignore[assignment]


processor = BatchProcessor(event_type=EventType.SQS, model=SyncRecord)


def record_handler(record: SyncRecord, lambda_context: LambdaContext) -> None:
    process_sync_message(record.body, remaining_seconds=lambda: lambda_context.get_remaining_time_in_millis() / 1000)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
