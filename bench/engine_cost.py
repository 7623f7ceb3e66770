"""The engine's own cost, with Xero out of the way (no latency, limits far above the calls): how fast it turns an
organisation's records into DynamoDB items, in records per second of wall time and CPU seconds per 1,000 records of
the sync process; DynamoDB Local's own CPU is measured beside it (the Xero emulator shares the parent process and is
not counted)."""

import os
from pathlib import Path
from typing import Any

from bench.ours import run_ours
from bench.settings import Settings
from bench.stack import BenchStack


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process so far (/proc/<pid>/stat, in clock ticks)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_engine(bench: BenchStack, size: str, settings: Settings, log: Any) -> dict[str, Any]:
    org = bench.create_org(size, seed="bench")  # the organisation measured above (the emulator hands it back)
    client_id, run_id = bench.link(f"bench-engine-{size}", org.tenant_id)
    dynamodb_before = process_cpu_seconds(bench.stack.dynamodb.pid)
    figures = run_ours(bench, org, client_id, run_id, settings, f"{size}-engine", limits=False)
    dynamodb_cpu = process_cpu_seconds(bench.stack.dynamodb.pid) - dynamodb_before
    records = figures["recordsFetched"]
    result = {
        "records": records,
        "calls": figures["calls"],
        "seconds": figures["seconds"],
        "recordsPerSecond": round(records / figures["seconds"]),
        "cpuSeconds": figures["cpuSeconds"],
        "cpuSecondsPer1000Records": round(figures["cpuSeconds"] / records * 1000, 3),
        "dynamodbLocalCpuSeconds": round(dynamodb_cpu, 2),
        "peakRssMb": figures["peakRssMb"],
        "dynamodbWriteUnits": figures["aws"]["dynamodb"]["writeUnits"],
    }
    log(
        f"engine cost ({size}): {result['recordsPerSecond']} records/s, {result['cpuSecondsPer1000Records']} CPU s/1000"
    )
    return result
