"""Sync worker: takes sync messages from the queue (partial batch failures go back for redelivery), and a direct
invocation for console reruns: {"clientId": "...", "mode": "incremental" | "full"}."""

from collections.abc import Callable, Iterable
from typing import Any, Literal

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError

from xero_sync.clients import practice_of
from xero_sync.errors import ApiError, ClientNotFound
from xero_sync.models import RunTrigger
from xero_sync.observability import logger, metrics, tracer
from xero_sync.queue import SyncQueue
from xero_sync.schemas import SyncMessage
from xero_sync.sync_requests import request_sync
from xero_sync.sync_worker import process_sync_message


class SyncRecord(SqsRecordModel):
    body: Json[SyncMessage]  # type: ignore[assignment]


class ConsoleRerun(BaseModel):
    """A rerun started from the Lambda console or the CLI."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    client_id: str = Field(alias="clientId", min_length=36, max_length=36)
    mode: Literal["incremental", "full"] = "incremental"


class _RunHere(SyncQueue):
    """Takes request_sync's message instead of queueing it: a console rerun runs in this invocation."""

    def __init__(self) -> None:
        self.taken: list[SyncMessage] = []

    def send(self, messages: Iterable[SyncMessage], delay_seconds: int = 0) -> list[SyncMessage]:
        self.taken.extend(messages)
        return []


processor = BatchProcessor(event_type=EventType.SQS, model=SyncRecord)


def record_handler(record: SyncRecord, lambda_context: LambdaContext | None = None) -> None:
    process_sync_message(record.body, remaining_seconds=_remaining(lambda_context) if lambda_context else None)


def _remaining(context: LambdaContext) -> Callable[[], float]:
    return lambda: context.get_remaining_time_in_millis() / 1000


def console_rerun(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Claims a run of the client (as Sync Now does) and runs it in this invocation (continuations, if any, go
    through the queue); the practice is found by the client-id index."""
    try:
        rerun = ConsoleRerun.model_validate(event)
    except ValidationError as error:
        return {"error": "bad_request", "message": error.errors(include_url=False, include_input=False)}
    here = _RunHere()
    try:
        practice_id = practice_of(rerun.client_id)
        accepted = request_sync(practice_id, rerun.client_id, RunTrigger.CONSOLE, mode=rerun.mode, queue=here)
    except ClientNotFound:
        return {"error": ClientNotFound.code, "message": "no such client"}
    except ApiError as error:
        return {"error": error.code, "message": error.message}
    if not here.taken:  # a run was already queued or running: it goes on where it is
        return {"clientId": rerun.client_id, "runId": accepted.run_id, "status": accepted.status.value}
    status = process_sync_message(here.taken[0], remaining_seconds=_remaining(context))
    return {"clientId": rerun.client_id, "runId": accepted.run_id, "status": status.value if status else "dropped"}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" not in event:
        return console_rerun(event, context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
