"""One sync run in a process of its own, as Lambda runs it: the sync_client handler gets the run's SQS messages from
local/stack/sqs_poller.py's poller (the event source mapping, offline), continuations included, until the run ends. The
run has this process to itself, so its peak RSS and CPU are the kernel's figures for the process.

    python -m bench.sync_process < job.json      (the job: see bench/ours.py; the stack's environment inherited)
"""

import threading
import time
from typing import Any

from bench.aws_calls import count_aws_calls
from bench.child import cpu_between, function_runtime, read_job, report, rss_mb, usage

FINISHED = ("succeeded", "failed")


def main() -> None:
    job = read_job()
    aws = count_aws_calls()
    import boto3

    from local.stack.sqs_poller import QueueWorker
    from local.stack.template import QueueEventSource
    from xero_sync.models import SyncRun

    runtime = function_runtime(job["function"])
    spans: list[tuple[float, float]] = []
    ended = threading.Event()
    final: dict[str, Any] = {}

    def invoke(_: str, event: dict[str, Any]) -> Any:
        started = time.monotonic()
        try:
            return runtime.invoke(event)
        finally:
            spans.append((started, time.monotonic()))
            with aws.paused():  # the benchmark's own look at the run is not the function's work
                run = SyncRun.get(job["client_id"], job["run_id"], consistent_read=True)
            if run.status in FINISHED:
                final["run"] = run
                ended.set()

    before, rss_before = usage(), rss_mb()
    worker = QueueWorker(
        QueueEventSource(**job["source"]),
        boto3.client("sqs"),
        job["queue_url"],
        job["queue_arn"],
        job["region"],
        invoke,
        concurrency=1,
        wait_seconds=1,
    )
    worker.start()
    finished = ended.wait(job.get("timeout_seconds", 3600))
    worker.stop()
    after = usage()
    run = final.get("run")
    report(
        {
            "status": run.status if run else "timed_out" if not finished else "unknown",
            "errorCode": run.error_code if run else None,
            "errorMessage": run.error_message if run else None,
            "seconds": round(spans[-1][1] - spans[0][0], 3) if spans else None,
            "invocations": len(spans),
            "apiCalls": int(run.api_calls or 0) if run else None,
            "rateLimited": int(run.rate_limited or 0) if run else None,
            "waitedSeconds": float(run.waited_seconds or 0) if run else None,
            "counts": _counts(run.counts) if run else {},
            "rssBeforeMb": round(rss_before, 1),
            "peakRssMb": after["peakRssMb"],
            "cpuSeconds": cpu_between(before, after),
            "aws": aws.as_json(),
        }
    )


def _counts(value: Any) -> dict[str, dict[str, int]]:
    counts = value.as_dict() if hasattr(value, "as_dict") else dict(value or {})
    return {name: {k: int(v) for k, v in per.items()} for name, per in counts.items()}


if __name__ == "__main__":
    main()
