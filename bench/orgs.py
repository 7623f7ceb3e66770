"""One organisation, measured end to end: our initial sync and tap-xero's, a day of changes and both incremental
syncs, then both again with nothing changed; what our records take in DynamoDB; and that what we stored equals what
Xero holds (a fast sync that stores the wrong thing measures nothing); and, after the initial sync, the client read
whole through the data API (bench/reads.py)."""

from typing import Any

from bench import storage
from bench.limits import call_figures
from bench.ours import run_ours
from bench.reads import measure_reads
from bench.settings import Settings
from bench.stack import BenchStack, Org
from bench.tap import TapConnection, TapXero
from local.cli.export_verify import verify_ground_truth
from local.cli.progress import floor_calls
from xero_sync.catalogue import CATALOGUE


def truth_counts(bench: BenchStack, tenant_id: str) -> dict[str, int]:
    """Records per resource as the API can show them (archived and deleted ones included)."""
    return {
        spec.name: int(bench.api.emulator_admin("GET", f"/orgs/{tenant_id}/records/{spec.name}?limit=0")["count"])
        for spec in CATALOGUE
    }


def call_floor(counts: dict[str, int]) -> int:
    return sum(floor_calls(spec, counts[spec.name]) for spec in CATALOGUE)


def change_floor(counts: dict[str, int], changes: dict[str, dict[str, list[str]]]) -> int:
    """The fewest calls that read a day's changes: one call per resource, or the pages of its changed records where
    Xero reads only what changed (If-Modified-Since, Journals' offset); a whole read where it cannot (`counts`: the
    records after the changes), and the members of each new contact group."""
    total = 0
    for spec in CATALOGUE:
        done = changes.get(spec.name, {})
        if spec.detail_by_id:
            total += 1 + len(done.get("created", []))
        elif spec.incremental:
            total += floor_calls(spec, len({rid for ids in done.values() for rid in ids}))
        else:
            total += floor_calls(spec, counts[spec.name])
    return total


def run_tap(
    bench: BenchStack, tap: TapXero, org: Org, connection: TapConnection, settings: Settings, label: str
) -> dict[str, Any]:
    scale = settings.scale(org.size)
    bench.configure_xero(settings.latency_ms, scale)
    bench.clear_stats()
    run = tap.run(connection, label)
    figures = call_figures(bench.stats(connection.tenant_id), run.seconds, settings.latency_seconds, scale)
    figures.update(run.as_json())
    return figures


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float | None]:
    """How many times fewer calls, and less time, ours took."""

    def ratio(key: str) -> float | None:
        return round(theirs[key] / ours[key], 2) if ours[key] else None

    return {"calls": ratio("calls"), "seconds": ratio("seconds"), "unscaledSeconds": ratio("unscaledSeconds")}


def measure_org(bench: BenchStack, tap: TapXero, size: str, settings: Settings, log: Any) -> dict[str, Any]:
    org: Org = bench.create_org(size, seed="bench")
    counts = truth_counts(bench, org.tenant_id)
    floor = call_floor(counts)
    log(f"{size}: {sum(counts.values())} records, floor {floor} calls")
    practice = f"bench-{size}"
    client_id, run_id = bench.link(practice, org.tenant_id)

    initial = {"ours": run_ours(bench, org, client_id, run_id, settings, f"{size}-initial")}
    log(f"{size}: ours initial {initial['ours']['calls']} calls, {initial['ours']['seconds']} s")
    stored = storage.measure(bench.api, client_id, org.tenant_id)
    client = {"clientId": client_id, "tenantId": org.tenant_id}
    reads = measure_reads(bench, practice, client, log) if size in settings.read_sizes else None
    connection = tap.connect(org.tenant_id)
    initial["tap"] = run_tap(bench, tap, org, connection, settings, f"{size}-initial")
    initial["ratios"] = ratios(initial["ours"], initial["tap"])
    log(f"{size}: tap-xero initial {initial['tap']['calls']} calls, {initial['tap']['seconds']} s")

    changed = bench.api.change_org(org.tenant_id, settings.changes[size], seed=f"bench-{size}")
    incremental: dict[str, Any] = {
        "changes": int(changed.get("applied", settings.changes[size])),
        "changeFloorCalls": change_floor(truth_counts(bench, org.tenant_id), changed.get("changes") or {}),
    }
    incremental["ours"] = run_ours(
        bench, org, client_id, bench.sync_now(practice, client_id), settings, f"{size}-incremental"
    )
    incremental["tap"] = run_tap(bench, tap, org, connection, settings, f"{size}-incremental")
    incremental["ratios"] = ratios(incremental["ours"], incremental["tap"])
    idle = {
        "ours": run_ours(bench, org, client_id, bench.sync_now(practice, client_id), settings, f"{size}-idle"),
        "tap": run_tap(bench, tap, org, connection, settings, f"{size}-idle"),
    }
    log(f"{size}: incremental and idle syncs done")
    verification = verify_ground_truth(bench.api, client)
    return {
        "timeScale": settings.scale(size),
        "records": sum(counts.values()),
        "counts": counts,
        "floorCalls": floor,
        "initial": initial,
        "incremental": incremental,
        "idle": idle,
        "storage": stored.as_json(),
        "storedEqualsXero": verification.equal,
        "differences": {name: wrong[:5] for name, wrong in verification.differences.items()},
        **({"reads": reads} if reads is not None else {}),
    }
