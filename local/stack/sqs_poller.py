"""Lambda's SQS event source mapping, offline: long-polls a queue and hands batches to a function.

As Lambda's poller does: the batch size and ReportBatchItemFailures come from the template's mapping; a record is
deleted only once the function processed it (every record but those in `batchItemFailures`; none when the function
raised, or when it reported a failure it cannot name); the rest return after the visibility timeout, and SQS's
redrive policy moves a message to the dead-letter queue after maxReceiveCount receives.
"""

import base64
import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from local.stack.template import QueueEventSource

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("local.stack.sqs_poller")
LOCAL_CONCURRENCY_CAP = 2
# How long a stop waits in all for the invocations under way to save their work and hand over.
HANDOVER_SECONDS = 30.0
_EVENT_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": [base64.b64encode(v).decode() for v in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return attribute


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda builds from one ReceiveMessage batch."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {name: attributes[name] for name in _EVENT_ATTRIBUTES if name in attributes},
                "messageAttributes": {
                    name: _message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def processed_records(
    records: list[dict[str, Any]], response: Any, report_batch_item_failures: bool
) -> list[dict[str, Any]]:
    """The records Lambda deletes after a successful invocation."""
    if not report_batch_item_failures:
        return records
    failures = (response or {}).get("batchItemFailures") if isinstance(response, dict) else None
    if not failures:
        return records
    ids = {record["messageId"] for record in records}
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in ids:
            return []  # a failure Lambda cannot match to a record fails the whole batch
        failed.add(identifier)
    return [record for record in records if record["messageId"] not in failed]


class QueueWorker:
    """Pollers for one event source mapping: `concurrency` threads, each one invocation at a time."""

    def __init__(
        self,
        source: QueueEventSource,
        sqs: "SQSClient",
        queue_url: str,
        queue_arn: str,
        region: str,
        invoke: Callable[[str, dict[str, Any]], Any],
        concurrency: int | None = None,
        wait_seconds: int = 1,
        visibility_timeout: int | None = None,
    ) -> None:
        self.source = source
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.invoke = invoke
        limit = source.maximum_concurrency or LOCAL_CONCURRENCY_CAP
        self.concurrency = max(1, min(concurrency or LOCAL_CONCURRENCY_CAP, limit))
        self.wait_seconds = wait_seconds
        self.visibility_timeout = visibility_timeout  # None: the queue's own
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._busy = 0
        self._idle = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.invocations = 0
        self.invoking = 0  # invocations under way

    def start(self) -> None:
        for number in range(self.concurrency):
            thread = threading.Thread(target=self._poll, name=f"sqs-{self.source.queue}-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = HANDOVER_SECONDS) -> None:
        """No receive after this; waits up to `timeout` seconds in all for the invocations under way."""
        self._stop.set()
        self._running.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s: an invocation of %s is still under way", thread.name, self.source.function)
        self._threads.clear()

    def pause(self) -> None:
        """No receive after this returns (the receives under way have finished and their batches are processed)."""
        self._running.clear()
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0)

    def resume(self) -> None:
        self._running.set()

    @contextmanager
    def paused(self) -> Any:
        self.pause()
        try:
            yield self
        finally:
            self.resume()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._running.wait()
            if self._stop.is_set():
                return
            with self._idle:
                if not self._running.is_set():
                    continue
                self._busy += 1
            try:
                self._poll_once()
            except (BotoCoreError, ClientError):
                if not self._stop.is_set():
                    log.exception("polling %s failed", self.source.queue)
                    self._stop.wait(1)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def _poll_once(self) -> None:
        received = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.source.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
            **({"VisibilityTimeout": self.visibility_timeout} if self.visibility_timeout is not None else {}),
        )
        messages = received.get("Messages", [])
        if not messages:
            return
        event = sqs_event(messages, self.queue_arn, self.region)
        self.invocations += 1
        self.invoking += 1
        try:
            response = self.invoke(self.source.function, event)
        except Exception:
            log.exception(
                "%s failed: the batch returns to the queue after its visibility timeout", self.source.function
            )
            return
        finally:
            self.invoking -= 1
        done = processed_records(event["Records"], response, self.source.report_batch_item_failures)
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done)],
            )
