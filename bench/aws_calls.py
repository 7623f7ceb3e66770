"""What a benchmark process asks of AWS: every call any boto3 or PynamoDB client makes, by service and operation,
the items it writes, and the capacity DynamoDB says each call consumed (DynamoDB Local reports it as DynamoDB does);
and (FunctionCalls) the calls of one function's handler running in this process (the data API's, in the stack).

Both listen to botocore's global history recorder, which every client of every session reports each call to (and
each parsed answer): PynamoDB's connections make a botocore session per thread, out of reach of a session's event
hooks. PynamoDB asks DynamoDB for the consumed capacity of every call; the product calls DynamoDB through it alone."""

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.history import BaseHistoryHandler, get_global_history_recorder

from local.stack import handler_loader

_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


@dataclass
class AwsCalls(BaseHistoryHandler):
    calls: Counter[str] = field(default_factory=Counter)  # "sqs.SendMessageBatch" -> count
    seconds: Counter[str] = field(default_factory=Counter)  # "sqs" -> seconds spent inside its calls (all threads)
    items_written: int = 0  # DynamoDB items put, updated or deleted (a transaction's every write)
    write_units: float = 0.0
    read_units: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _paused: bool = field(default=False, repr=False)
    # Each thread's call in progress: its service, operation, and when it began or last heard back (a retried call
    # is answered more than once).
    _calling: threading.local = field(default_factory=threading.local, repr=False)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Calls made meanwhile (the benchmark's own looks) are not counted."""
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def emit(self, event_type: str, payload: Any, source: str) -> None:
        if event_type == "API_CALL":
            self._calling.call = None
            if not self._paused:
                self._calling.call = (payload["service"], payload["operation"], time.monotonic())
                self._count_call(payload["service"], payload["operation"], payload["params"])
        elif event_type == "PARSED_RESPONSE" and getattr(self._calling, "call", None):
            service, operation, since = self._calling.call
            now = time.monotonic()
            self._calling.call = (service, operation, now)
            self._count_answer(service, operation, payload, now - since)

    def _count_call(self, service: str, operation: str, params: dict[str, Any]) -> None:
        with self.lock:
            self.calls[f"{service}.{operation}"] += 1
            if service != "dynamodb":
                return
            if operation == "BatchWriteItem":
                self.items_written += sum(len(v) for v in params.get("RequestItems", {}).values())
            elif operation == "TransactWriteItems":
                self.items_written += sum(1 for item in params.get("TransactItems", []) if "ConditionCheck" not in item)
            elif operation in _WRITES:
                self.items_written += 1

    def _count_answer(self, service: str, operation: str, response: dict[str, Any], seconds: float) -> None:
        """A refused call (a failed condition, throttling) was still made, and may have consumed capacity."""
        with self.lock:
            self.seconds[service] += seconds
            if service != "dynamodb":
                return
            capacity = response.get("ConsumedCapacity")
            units = sum(
                float(c.get("CapacityUnits", 0)) for c in ([capacity] if isinstance(capacity, dict) else capacity or [])
            )
            if operation in _WRITES:
                self.write_units += units
            else:
                self.read_units += units

    def of(self, service: str) -> dict[str, int]:
        prefix = f"{service}."
        return {name.removeprefix(prefix): n for name, n in sorted(self.calls.items()) if name.startswith(prefix)}

    def as_json(self) -> dict[str, Any]:
        return {
            "dynamodb": {
                "calls": self.of("dynamodb"),
                "itemsWritten": self.items_written,
                "writeUnits": round(self.write_units, 1),
                "readUnits": round(self.read_units, 1),
            },
            "sqs": self.of("sqs"),
            "secretsmanager": self.of("secretsmanager"),
            "secondsInCalls": {service: round(seconds, 2) for service, seconds in sorted(self.seconds.items())},
        }


def count_aws_calls() -> AwsCalls:
    """From now on every AWS call of this process is counted in the returned tally."""
    tally = AwsCalls()
    history = get_global_history_recorder()
    history.add_handler(tally)
    history.enable()
    return tally


class FunctionCalls(BaseHistoryHandler):
    """The AWS calls one function's handler makes in this process (local.stack.handler_loader names the function running
    in a thread), by service and operation."""

    def __init__(self, function: str) -> None:
        self.function = function
        self.calls: Counter[str] = Counter()  # "dynamodb.Query" -> count
        self._lock = threading.Lock()
        self._active = False

    def emit(self, event_type: str, payload: Any, source: str) -> None:
        if self._active and event_type == "API_CALL" and handler_loader.CURRENT_FUNCTION.get() == self.function:
            with self._lock:
                self.calls[f"{payload['service']}.{payload['operation']}"] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.calls)

    @contextmanager
    def counting(self) -> Iterator["FunctionCalls"]:
        history = get_global_history_recorder()
        history.add_handler(self)  # the recorder cannot remove a handler: an inactive one counts nothing
        self._active = True
        history.enable()
        try:
            yield self
        finally:
            self._active = False
            history.disable()
