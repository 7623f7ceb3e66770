"""A fleet's nightly window, simulated (no AWS): 10,000 clients of a realistic size mix, their syncs as this run
measured them, Lambda's MaximumConcurrency, and Xero's limits per organisation (60 calls a minute, paced by each
sync) and per app (10,000 calls a minute across every organisation). docs/benchmark.md describes the model.

Per size, a client's nightly sync is this run's incremental sync after a day of changes (calls, time with real
minutes, DynamoDB capacity); sizes this run did not measure are extrapolated from the nearest one that it did (and
say so). One client in seven also has its weekly reconciliation that night (every resource but Journals re-read
whole, FULL_RECONCILIATION_SECONDS), which adds its calls at 60 a minute.

The simulation steps time in half seconds: slots (MaximumConcurrency) take queued syncs in dispatch order; each
running sync wants calls at its own measured pace; when the app's minute budget cannot cover every sync's demand,
each gets the same share of it (Xero's 429 "appminute" makes them wait), which stretches their time, and Lambda
bills the stretched time.
"""

import math
import random
from dataclasses import asdict, dataclass
from typing import Any

from xero_sync.catalogue import CATALOGUE

SIZES = ("tiny", "small", "medium", "large")
# A practice's client book: mostly small businesses, a few large ones (the emulator's sizes: docs/xero-emulator.md).
SIZE_MIX = {"tiny": 0.30, "small": 0.45, "medium": 0.22, "large": 0.03}
RECONCILE_SHARE = 1 / 7  # each client's weekly reconciliation falls on one night in seven
NIGHTS_PER_MONTH = 30
MINUTE_CALLS = 60  # per organisation
TICK = 0.5


@dataclass(frozen=True)
class EmulatedOrg:
    """The emulator's organisation of a size at the benchmark's seed, for a size this run did not measure."""

    records: int
    reconciliation_calls: int


# As the emulator's generator builds them (tests/bench/test_fleet.py regenerates all but the large one).
EMULATED_ORGS = {
    "tiny": EmulatedOrg(records=172, reconciliation_calls=25),
    "small": EmulatedOrg(records=1_343, reconciliation_calls=26),
    "medium": EmulatedOrg(records=10_633, reconciliation_calls=31),
    "large": EmulatedOrg(records=234_175, reconciliation_calls=170),
}


@dataclass(frozen=True)
class Prices:
    """AWS list prices, US East (N. Virginia), on-demand, as published in November 2024 (DynamoDB on-demand after
    its 50 % cut of 2024-11-01). eu-west-1, where samconfig.toml deploys, lists the same Lambda, SQS and Secrets
    Manager prices and ~10 % more for DynamoDB."""

    lambda_arm_gb_second: float = 0.0000133334
    lambda_request: float = 0.20 / 1e6
    dynamodb_write_unit: float = 0.625 / 1e6
    dynamodb_read_unit: float = 0.125 / 1e6
    dynamodb_gb_month: float = 0.25
    sqs_request: float = 0.40 / 1e6
    secret_month: float = 0.40
    secrets_api_call: float = 0.05 / 10_000
    kms_request: float = 0.03 / 10_000


@dataclass(frozen=True)
class Profile:
    """One organisation size's nightly sync."""

    calls: float
    seconds: float  # with real minutes (the run's projection)
    write_units: float
    read_units: float
    stored_bytes: float
    reconciliation_calls: float
    reconciliation_seconds: float  # the same night's sync with the weekly reconciliation's calls on top
    source: str  # "measured" or "extrapolated from <size>"


def reconciliation_calls(floor_calls: int, journals: int) -> int:
    """A reconciliation re-reads every resource whole but Journals, which are append-only: the floor's calls less
    the Journals pages (100 a call)."""
    return floor_calls - (journals // 100 + 1)


def profiles_from(orgs: dict[str, dict[str, Any]], latency_seconds: float) -> dict[str, Profile]:
    """Per size, the incremental sync after a day of changes as measured; other sizes scaled from the nearest
    measured one: the calls and writes a change causes by the ratio of changes a day, storage by records.
    latency_seconds: the run's per-call latency, Xero's round trip."""
    from bench.settings import CHANGES_PER_DAY

    measured: dict[str, Profile] = {}
    for size, org in orgs.items():
        ours = org["incremental"]["ours"]
        reconciliation = reconciliation_calls(org["floorCalls"], org["counts"].get("Journals", 0))
        measured[size] = Profile(
            calls=ours["calls"],
            seconds=ours["unscaledSeconds"],
            write_units=ours["aws"]["dynamodb"]["writeUnits"],
            read_units=ours["aws"]["dynamodb"]["readUnits"],
            stored_bytes=org["storage"]["billedBytes"],
            reconciliation_calls=reconciliation,
            reconciliation_seconds=sync_seconds(
                ours["calls"] + reconciliation, ours["unscaledSeconds"], latency_seconds
            ),
            source="measured",
        )
    out = dict(measured)
    for size in SIZES:
        if size in out or not measured:
            continue
        base_size = min(measured, key=lambda s: abs(SIZES.index(s) - SIZES.index(size)))
        base, emulated = measured[base_size], EMULATED_ORGS[size]
        idle_calls = float(len(CATALOGUE))  # one call per resource
        change_ratio = CHANGES_PER_DAY[size] / CHANGES_PER_DAY[base_size]
        calls = idle_calls + max(0.0, base.calls - idle_calls) * change_ratio
        out[size] = Profile(
            calls=round(calls, 1),
            seconds=round(sync_seconds(calls, base.seconds, latency_seconds), 1),
            write_units=round(base.write_units * change_ratio, 1),
            read_units=round(base.read_units * change_ratio, 1),
            stored_bytes=round(base.stored_bytes * emulated.records / EMULATED_ORGS[base_size].records),
            reconciliation_calls=emulated.reconciliation_calls,
            reconciliation_seconds=round(
                sync_seconds(calls + emulated.reconciliation_calls, base.seconds, latency_seconds), 1
            ),
            source=f"extrapolated from {base_size}",
        )
    return out


def sync_seconds(calls: float, within_a_minute: float, latency_seconds: float) -> float:
    """A sync's time with real minutes: every spent minute, then the last (partial) one at the measured pace. Our
    pacer waits out a spent minute from the first answer to one of its calls, a round trip after the minute began."""
    spent = max(0, math.ceil(calls / MINUTE_CALLS) - 1)
    return spent * (60 + latency_seconds) + within_a_minute


@dataclass
class _Job:
    seconds: float
    calls: float
    work: float = 0.0  # seconds of its own pace still to go
    calls_left: float = 0.0
    billed: float = 0.0

    def __post_init__(self) -> None:
        self.work, self.calls_left = self.seconds, self.calls


def simulate(
    profiles: dict[str, Profile],
    clients: int = 10_000,
    concurrency: int = 100,
    app_per_minute: int = 10_000,
    mix: dict[str, float] | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    mix = mix or SIZE_MIX
    rng = random.Random(seed)
    sizes = rng.choices(list(mix), weights=list(mix.values()), k=clients)
    jobs: list[_Job] = []
    for size in sizes:
        profile = profiles[size]
        if rng.random() < RECONCILE_SHARE:
            jobs.append(_Job(profile.reconciliation_seconds, profile.calls + profile.reconciliation_calls))
        else:
            jobs.append(_Job(profile.seconds, profile.calls))
    queue = list(reversed(jobs))
    running: list[_Job] = []
    now = window_start = used = 0.0
    peak_minute = peak_demand = 0.0
    throttled_ticks = 0
    while queue or running:
        while queue and len(running) < concurrency:
            running.append(queue.pop())
        if now >= window_start + 60:
            peak_minute = max(peak_minute, used)
            window_start, used = now, 0.0
        wanted = [
            min(job.calls_left, job.calls / job.seconds * TICK) if job.seconds else job.calls_left for job in running
        ]
        demand = sum(wanted)
        peak_demand = max(peak_demand, demand / TICK * 60)
        budget = app_per_minute - used
        share = 1.0 if demand <= budget else max(0.0, budget) / demand
        throttled_ticks += share < 1.0
        for job, want in zip(running, wanted, strict=True):
            job.calls_left -= want * share
            job.work -= TICK * share
            job.billed += TICK
            used += want * share
        running = [job for job in running if job.work > 1e-9]
        now += TICK
    peak_minute = max(peak_minute, used)
    return {
        "clients": clients,
        "concurrency": concurrency,
        "windowHours": round(now / 3600, 2),
        "totalCalls": round(sum(job.calls for job in jobs)),
        "peakCallsPerMinute": round(peak_minute),
        "peakDemandPerMinute": round(peak_demand),
        "appLimitBoundMinutes": round(throttled_ticks * TICK / 60, 1),
        "lambdaSecondsPerNight": round(sum(job.billed for job in jobs)),
        "sizes": {size: sizes.count(size) for size in mix},
    }


def monthly_cost_per_client(
    profiles: dict[str, Profile], night: dict[str, Any], memory_mb: int, prices: Prices | None = None
) -> dict[str, Any]:
    """Per client per month, from the simulated night (Lambda time) and the measured profiles (capacity, storage)."""
    prices = prices or Prices()
    clients = night["clients"]
    share = {size: n / clients for size, n in night["sizes"].items()}
    lambda_gb_seconds = night["lambdaSecondsPerNight"] / clients * memory_mb / 1024 * NIGHTS_PER_MONTH
    write_units = sum(share[s] * profiles[s].write_units for s in share) * NIGHTS_PER_MONTH
    read_units = sum(share[s] * profiles[s].read_units for s in share) * NIGHTS_PER_MONTH
    stored_gb = sum(share[s] * profiles[s].stored_bytes for s in share) / 1024**3
    # SQS per sync: a tenth of a SendMessageBatch, the receive that delivers it, the delete once processed.
    sqs_requests = 2.1 * NIGHTS_PER_MONTH
    # Secrets Manager per sync: the token set read, and written back refreshed (an access token lasts 30 minutes, so
    # every nightly sync refreshes); each one a KMS call for the secret's key.
    secret_calls = 2 * NIGHTS_PER_MONTH
    cost = {
        "lambda": lambda_gb_seconds * prices.lambda_arm_gb_second + NIGHTS_PER_MONTH * prices.lambda_request,
        "dynamodbWrites": write_units * prices.dynamodb_write_unit,
        "dynamodbReads": read_units * prices.dynamodb_read_unit,
        "dynamodbStorage": stored_gb * prices.dynamodb_gb_month,
        "sqs": sqs_requests * prices.sqs_request,
        "secretsManager": prices.secret_month + secret_calls * (prices.secrets_api_call + prices.kms_request),
    }
    return {
        "lambdaGbSeconds": round(lambda_gb_seconds, 1),
        "dynamodbWriteUnits": round(write_units),
        "dynamodbReadUnits": round(read_units),
        "storedGb": round(stored_gb, 4),
        "sqsRequests": sqs_requests,
        "secretsManagerCalls": secret_calls,
        "usd": {name: round(value, 5) for name, value in cost.items()},
        "usdTotal": round(sum(cost.values()), 4),
        "prices": asdict(prices),
    }


def fleet_model(
    orgs: dict[str, dict[str, Any]], concurrency: int, memory_mb: int, latency_seconds: float
) -> dict[str, Any]:
    profiles = profiles_from(orgs, latency_seconds)
    night = simulate(profiles, concurrency=concurrency)
    return {
        "profiles": {size: asdict(p) for size, p in profiles.items()},
        "night": night,
        # The window at other MaximumConcurrency settings: where Xero's app-wide limit, not concurrency, binds.
        "windowHoursByConcurrency": {
            str(c): night["windowHours"] if c == concurrency else simulate(profiles, concurrency=c)["windowHours"]
            for c in sorted({10, 25, 50, concurrency, 160})
        },
        "perClientMonth": monthly_cost_per_client(profiles, night, memory_mb),
    }
