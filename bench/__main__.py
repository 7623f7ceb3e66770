"""python -m bench [--mode quick|full|smoke] — `make bench`: measures, prints the table, writes the JSON and the plot.

quick (the default): the small and medium organisations; full: and the large one; smoke: the tiny one, a small
fleet, a few seconds of each section (CI's guard: tests/bench). docs/benchmark.md describes every figure."""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.settings import DEFAULT_TIME_SCALE, Settings, settings_for
from bench.stack import BENCH_STATE_DIR, SYNC_FUNCTION, BenchStack
from local.stack.template import REPO_ROOT


def meta(settings: Settings) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - whichever git is on PATH
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    ).stdout.strip()
    return {
        "mode": settings.mode,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "commit": commit,
        "latencyMs": settings.latency_ms,
        "timeScale": settings.time_scale,  # for the large organisation; the others run on Xero's real minute
        "tapXero": "2.6.0",
    }


def run(settings: Settings, state_dir: Path, console: Console) -> dict[str, Any]:
    began = time.monotonic()

    def log(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - began:6.1f} s[/dim]  {message}", highlight=False)

    from bench.import_times import measure as measure_imports
    from local.cli.demo import quiet_logs

    # First, with no local stack running beside the fresh interpreters.
    cold_starts = measure_imports(settings.import_runs, log, warm_up=settings.import_warm_up)
    quiet_logs(state_dir / "logs" / "bench.log")
    with BenchStack(state_dir) as bench:
        quiet_logs(state_dir / "logs" / "bench.log")  # again: the functions' loggers exist now
        log(f"local stack up in {bench.stack.startup_seconds:.1f} s")
        from bench.dispatch import measure_dispatch
        from bench.engine_cost import measure_engine
        from bench.fleet import fleet_model
        from bench.orgs import measure_org
        from bench.report import judge, targets_json
        from bench.tap import TapXero

        results: dict[str, Any] = {"meta": meta(settings), "coldStarts": cold_starts}
        results["dispatch"] = measure_dispatch(bench, settings, log)
        with tempfile.TemporaryDirectory(prefix="tap-xero-") as workdir:
            tap = TapXero(bench, Path(workdir))
            results["orgs"] = {size: measure_org(bench, tap, size, settings, log) for size in settings.sizes}
        results["engine"] = {size: measure_engine(bench, size, settings, log) for size in settings.engine_cost_sizes}
        function = bench.stack.function_definitions[SYNC_FUNCTION]
        results["fleet"] = fleet_model(
            results["orgs"], concurrency=100, memory_mb=function.memory_mb, latency_seconds=settings.latency_seconds
        )
        results["targets"] = targets_json(judge(results))
        results["meta"]["seconds"] = round(time.monotonic() - began)
        log("done")
        return results


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--mode", choices=("smoke", "quick", "full"), default="quick")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="per-call latency of the emulated Xero")
    parser.add_argument(
        "--time-scale", type=float, default=DEFAULT_TIME_SCALE, help="how much faster Xero's limits run"
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--plot", type=Path, default=REPO_ROOT / "bench" / "results" / "latest.png")
    parser.add_argument("--state-dir", type=Path, default=BENCH_STATE_DIR, help="the bench stack's logs and state")
    args = parser.parse_args()
    # Wide enough for the tables when the output is a file or CI's log (rich would wrap them at 80 columns).
    console = Console(width=None if sys.stdout.isatty() else 200)
    settings = settings_for(args.mode, args.latency_ms, args.time_scale)
    results = run(settings, args.state_dir, console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    from bench.plot import draw
    from bench.report import print_tables

    draw(results, args.plot)
    print_tables(results, console)
    console.print(f"results: {args.out}, plot: {args.plot}", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
