"""The purge of deleted clients: one slice of one client's purge per purge-queue message (purge.py). A function of
its own, so that only it holds the table-wide deletes and the token secrets; the read API holds neither."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from xero_sync import deletion, purge
from xero_sync.observability import logger, metrics, tracer


class PurgeRecord(SqsRecordModel):
    body: Json[deletion.PurgeMessage]  # type: ignore[assignment]


processor = BatchProcessor(event_type=EventType.SQS, model=PurgeRecord)


def record_handler(record: PurgeRecord, lambda_context: LambdaContext) -> None:
    purge.process_purge_message(
        record.body, remaining_seconds=lambda: lambda_context.get_remaining_time_in_millis() / 1000
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
