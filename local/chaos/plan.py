"""What one chaos seed does, drawn from the seed alone (local/chaos/driver.py runs it): the organisations and how they
are linked, the worker processes' faults and kill points, and a timeline of events during the storm.

Some seeds also draw (from a stream of their own, so the rest of a seed's plan is as it was before these existed): a
link whose code exchange Xero answers with a token we must refuse (`failed_link`); a full sync whose whole read of a
pageSize resource comes without `pagination` (event `full-sync`); a resource the organisation stops offering, 404 or
410 (a `fault` of kind `not-offered` or `gone`), after which the driver runs that client's full sync once settled.

The same seed always draws the same plan; what the plan does to a run still depends on timing (threads, the
machine's load), so a replay repeats the faults, not every interleaving.
"""

import random
from dataclasses import dataclass, field
from typing import Any

from local.chaos.aws_faults import WorkerFaults

STORM_SECONDS = 20.0
ACCESS_TOKEN_SECONDS = 1800  # Xero's access-token life: a clock moved this far expires every token in hand
# Xero answers a fault's Retry-After; those here stay short so a seed finishes (the minute lasts a second).
FAULT_KINDS = {"429-minute": 3, "429-day": 1, "500": 3, "503": 2, "timeout": 1, "reset": 2, "malformed": 2}
RETRY_AFTER = {"429-minute": (1, 2, 5), "429-day": (2, 4)}
TIMEOUT_HOLD_SECONDS = 5.0  # longer than the workers' read timeout (4 s): the call times out
FAULT_PATHS = ("Invoices", "Contacts", "Journals", "Payments", "BankTransactions", "Accounts", "Items", "ContactGroups")
# The resources read with pageSize, whose answers carry Xero's `pagination` object (catalogue.py: Paging.PAGE_SIZE).
PAGE_SIZE_PATHS = (
    "Contacts",
    "Invoices",
    "CreditNotes",
    "Payments",
    "BankTransactions",
    "ManualJournals",
    "Overpayments",
    "Prepayments",
    "PurchaseOrders",
)
# Resources an organisation may stop offering (404, or 410): any the sync reads but the organisation's own.
NOT_OFFERED_PATHS = (*PAGE_SIZE_PATHS, "Accounts", "Items", "ContactGroups", "Journals", "Quotes", "TrackingCategories")
NOT_OFFERED_KINDS = ("not-offered", "not-offered", "not-offered", "gone")
LINK_TOKEN_KINDS = ("opaque-token", "opaque-token", "no-auth-event")  # answers a link's code exchange must refuse
HOSTILE_SEEDS = 0.3  # the share of seeds drawing each of the three


@dataclass(frozen=True)
class Org:
    letter: str  # the client's name in reports: A, B, C, D
    size: str
    consent: int  # organisations with the same consent number are linked in one consent (one token set)


@dataclass(frozen=True)
class Event:
    at: float  # seconds into the storm
    kind: str  # fault, token-fault, changes, clock, race, sync-now, nightly, full-sync
    detail: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        detail = " ".join(f"{k}={v}" for k, v in self.detail.items())
        return f"{self.at:5.1f} s {self.kind} {detail}".rstrip()


@dataclass(frozen=True)
class FailedLink:
    consent: int
    token_kind: str  # the emulator fault on /connect/token: opaque-token or no-auth-event


@dataclass(frozen=True)
class SeedPlan:
    seed: int
    orgs: tuple[Org, ...]
    events: tuple[Event, ...]
    kill_points: tuple[int, ...]  # --kill-at-io of the worker processes started one after another
    worker_faults: WorkerFaults
    time_margin_seconds: int  # SYNC_TIME_MARGIN_SECONDS: above 890, an invocation hands over after a few seconds
    latency_ms: int
    storm_seconds: float = STORM_SECONDS
    # The consent whose first link gets this token from Xero (exchange_failed; then it is linked again normally).
    failed_link: FailedLink | None = None

    def not_offered(self) -> list[str]:
        """The clients a resource is taken from (404/410) during the storm: each gets a full sync once settled."""
        kinds = set(NOT_OFFERED_KINDS)
        found = [e.detail["client"] for e in self.events if e.kind == "fault" and e.detail["kind"] in kinds]
        return sorted(set(found))

    def count(self, kind: str) -> int:
        return sum(1 for event in self.events if event.kind == kind)

    def summary(self) -> str:
        faults = self.worker_faults
        parts = [
            f"{len(self.orgs)} clients ({' '.join(o.letter + ':' + o.size for o in self.orgs)})",
            f"{self.count('fault')} Xero faults",
            f"{self.count('changes')} change rounds",
            f"{self.count('race')} Sync Now/nightly races",
            f"kills at I/O {list(self.kill_points)}",
        ]
        if self.count("clock"):
            parts.append("tokens expired mid-run")
        if self.count("token-fault"):
            parts.append("a refresh answer lost")
        if self.failed_link is not None:
            parts.append(f"a link refused ({self.failed_link.token_kind})")
        if self.count("full-sync"):
            parts.append("a full sync without pagination")
        if self.not_offered():
            parts.append(f"a resource not offered to {', '.join(self.not_offered())}")
        if faults.fail_secret_writes:
            parts.append(f"{faults.fail_secret_writes} secret writes refused")
        if faults.throttle_writes:
            parts.append(f"{faults.throttle_writes:.0%} writes throttled")
        if faults.duplicate_deliveries:
            parts.append(f"{faults.duplicate_deliveries:.0%} deliveries duplicated")
        if self.time_margin_seconds > 890:
            parts.append(f"invocations of {900 - self.time_margin_seconds} s")
        return ", ".join(parts)


def draw_plan(seed: int) -> SeedPlan:
    rng = random.Random(f"chaos-{seed}")
    orgs = (
        Org("A", rng.choice(("tiny", "small")), 1),
        Org("B", "tiny", 2),
        Org("C", rng.choice(("tiny", "small")), 3),
        Org("D", "tiny", 3),  # C and D: two organisations of one consent, sharing one token set
    )
    storm = STORM_SECONDS
    events: list[Event] = []
    letters = [org.letter for org in orgs]
    for _ in range(rng.randint(5, 12)):
        events.append(Event(rng.uniform(0, storm), "fault", _xero_fault(rng, letters)))
    for number in range(rng.randint(2, 4)):
        detail = {"client": rng.choice(letters), "count": rng.randint(5, 25), "seed": f"chaos-{seed}-{number}"}
        events.append(Event(rng.uniform(0, storm), "changes", detail))
    if rng.random() < 0.7:
        # Every access token in hand expires mid-run; a refresh right after it may lose its answer. One move per
        # seed: a refresh token whose answer was lost stays honoured (Xero's grace) until the worker retries.
        jump = rng.uniform(1, storm * 0.7)
        events.append(Event(jump, "clock", {"advance": ACCESS_TOKEN_SECONDS}))
        if rng.random() < 0.6:
            detail = {"kind": rng.choice(("malformed", "malformed", "reset")), "count": rng.randint(1, 2)}
            events.append(Event(jump + 0.1, "token-fault", detail))
    for _ in range(rng.randint(1, 2)):
        events.append(Event(rng.uniform(0, storm), "race"))
    for _ in range(rng.randint(1, 3)):
        events.append(Event(rng.uniform(0, storm), "sync-now", {"client": rng.choice(letters)}))
    if rng.random() < 0.5:
        events.append(Event(rng.uniform(0, storm), "nightly"))
    failed_link = _hostile_xero(random.Random(f"chaos-{seed}-hostile"), letters, orgs, events)
    faults = WorkerFaults(
        seed=seed,
        throttle_writes=rng.choice((0.0, 0.02, 0.05, 0.1)),
        fail_secret_writes=rng.choice((0, 0, 1, 2, 3, 5)),
        duplicate_deliveries=rng.choice((0.0, 0.2, 0.4)),
        max_delivery_delay=6,
    )
    return SeedPlan(
        seed=seed,
        orgs=orgs,
        events=tuple(sorted(events, key=lambda e: e.at)),
        kill_points=tuple(rng.randint(10, 1500) for _ in range(rng.randint(1, 2))),
        worker_faults=faults,
        time_margin_seconds=rng.choice((90, 893, 896)),
        latency_ms=rng.choice((0, 10, 30)),
        failed_link=failed_link,
    )


def _hostile_xero(
    rng: random.Random, letters: list[str], orgs: tuple[Org, ...], events: list[Event]
) -> FailedLink | None:
    """Xero answering unlike itself, drawn from a stream of its own: adds its events, returns the link refused."""
    failed_link = None
    if rng.random() < HOSTILE_SEEDS:
        failed_link = FailedLink(rng.choice(sorted({o.consent for o in orgs})), rng.choice(LINK_TOKEN_KINDS))
    if rng.random() < HOSTILE_SEEDS:
        # Early in the storm, while the initial syncs still read: the fault may meet the initial read or the full one.
        detail = {"client": rng.choice(letters), "path": rng.choice(PAGE_SIZE_PATHS), "count": rng.randint(1, 3)}
        events.append(Event(rng.uniform(0, STORM_SECONDS * 0.6), "full-sync", detail))
    if rng.random() < HOSTILE_SEEDS:
        detail = {
            "kind": rng.choice(NOT_OFFERED_KINDS),
            "count": rng.randint(1, 3),
            "client": rng.choice(letters),
            "path": rng.choice(NOT_OFFERED_PATHS),
        }
        events.append(Event(rng.uniform(0, STORM_SECONDS), "fault", detail))
    return failed_link


def _xero_fault(rng: random.Random, letters: list[str]) -> dict[str, Any]:
    kind = rng.choices(list(FAULT_KINDS), weights=list(FAULT_KINDS.values()))[0]
    fault: dict[str, Any] = {"kind": kind, "count": rng.randint(1, 3)}
    if rng.random() < 0.7:
        fault["client"] = rng.choice(letters)
    if rng.random() < 0.4:
        fault["path"] = rng.choice(FAULT_PATHS)
    if kind in RETRY_AFTER:
        fault["retryAfter"] = rng.choice(RETRY_AFTER[kind])
    if kind == "timeout":
        fault["holdSeconds"] = TIMEOUT_HOLD_SECONDS
    return fault


def parse_seeds(text: str) -> list[int]:
    """`1-100`, `7`, `1,5,9-12` -> the seeds, in order, each once."""
    seeds: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise ValueError(f"not a seed or a range of seeds: {part!r}")
        seeds.extend(range(int(first), int(last or first) + 1))
    return list(dict.fromkeys(seeds))
