"""Faults a worker process (`python -m local worker`) injects into its own AWS traffic and deliveries, the way AWS
shows them, so the product's own retries and claims are what copes with them (no product code is patched):

- DynamoDB throttling on writes: a seeded fraction of write requests (PutItem, UpdateItem, DeleteItem,
  TransactWriteItems, BatchWriteItem) is answered 400 ProvisionedThroughputExceededException, which botocore retries
  with backoff (and gives up on after its attempts, as with DynamoDB); a seeded fraction of BatchWriteItem calls
  writes only part of its items and returns the rest as UnprocessedItems, which PynamoDB sends again.
- Secret writes that fail: the first N PutSecretValue calls are refused (InternalServiceError, nothing written).
- At-least-once, out-of-order delivery: a seeded fraction of the messages received is sent to the queue again,
  each copy delayed 0..max seconds, as SQS may deliver a message twice and in any order.

Every injection is counted (`FaultTally`) and logged as it happens, so the log of a worker killed later still tells.
"""

import argparse
import json
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("local.chaos.aws_faults")
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
_THROTTLED = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
_UNPROCESSED = "chaos_unprocessed"  # where a partial BatchWriteItem keeps the items it held back (request context)


# Each fault as a `python -m local worker` option: field -> (option, type, help).
_OPTIONS: dict[str, tuple[str, type, str]] = {
    "throttle_writes": ("--throttle-writes", float, "fraction of DynamoDB writes throttled"),
    "fail_secret_writes": ("--fail-secret-writes", int, "refuse the first N PutSecretValue calls"),
    "duplicate_deliveries": ("--duplicate-deliveries", float, "fraction of messages sent again"),
    "max_delivery_delay": ("--max-delivery-delay", int, "seconds a copy is delayed at most"),
    "seed": ("--fault-seed", int, "seeds the draws above"),
}


@dataclass(frozen=True)
class WorkerFaults:
    seed: int = 0
    throttle_writes: float = 0.0  # fraction of DynamoDB write requests answered as throttled
    fail_secret_writes: int = 0  # the first N PutSecretValue calls are refused
    duplicate_deliveries: float = 0.0  # fraction of received messages sent again
    max_delivery_delay: int = 0  # seconds a copy is delayed at most (SQS's DelaySeconds)

    def any(self) -> bool:
        return bool(self.throttle_writes or self.fail_secret_writes or self.duplicate_deliveries)

    def options(self) -> list[str]:
        """These faults as `python -m local worker` options."""
        return [f"{option}={getattr(self, name)}" for name, (option, _, _) in _OPTIONS.items()]

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("faults injected into this process (local/chaos/aws_faults.py)")
        for name, (option, kind, text) in _OPTIONS.items():
            group.add_argument(option, dest=f"fault_{name}", metavar="N", type=kind, default=kind(), help=text)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> "WorkerFaults":
        return cls(**{name: getattr(args, f"fault_{name}") for name in _OPTIONS})


INJECTED = "fault injected: "  # each injection's log line (a worker killed later cannot report a total)


@dataclass
class FaultTally:
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1
        log.info("%s%s", INJECTED, what)


def injected_in(lines: Iterable[str]) -> Counter[str]:
    """What a worker's log says it injected."""
    return Counter(line.split(INJECTED, 1)[1].strip() for line in lines if INJECTED in line)


class _Body:
    """The raw stream botocore reads a response's content from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def _throttled(url: str) -> AWSResponse:
    body = json.dumps(
        {
            "__type": _THROTTLED,
            "message": "The level of configured provisioned throughput for the table "
            "was exceeded (injected by python -m local worker --throttle-writes)",
        }
    ).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "chaos-throttled"}
    return AWSResponse(url, 400, headers, _Body(body))


class AwsFaults:
    """Registers the injections on every botocore client this process creates from now on (boto3's and
    PynamoDB's, which builds its own botocore sessions)."""

    def __init__(self, faults: WorkerFaults, tally: FaultTally) -> None:
        self.faults = faults
        self.tally = tally
        self.random = random.Random(faults.seed)
        self.lock = threading.Lock()
        self.secret_failures_left = faults.fail_secret_writes

    def draw(self, fraction: float) -> bool:
        with self.lock:
            return self.random.random() < fraction

    def install(self) -> Callable[[], None]:
        """From now on every new botocore client gets the injections; returns what undoes that."""
        original = botocore.session.Session.create_client
        faults = self

        def create_client(session: botocore.session.Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
            client = original(session, service_name, *args, **kwargs)
            faults.register(service_name, client.meta.events)
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]

        def uninstall() -> None:
            botocore.session.Session.create_client = original  # type: ignore[method-assign]

        return uninstall

    def register(self, service_name: str, events: Any) -> None:
        if service_name == "dynamodb" and self.faults.throttle_writes:
            for operation in DYNAMODB_WRITES:
                events.register(f"before-send.dynamodb.{operation}", self._maybe_throttle)
            events.register("before-parameter-build.dynamodb.BatchWriteItem", self._maybe_hold_back)
            events.register("after-call.dynamodb.BatchWriteItem", self._report_held_back)
        if service_name == "secretsmanager" and self.faults.fail_secret_writes:
            events.register("before-call.secrets-manager.PutSecretValue", self._maybe_refuse_secret)

    # --- DynamoDB ---------------------------------------------------------------------------------------------------
    def _maybe_throttle(self, request: Any, **kwargs: Any) -> AWSResponse | None:
        if not self.draw(self.faults.throttle_writes):
            return None
        self.tally.add(f"throttled {kwargs.get('event_name', 'write').rsplit('.', 1)[-1]}")
        return _throttled(request.url)

    def _maybe_hold_back(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        """Part of a batch is written, the rest comes back as UnprocessedItems (a throttled partition)."""
        items = [(table, request) for table, requests in params.get("RequestItems", {}).items() for request in requests]
        if len(items) < 2 or not self.draw(self.faults.throttle_writes):
            return
        with self.lock:
            held = set(self.random.sample(range(len(items)), self.random.randint(1, len(items) - 1)))
        kept: dict[str, list[Any]] = {}
        unprocessed: dict[str, list[Any]] = {}
        for position, (table, request) in enumerate(items):
            (unprocessed if position in held else kept).setdefault(table, []).append(request)
        params["RequestItems"] = kept
        context[_UNPROCESSED] = unprocessed
        self.tally.add("batch items held back")

    @staticmethod
    def _report_held_back(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        held = context.pop(_UNPROCESSED, None)
        if not held:
            return
        unprocessed = parsed.setdefault("UnprocessedItems", {})
        for table, requests in held.items():
            unprocessed.setdefault(table, []).extend(requests)

    # --- Secrets Manager --------------------------------------------------------------------------------------------
    def _maybe_refuse_secret(self, **_: Any) -> None:
        with self.lock:
            if self.secret_failures_left <= 0:
                return
            self.secret_failures_left -= 1
        self.tally.add("secret writes refused")
        raise ClientError(
            {"Error": {"Code": "InternalServiceError", "Message": "injected by --fail-secret-writes"}},
            "PutSecretValue",
        )


class Redeliveries:
    """Sends copies of the messages a worker receives back to the queue, some delayed: SQS delivers at least once
    and, on a standard queue, in no particular order."""

    def __init__(self, sqs: "SQSClient", queue_url: str, faults: WorkerFaults, tally: FaultTally) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.faults = faults
        self.tally = tally
        self.random = random.Random(faults.seed + 1)
        self.lock = threading.Lock()

    def around(self, invoke: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
        if not self.faults.duplicate_deliveries:
            return invoke

        def invoke_after_copying(function: str, event: Any) -> Any:
            for record in event.get("Records", []):
                self.maybe_copy(record["body"])
            return invoke(function, event)

        return invoke_after_copying

    def maybe_copy(self, body: str) -> None:
        with self.lock:
            if self.random.random() >= self.faults.duplicate_deliveries:
                return
            delay = self.random.randint(0, self.faults.max_delivery_delay)
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body, DelaySeconds=delay)
        self.tally.add("deliveries duplicated")
