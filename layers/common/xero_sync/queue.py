"""The sync queue: one message per client sync, sent ten to a SendMessageBatch call (several calls at once for
the nightly fan-out)."""

from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import batched
from typing import TYPE_CHECKING

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_none

from xero_sync import aws_clients
from xero_sync.config import get_settings
from xero_sync.observability import logger
from xero_sync.schemas import SyncMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SQS_BATCH_LIMIT = 10
# Entries SQS reports as failed through no fault of ours (throttling, internal errors) are sent again this often.
_RESEND_ATTEMPTS = 3


class SyncQueue:
    def __init__(self, queue_url: str | None = None, sqs: "SQSClient | None" = None) -> None:
        self._queue_url = queue_url or get_settings().sync_queue_url
        self._sqs = sqs or aws_clients.sqs()

    def send(self, messages: Iterable[SyncMessage], delay_seconds: int = 0, in_flight: int = 1) -> list[SyncMessage]:
        """Sends every message, `in_flight` SendMessageBatch calls at a time; returns those SQS would not take (empty
        when all were queued). `messages` is read in the calling thread, a few batches ahead of the calls, so a long
        stream (the nightly fan-out reads the index as it goes) never sits in memory whole."""
        batches = (list(batch) for batch in batched(messages, SQS_BATCH_LIMIT, strict=False))
        if in_flight <= 1:
            return [message for batch in batches for message in self._send_batch(batch, delay_seconds)]
        unsent: list[SyncMessage] = []
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="sqs-send") as pool:
            pending: deque[Future[list[SyncMessage]]] = deque()
            for batch in batches:
                if len(pending) >= 2 * in_flight:
                    unsent.extend(pending.popleft().result())
                pending.append(pool.submit(self._unsent, batch, delay_seconds))
            for future in pending:
                unsent.extend(future.result())
        return unsent

    def _unsent(self, batch: list[SyncMessage], delay_seconds: int) -> list[SyncMessage]:
        return self._send_batch(batch, delay_seconds)

    def _send_batch(self, batch: list[SyncMessage], delay_seconds: int) -> list[SyncMessage]:
        """Sends one batch; entries SQS failed through no fault of ours are sent again at once, a few times."""
        pending = dict(enumerate(batch))
        refused: list[SyncMessage] = []

        def send_pending() -> dict[int, SyncMessage]:
            response = self._sqs.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(key), "MessageBody": message.model_dump_json(), "DelaySeconds": delay_seconds}
                    for key, message in pending.items()
                ],
            )
            failed = response.get("Failed", [])
            for f in failed:
                if f.get("SenderFault"):
                    logger.error("sync message refused by SQS", extra={"code": f.get("Code")})
                    refused.append(pending[int(f["Id"])])
            retryable = {int(f["Id"]) for f in failed if not f.get("SenderFault")}
            for key in set(pending) - retryable:
                del pending[key]
            return pending

        Retrying(
            retry=retry_if_result(bool),
            stop=stop_after_attempt(_RESEND_ATTEMPTS),
            wait=wait_none(),
            retry_error_callback=lambda state: None,  # what is still pending is returned as unsent
        )(send_pending)
        return [*refused, *pending.values()]
