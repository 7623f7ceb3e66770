"""The plumbing of a benchmark child process: its job arrives as JSON on stdin, its figures leave as one JSON line
on stdout, and what it cost the machine (peak RSS, CPU) comes from the kernel's own accounting of this process."""

import json
import resource
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.stack.lambda_runtime import FunctionRuntime

RESULT_PREFIX = "BENCH-RESULT "


def read_job() -> dict[str, Any]:
    job: dict[str, Any] = json.loads(sys.stdin.read())
    return job


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    """Resident memory now (VmRSS), in MB."""
    return _status_mb("VmRSS")


def usage() -> dict[str, float]:
    """Peak RSS and CPU seconds so far. The peak is VmHWM, the high-water mark of this process image: getrusage's
    ru_maxrss would not do, as Linux carries the parent's peak over fork and exec (a child of a parent holding a
    large emulated organisation would report the parent's memory)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {"peakRssMb": round(_status_mb("VmHWM"), 1), "userSeconds": own.ru_utime, "systemSeconds": own.ru_stime}


def report(figures: dict[str, Any]) -> None:
    """The one line the parent reads (anything else on stdout, a stray print or log line, is ignored)."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(figures, default=str) + "\n")
    sys.stdout.flush()


def parse_result(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
            return result
    raise RuntimeError("the benchmark child process reported nothing")


def cpu_between(before: dict[str, float], after: dict[str, float]) -> float:
    spent = after["userSeconds"] + after["systemSeconds"] - before["userSeconds"] - before["systemSeconds"]
    return round(spent, 3)


def function_runtime(spec: dict[str, Any]) -> "FunctionRuntime":
    """The function the job names, as local/stack/lambda_runtime.py runs it (its handler module loaded as Lambda loads
    it), warmed: the cold start's imports happen before anything is measured, and count in the RSS baseline."""
    from local.stack.lambda_runtime import FunctionRuntime
    from local.stack.template import Function

    function = Function(
        spec["logical_id"], Path(spec["code_dir"]), spec["handler"], spec["timeout"], spec["memory_mb"], {}
    )
    runtime = FunctionRuntime(function, spec["physical_name"], max_environments=1)
    runtime.warm()
    return runtime
