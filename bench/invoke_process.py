"""One invocation of a function in a process of its own (the nightly dispatch): its handler loaded as Lambda loads
it, one event, and what it cost: time, peak RSS, every AWS call.

    python -m bench.invoke_process < job.json      (function, event; the stack's environment inherited)
"""

import time

from bench.aws_calls import count_aws_calls
from bench.child import cpu_between, function_runtime, read_job, report, rss_mb, usage


def main() -> None:
    job = read_job()
    aws = count_aws_calls()
    runtime = function_runtime(job["function"])
    rss_before, before = rss_mb(), usage()
    started = time.monotonic()
    result = runtime.invoke(job["event"])
    seconds = time.monotonic() - started
    after = usage()
    report(
        {
            "result": result,
            "seconds": round(seconds, 3),
            "cpuSeconds": cpu_between(before, after),
            "rssBeforeMb": round(rss_before, 1),
            "peakRssMb": after["peakRssMb"],
            "aws": aws.as_json(),
        }
    )


if __name__ == "__main__":
    main()
