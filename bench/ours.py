"""Our sync of one organisation: the run queued through the API, processed in a child process (bench/sync_process.py)
with the engine told how long the emulator's minute lasts, and its figures joined with the emulator's own count of
the calls that reached the organisation."""

from typing import Any

from bench.child import parse_result
from bench.limits import call_figures
from bench.settings import Settings
from bench.stack import BenchStack, Org
from local.stack.function_environment import paced_to_emulator


def engine_environment(scale: float, limits: bool = True) -> dict[str, str]:
    if not limits:  # the engine's own cost: nothing to pace against
        return {"XERO_CALLS_PER_MINUTE": str(10**9), "XERO_MINUTE_SECONDS": "60"}
    return paced_to_emulator(scale)


def run_ours(
    bench: BenchStack, org: Org, client_id: str, run_id: str, settings: Settings, label: str, limits: bool = True
) -> dict[str, Any]:
    scale = settings.scale(org.size) if limits else 1.0
    bench.configure_xero(settings.latency_ms if limits else 0, scale, limits)
    bench.clear_stats()
    stdout = bench.run_child(
        "bench.sync_process", bench.sync_job(client_id, run_id), engine_environment(scale, limits), label
    )
    result = parse_result(stdout)
    if result["status"] != "succeeded":
        raise RuntimeError(f"our {label} sync {result['status']}: {result['errorCode']} {result['errorMessage']}")
    figures = call_figures(bench.stats(org.tenant_id), result["seconds"], settings.latency_seconds, scale)
    counts = result["counts"]
    figures.update(
        {
            "recordsFetched": sum(c["fetched"] for c in counts.values()),
            "recordsWritten": sum(c["inserted"] + c["updated"] + c["deleted"] for c in counts.values()),
            "invocations": result["invocations"],
            "engineApiCalls": result["apiCalls"],
            "peakRssMb": result["peakRssMb"],
            "rssBeforeMb": result["rssBeforeMb"],
            "cpuSeconds": result["cpuSeconds"],
            "aws": result["aws"],
        }
    )
    return figures
