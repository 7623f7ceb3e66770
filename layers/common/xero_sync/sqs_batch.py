"""What both queue-driven functions (the sync worker, the purge) do with an SQS event: Powertools' batch processing,
each body parsed into the function's message, a record that fails going back to the queue alone (partial batch
response) while the others are deleted.

Bodies are parsed here rather than by a Powertools parser model: importing those models imports every event source's
(~0.1 s of each cold start). A body that does not parse fails its record alone, as it would with a model."""

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext


def process_sqs_batch[M](
    event: dict[str, Any],
    context: LambdaContext,
    parse: Callable[[str], M],
    process: Callable[[M, Callable[[], float]], object],
) -> PartialItemFailureResponse:
    """Runs `process(message, remaining_seconds)` for each record's parsed body; answers the batch item failures."""

    def record_handler(record: SQSRecord) -> None:
        process(parse(record.body), lambda: context.get_remaining_time_in_millis() / 1000)

    # A processor per batch: it holds the batch's outcomes, and the offline stack runs functions side by side.
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
