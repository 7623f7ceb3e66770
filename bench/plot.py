"""The plot `make bench` draws: initial-sync time (with real minutes) and API calls against organisation size, ours
and tap-xero's, with our floors."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI or a server
import matplotlib.pyplot as plt


def draw(results: dict[str, Any], path: Path) -> None:
    orgs = results["orgs"]
    sizes = list(orgs)
    records = [orgs[s]["records"] for s in sizes]
    figure, (time_axis, calls_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = {
        "ours": ([orgs[s]["initial"]["ours"]["unscaledSeconds"] for s in sizes], "o-", "tab:blue"),
        "tap-xero 2.6.0": ([orgs[s]["initial"]["tap"]["unscaledSeconds"] for s in sizes], "s-", "tab:orange"),
        "rate-limit floor (ours)": ([orgs[s]["initial"]["ours"]["unscaledFloorSeconds"] for s in sizes], ":", "black"),
    }
    for label, (values, style, colour) in series.items():
        time_axis.plot(records, values, style, color=colour, label=label)
    time_axis.set(
        title="Initial sync: wall time (real minutes)", xlabel="records in the organisation", ylabel="seconds"
    )
    calls = {
        "ours": ([orgs[s]["initial"]["ours"]["calls"] for s in sizes], "o-", "tab:blue"),
        "tap-xero 2.6.0": ([orgs[s]["initial"]["tap"]["calls"] for s in sizes], "s-", "tab:orange"),
        "call floor": ([orgs[s]["floorCalls"] for s in sizes], ":", "black"),
    }
    for label, (values, style, colour) in calls.items():
        calls_axis.plot(records, values, style, color=colour, label=label)
    calls_axis.set(title="Initial sync: API calls", xlabel="records in the organisation", ylabel="calls")
    for axis in (time_axis, calls_axis):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
        for size, x in zip(sizes, records, strict=True):
            axis.annotate(
                size, (x, axis.get_ylim()[0]), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=8
            )
    meta = results["meta"]
    figure.suptitle(
        f"make bench ({meta['mode']}, {meta['date']}, {meta['machine']}, {meta['cpus']} CPUs): "
        f"latency {meta['latencyMs']:g} ms, "
        "Xero's limits (60/min, 5 in flight) on its real minute (large: a minute "
        f"{meta['timeScale']:g}x faster, projected)",
        fontsize=9,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
