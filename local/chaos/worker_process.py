"""A queue worker in a process of its own, attached to a running local stack: Lambda's SQS poller for one queue,
with the functions hosted here, so it can die the way a Lambda does (SIGKILL: no `finally`, no last write).

`python -m local worker [--queue SyncQueue] [--kill-at-io N] [--exit-when-idle S] [--concurrency N]
[--visibility-timeout S]` reads the stack's state file (the template's parameters, its physical resources and the
environment it applied) and hosts the functions exactly as the stack does (local.stack.lambda_runtime). `--kill-at-io
N` kills the process with SIGKILL just before its Nth network send (any of them: DynamoDB, SQS, Secrets Manager,
Xero), so a test or the chaos driver can stop a sync between any two I/O steps, reproducibly; `--visibility-timeout S`
brings the messages it took back S seconds after it took them (the queue's own timeout otherwise). Pause the stack's
own poller of that queue first (`OfflineStack.worker_for(q).pause()`), or the two share its messages.

The fault options (`--throttle-writes`, `--fail-secret-writes`, `--duplicate-deliveries`, `--max-delivery-delay`,
`--fault-seed`) make this process's AWS traffic and deliveries misbehave as AWS's do (local/chaos/aws_faults.py).
"""

import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import boto3

from local.chaos.aws_faults import AwsFaults, FaultTally, Redeliveries, WorkerFaults
from local.stack.function_environment import apply_function_environment
from local.stack.lambda_runtime import Functions
from local.stack.sqs_poller import QueueWorker
from local.stack.template import LOCAL_REGION, PhysicalResource, Template

KILLED_EXIT = -signal.SIGKILL


class KillSwitch:
    """SIGKILLs this process just before its `number`th socket send once armed (1 = the first send after)."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.sent = 0
        self.armed = False
        self._lock = threading.Lock()
        original_send, original_sendall = socket.socket.send, socket.socket.sendall
        switch = self

        def send(sock: socket.socket, data: Any, *args: Any) -> int:
            switch._count()
            return original_send(sock, data, *args)

        def sendall(sock: socket.socket, data: Any, *args: Any) -> None:
            switch._count()
            original_sendall(sock, data, *args)

        socket.socket.send = send  # type: ignore[method-assign]
        socket.socket.sendall = sendall  # type: ignore[method-assign]

    def arm(self) -> None:
        self.armed = True

    def _count(self) -> None:
        if not self.armed:
            return
        with self._lock:
            self.sent += 1
            if self.sent >= self.number:
                os.kill(os.getpid(), signal.SIGKILL)


def run_worker(
    state: dict[str, Any],
    queue: str = "SyncQueue",
    kill_at_io: int | None = None,
    exit_when_idle: float | None = None,
    concurrency: int = 1,
    faults: WorkerFaults | None = None,
    visibility_timeout: int | None = None,
) -> int:
    """Polls `queue` and invokes its function until signalled (or idle for `exit_when_idle` seconds); the messages
    it takes stay hidden `visibility_timeout` seconds (the queue's own when None), so a killed worker's come back."""
    faults = faults or WorkerFaults()
    tally = FaultTally()
    if faults.any():
        AwsFaults(faults, tally).install()  # before any client exists: every one of them gets the injections
    environment = dict(state["environment"])
    endpoints = {k: environment.pop(k) for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB") if k in environment}
    apply_function_environment(environment, endpoints)
    template = Template(parameters=state["template_parameters"])
    physical = {name: PhysicalResource(r["ref"], dict(r["attributes"])) for name, r in state["physical"].items()}
    definitions = template.functions(physical)
    source = next(s for s in template.queue_event_sources() if s.queue == queue)
    functions = Functions(
        {source.function: definitions[source.function]},
        {source.function: template.physical_name(source.function)},
        max_environments=concurrency,
    )
    switch = KillSwitch(kill_at_io) if kill_at_io is not None else None

    def invoke(function: str, event: Any) -> Any:
        if switch is not None:
            switch.arm()  # counted from the first invocation on (idle polls before it are not steps of a sync)
        return functions.invoke(function, event)

    sqs = boto3.client("sqs", endpoint_url=endpoints.get("AWS_ENDPOINT_URL"), region_name=LOCAL_REGION)
    queue_url = physical[queue].attributes["QueueUrl"]
    worker = QueueWorker(
        source,
        sqs,
        queue_url,
        physical[queue].attributes["Arn"],
        LOCAL_REGION,
        Redeliveries(sqs, queue_url, faults, tally).around(invoke),
        concurrency=concurrency,
        visibility_timeout=visibility_timeout,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    last_busy = time.monotonic()
    seen = 0
    while not stop.wait(0.5):
        if worker.invocations != seen or worker.invoking:
            seen, last_busy = worker.invocations, time.monotonic()
        elif exit_when_idle is not None and time.monotonic() - last_busy > exit_when_idle:
            break
    functions.expire_invocations()
    worker.stop()
    return 0


def state_of(state_dir: Path) -> dict[str, Any]:
    from local.stack.state_file import read_state

    state = read_state(state_dir)
    if state is None or "physical" not in state:
        raise SystemExit(f"no local stack is running in {state_dir} (start one with `make up`)")
    return state
