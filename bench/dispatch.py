"""The nightly dispatch of many linked clients: as many Client items as a large fleet has, written to DynamoDB Local
the way linking leaves them (linked, in the link-state index's `linked` partition), then the dispatch function
invoked as the schedule invokes it, in a process of its own (bench/invoke_process.py). Its messages go to
bench/sqs_sink.py, which answers as SQS does after SQS's latency and counts them (every client's message must
arrive). Run at two fleet sizes: memory that is flat does not grow between them."""

import uuid
from datetime import UTC, datetime
from typing import Any

from bench.child import parse_result
from bench.settings import Settings
from bench.sqs_sink import SqsSink
from bench.stack import DISPATCH_FUNCTION, BenchStack
from xero_sync.dispatch import SEND_IN_FLIGHT
from xero_sync.ids import client_id_for
from xero_sync.models import Client, LinkState

PRACTICES = 200  # a fleet's clients spread over practices, as the index holds them (one partition for all)


def add_linked_clients(count: int, start: int) -> None:
    now = datetime.now(UTC)
    with Client.batch_write() as batch:
        for number in range(start, start + count):
            practice = f"fleet-practice-{number % PRACTICES}"
            tenant = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fleet-tenant-{number}"))
            batch.save(
                Client(
                    practice_id=practice,
                    client_id=client_id_for(practice, tenant),
                    name=f"Fleet client {number}",
                    tenant_id=tenant,
                    link_state=LinkState.LINKED.value,
                    link_state_key=LinkState.LINKED.value,
                    token_set_id=f"fleet-token-set-{number}",
                    created_at=now,
                    updated_at=now,
                )
            )


def measure_dispatch(bench: BenchStack, settings: Settings, log: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}
    linked = 0
    for size in settings.dispatch_clients:
        add_linked_clients(size - linked, linked)
        linked = size
        job = {"function": bench.function_job(DISPATCH_FUNCTION), "event": {"trigger": "nightly"}}
        with SqsSink(settings.sqs_latency_ms) as sqs:
            environment = {"AWS_ENDPOINT_URL_SQS": sqs.endpoint, "SYNC_QUEUE_URL": f"{sqs.endpoint}/0/bench-dispatch"}
            figures = parse_result(bench.run_child("bench.invoke_process", job, environment, f"dispatch-{size}"))
        results[str(size)] = {
            "clients": size,
            "queued": figures["result"]["queued"],
            "clientsArrived": len(sqs.clients),
            "duplicates": sqs.duplicates,
            "seconds": figures["seconds"],
            "cpuSeconds": figures["cpuSeconds"],
            "sqsLatencyMs": settings.sqs_latency_ms,
            "sendInFlight": SEND_IN_FLIGHT,
            "sqsCalls": figures["aws"]["sqs"],
            "dynamodbCalls": figures["aws"]["dynamodb"]["calls"],
            "rssBeforeMb": figures["rssBeforeMb"],
            "peakRssMb": figures["peakRssMb"],
            "growthMb": round(figures["peakRssMb"] - figures["rssBeforeMb"], 1),
        }
        log(f"dispatch of {size:,} clients: {figures['seconds']} s, SQS {figures['aws']['sqs']}")
    return results
