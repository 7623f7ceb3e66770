"""The chaos driver: `python -m local chaos --seeds 1-100` (`make chaos`), and the seeded smoke in `make test`
(tests/e2e/test_chaos.py).

Per seed, on the real local stack with the Xero emulator (its rate-limit minute lasting a second):
1. four organisations are linked through the API and Xero's consent (C and D in one consent: one token set), which
   queues their initial syncs;
2. the storm (local/chaos/plan.py draws it from the seed): the syncs run in worker processes of their own
   (`python -m local worker`) that throttle their DynamoDB writes, refuse secret writes, deliver messages twice and
   out of order, and are SIGKILLed at a seeded network send, a new one started each time; meanwhile Xero answers
   429s (minute and day), 500s, 503s, timeouts, resets and malformed bodies, its clock moves on so every access
   token in hand expires mid-run (and a refresh's answer may be lost), users change the organisations, and Sync Now
   races the nightly dispatch; in some seeds Xero answers unlike itself: a link's code exchange gets a token we must
   refuse (the link fails with exchange_failed, changes nothing, and is made again), a full sync reads a pageSize
   resource without `pagination` (no stored record Xero still holds may be deleted), an organisation stops offering
   a resource (404/410: the runs go on without it);
3. it settles: faults off, a clean worker drains the queue, Xero's clock moves an hour on (the next sync may come
   that late), one clean Sync Now per client; a client a resource was taken from is compared with Xero (that
   resource aside, if its last run found it unavailable), then gets a full sync so everything converges;
4. it checks (local/chaos/checks.py) that nothing was lost, duplicated, stuck or left in the dead-letter queue.
Each seed reports one line (and its problems, with the command that replays it); the run ends with a summary.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.chaos.aws_faults import WorkerFaults, injected_in
from local.chaos.plan import Event, FailedLink, SeedPlan, draw_plan
from local.cli.stack_client import CliError, StackHandle
from local.stack.function_environment import paced_to_emulator
from local.stack.template import REPO_ROOT

if TYPE_CHECKING:
    from local.stack.offline_stack import OfflineStack

# The local stack the chaos runs on. A killed worker's message comes back after the visibility timeout, so it is
# short; the invocations of a chaos seed are shorter still (seconds), so a live one is seldom delivered twice.
STACK_OPTIONS: dict[str, Any] = {"emulator": True, "visibility_timeout": 20}
EMULATOR_TIME_SCALE = 60  # Xero's minute lasts a second, its day 24 minutes
# What the worker processes are told: Xero's minute is the emulator's; a worker's claim lapses 8 s after it dies.
WORKER_ENVIRONMENT = {
    **paced_to_emulator(EMULATOR_TIME_SCALE),
    "XERO_READ_TIMEOUT_SECONDS": "4",
    "XERO_BACKOFF_BASE_SECONDS": "0.05",
    "XERO_MAX_INLINE_WAIT_SECONDS": "3",
    "WORKER_LEASE_SECONDS": "8",
    "RUN_HEARTBEAT_SECONDS": "2",
    "XERO_RETRY_LATER_SECONDS": "3",  # a run put off (Xero offline, a token set not refreshable yet) comes back soon
}
WORKER_CONCURRENCY = 2
SETTLE_SECONDS = 240.0  # for the queue to drain, then for the clean syncs
NEXT_SYNC_LATER_SECONDS = 3600  # the emulator's clock moves this far before the clean syncs (Xero's grace: 1,800)
REPLAY = "python -m local chaos --seeds {seed}   (or: make chaos SEEDS={seed})"
WATCHED_FAULTS = frozenset({"no-pagination", "not-offered", "gone"})  # their answers given are counted in the report
FULL_SYNC_WAIT_SECONDS = 60.0  # how long a storm's full sync is watched before its stored records are compared


@dataclass
class LinkedClient:
    letter: str
    tenant_id: str
    client_id: str


@dataclass
class SeedReport:
    seed: int
    plan: SeedPlan
    problems: list[str] = field(default_factory=list)
    observed: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        seen = ", ".join(f"{what} {n}" for what, n in sorted(self.observed.items()))
        head = f"seed {self.seed:>3} {'clean' if self.clean else 'FAILED'} in {self.seconds:5.1f} s: {seen}"
        if self.clean:
            return [head]
        return [
            head,
            f"  plan: {self.plan.summary()}",
            *(f"  problem: {problem}" for problem in self.problems),
            f"  replay: {REPLAY.format(seed=self.seed)}",
        ]


class Workers:
    """The sync worker processes of one seed, one at a time (as a Lambda environment is replaced after a crash)."""

    def __init__(self, state_dir: Path, environment: dict[str, str], log_dir: Path, seed: int) -> None:
        self.state_dir = state_dir
        self.environment = environment
        self.log_dir = log_dir
        self.seed = seed
        self.started = 0
        self.killed = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    def start(self, kill_at_io: int | None = None, faults: WorkerFaults | None = None, **environment: str) -> None:
        self.started += 1
        options = ["--concurrency", str(WORKER_CONCURRENCY)]
        if kill_at_io is not None:
            options += ["--kill-at-io", str(kill_at_io)]
        if faults is not None:
            options += faults.options()
        log = self.log_dir / f"seed-{self.seed}-worker-{self.started}.log"
        self.logs.append(log)
        with log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own command line
                [sys.executable, "-m", "local", "--state-dir", str(self.state_dir), "worker", *options],
                cwd=REPO_ROOT,
                # Unbuffered: a SIGKILLed worker's log keeps every line it wrote up to the kill.
                env={**os.environ, **self.environment, **environment, "PYTHONUNBUFFERED": "1"},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def died(self) -> bool:
        """Whether the current worker was killed (SIGKILL) since the last look."""
        if self.process is None or self.process.poll() is None:
            return False
        code, self.process = self.process.returncode, None
        if code == -signal.SIGKILL:
            self.killed += 1
            return True
        raise RuntimeError(f"a worker process exited with {code} (see {self.logs[-1]})")

    def stop(self) -> None:
        """SIGTERM, as Lambda ends an environment: the invocations under way hand over at their next page."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            if process is not None and process.returncode == -signal.SIGKILL:
                self.killed += 1
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def injected(self) -> Counter[str]:
        """What the workers' logs say they injected."""
        total: Counter[str] = Counter()
        for log in self.logs:
            with contextlib.suppress(OSError):
                total.update(injected_in(log.read_text(errors="replace").splitlines()))
        return total


class ChaosSeed:
    """One seed on a running stack: link, storm, settle, check, unlink."""

    def __init__(self, stack: "OfflineStack", plan: SeedPlan, say: Callable[[str], None]) -> None:
        self.stack = stack
        self.plan = plan
        self.say = say
        self.handle = StackHandle(stack.state_dir, stack.describe())
        self.practice = f"chaos-{plan.seed}-{uuid.uuid4().hex[:6]}"
        self.clients: dict[str, LinkedClient] = {}
        self.report = SeedReport(plan.seed, plan)
        self._clean_runs: dict[str, dict[str, Any] | None] = {}  # each client's clean Sync Now, once settled
        self._full_runs: dict[str, dict[str, Any]] = {}  # the full sync of a client a resource was taken from
        self._watched: dict[int, tuple[str, int]] = {}  # emulator fault id -> (kind, count): the hostile ones
        log_dir = stack.state_dir / "logs" / "chaos"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.workers = Workers(stack.state_dir, WORKER_ENVIRONMENT, log_dir, plan.seed)

    def run(self) -> SeedReport:
        from local.chaos.checks import SettledChecks, empty_dead_letters

        began = time.monotonic()
        leftovers = empty_dead_letters(self.stack)
        if leftovers:
            self.report.observed["dead letters left by an earlier seed"] += len(leftovers)
        try:
            with self.stack.worker_for("SyncQueue").paused():  # the worker processes are the only consumers
                self._configure_emulator()
                self._link()
                self._storm()
                self._settle()
                checks = SettledChecks(self.stack, self.handle, self.practice, self.clients)
                self._full_syncs(checks)
                self.report.problems += checks.problems(self._clean_runs, self._full_runs)
                self.report.observed.update(checks.observed)
        except (CliError, RuntimeError, TimeoutError) as error:
            self.report.problems.append(f"the seed could not run to its end: {error}")
        finally:
            self.workers.stop()
            self._tidy()
        self.report.observed.update(self._observed())
        self.report.seconds = time.monotonic() - began
        return self.report

    # --- 1. link ----------------------------------------------------------------------------------------------------
    def _configure_emulator(self) -> None:
        self.handle.emulator_admin("DELETE", "/faults")
        self.handle.emulator_admin("DELETE", "/stats")
        config = {"rateLimits": {"timeScale": EMULATOR_TIME_SCALE}, "latencyMs": self.plan.latency_ms}
        self.handle.emulator_admin("POST", "/config", json=config)

    def _link(self) -> None:
        tenants: dict[str, str] = {}
        for org in self.plan.orgs:
            name = f"Chaos {self.plan.seed} {org.letter} {self.practice[-6:]}"
            tenants[org.letter] = str(
                self.handle.create_org(name, org.size, seed=f"{self.plan.seed}{org.letter}")["tenantId"]
            )
        for consent in sorted({org.consent for org in self.plan.orgs}):
            letters = [org.letter for org in self.plan.orgs if org.consent == consent]
            if self.plan.failed_link is not None and self.plan.failed_link.consent == consent:
                self._refused_link([tenants[letter] for letter in letters], self.plan.failed_link)
            self.handle.link(self.practice, [tenants[letter] for letter in letters])
        by_tenant = {client["tenantId"]: client["clientId"] for client in self.handle.clients(self.practice)}
        for letter, tenant in tenants.items():
            self.clients[letter] = LinkedClient(letter, tenant, by_tenant[tenant])

    def _refused_link(self, tenant_ids: list[str], failed: FailedLink) -> None:
        """A link whose code exchange Xero answers with a token we must not take (not a JWT, or without its consent's
        id): refused with exchange_failed, and nothing changed: no client, no token set, no sync queued."""
        from local.chaos.checks import queue_depth

        def state() -> tuple[Any, ...]:
            clients = sorted((c["clientId"], c["tenantId"], c["linkState"]) for c in self.handle.clients(self.practice))
            return clients, self._stored_link_state(), queue_depth(self.stack)

        before = state()
        self.handle.emulator_admin("POST", "/faults", json={"kind": failed.token_kind, "path": "/connect/token"})
        try:
            self.handle.link(self.practice, tenant_ids)
        except CliError as error:
            if "exchange_failed" in str(error):
                self.report.observed[f"link refused ({failed.token_kind})"] += 1
            else:
                self.report.problems.append(f"a link answered {failed.token_kind} failed otherwise: {error}")
        else:
            self.report.problems.append(f"a link whose code exchange answered {failed.token_kind} was accepted")
        finally:
            self.handle.emulator_admin("DELETE", "/faults")
        after = state()
        if after != before:
            self.report.problems.append(f"the refused link changed what is stored: {before} then {after}")

    def _stored_link_state(self) -> list[tuple[str, str | None, str | None]]:
        from local.chaos.checks import claims

        return sorted((c.client_id, c.token_set_id, c.connection_id) for c in claims(self.practice).values())

    # --- 2. the storm -----------------------------------------------------------------------------------------------
    def _storm(self) -> None:
        kills = list(self.plan.kill_points)
        self._start_chaos_worker(kills)
        began = time.monotonic()
        racing: list[threading.Thread] = []
        for event in self.plan.events:
            self._until(began + event.at, kills)
            racing += self._fire(event)
        self._until(began + self.plan.storm_seconds, kills)
        for thread in racing:
            thread.join(timeout=60)

    def _start_chaos_worker(self, kills: list[int]) -> None:
        margin = {"SYNC_TIME_MARGIN_SECONDS": str(self.plan.time_margin_seconds)}
        self.workers.start(kills.pop(0) if kills else None, self.plan.worker_faults, **margin)

    def _until(self, deadline: float, kills: list[int]) -> None:
        """Waits for the next event; a worker that was killed meanwhile is replaced (Lambda starts another)."""
        while time.monotonic() < deadline:
            if self.workers.died():
                self._start_chaos_worker(kills)
            time.sleep(0.1)

    def _fire(self, event: Event) -> list[threading.Thread]:
        """Does what the event says; returns the threads still at it (a race's contenders)."""
        self.report.observed[f"event {event.kind}"] += 1
        detail = dict(event.detail)
        if event.kind == "fault":
            letter = detail.pop("client", None)
            if letter is not None:
                detail["tenantId"] = self.clients[letter].tenant_id
            self._post_fault(detail)
        elif event.kind == "token-fault":
            self.handle.emulator_admin("POST", "/faults", json={"path": "/connect/token", **detail})
        elif event.kind == "changes":
            tenant = self.clients[detail["client"]].tenant_id
            self.handle.change_org(tenant, detail["count"], detail["seed"])
        elif event.kind == "clock":
            self.handle.emulator_admin("POST", "/clock", json={"advance": detail["advance"]})
        elif event.kind == "sync-now":
            self._sync_now(self.clients[detail["client"]])
        elif event.kind == "nightly":
            self.stack.fire_schedule("nightly")
        elif event.kind == "race":
            return self._race()
        elif event.kind == "full-sync":
            thread = threading.Thread(target=self._full_sync_without_pagination, args=(detail,), daemon=True)
            thread.start()
            return [thread]
        return []

    def _full_sync_without_pagination(self, detail: dict[str, Any]) -> None:
        """A full sync of a client whose reads of one pageSize resource come without `pagination` (`count` of them):
        its whole read cannot know it saw every page, so it must not sweep. Every record of that resource stored
        before and still at Xero must still be stored once the run has finished (or after FULL_SYNC_WAIT_SECONDS)."""
        client, resource = self.clients[detail["client"]], detail["path"]
        fault = {"kind": "no-pagination", "tenantId": client.tenant_id, "path": resource, "count": detail["count"]}
        try:
            before = self._stored_ids(client, resource)
            self._post_fault(fault)
            accepted = self._sync_now(client, mode="full")
            if accepted is not None:
                with contextlib.suppress(CliError):
                    self.handle.wait_for_run(
                        self.practice, client.client_id, accepted["runId"], timeout=FULL_SYNC_WAIT_SECONDS
                    )
            after = self._stored_ids(client, resource)
            truth = {str(r[_id_field(resource)]) for r in self._truth(client, resource)}
        except CliError as error:
            self.report.observed[f"full sync without pagination not watched ({error})"[:120]] += 1
            return
        lost = sorted((before & truth) - after)
        if lost:
            self.report.problems.append(
                f"client {client.letter}: {len(lost)} stored {resource} that Xero still holds were deleted by a full "
                f"sync whose answers lacked pagination: {', '.join(lost[:3])}"
            )

    def _post_fault(self, fault: dict[str, Any]) -> None:
        posted = self.handle.emulator_admin("POST", "/faults", json=fault)
        if fault["kind"] in WATCHED_FAULTS:
            self._watched[int(posted["id"])] = (fault["kind"], int(fault.get("count", 1)))

    def _count_watched_faults(self) -> None:
        """How many answers of the hostile kinds Xero gave (their faults' calls used), before the faults go."""
        left = {int(f["id"]): int(f["remaining"]) for f in self.handle.emulator_admin("GET", "/faults")["faults"]}
        for fault_id, (kind, count) in self._watched.items():
            self.report.observed[f"Xero {kind} answers"] += count - left.get(fault_id, 0)

    def _stored_ids(self, client: LinkedClient, resource: str) -> set[str]:
        from local.cli.stack_client import RECORD_ID

        items = self.handle.record_items(client.client_id, resource, ProjectionExpression="#i", names={"#i": RECORD_ID})
        return {item[RECORD_ID]["S"] for item in items}

    def _truth(self, client: LinkedClient, resource: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.handle.emulator_admin(
            "GET", f"/orgs/{client.tenant_id}/records/{resource}"
        )["records"]
        return records

    def _race(self) -> list[threading.Thread]:
        """The nightly dispatch and Sync Now of every client, let go at the same instant."""
        contenders: list[Callable[[], Any]] = [lambda: self.stack.fire_schedule("nightly")]
        contenders += [lambda c=client: self._sync_now(c) for client in self.clients.values()]
        start = threading.Barrier(len(contenders))

        def contend(action: Callable[[], Any]) -> None:
            start.wait()
            action()

        threads = [threading.Thread(target=contend, args=(action,), daemon=True) for action in contenders]
        for thread in threads:
            thread.start()
        return threads

    def _sync_now(self, client: LinkedClient, mode: str = "incremental") -> dict[str, Any] | None:
        try:
            return self.handle.sync_now(self.practice, client.client_id, mode)
        except CliError as error:  # refused (say, the client needs relinking): the checks say whether it should
            self.report.observed[f"Sync Now refused ({error})"[:120]] += 1
            return None

    # --- 3. settle --------------------------------------------------------------------------------------------------
    def _settle(self) -> None:
        from local.chaos.checks import wait_until_drained

        self.workers.stop()
        self._count_watched_faults()
        self.handle.emulator_admin("DELETE", "/faults")
        self.handle.emulator_admin("POST", "/config", json={"latencyMs": 0})
        self.workers.start()  # a clean worker: no kill, no faults
        wait_until_drained(self.stack, self.practice, self.clients, SETTLE_SECONDS)
        # Everything the product meant to retry has been retried. The next sync may come hours later (the nightly
        # run): past Xero's 30-minute grace for a refresh token already used, so a token set that still leans on
        # that grace (a rotation Xero made that we never saved) is found lost here, as it would be then.
        self.handle.emulator_admin("POST", "/clock", json={"advance": NEXT_SYNC_LATER_SECONDS})
        accepted = {letter: self._sync_now(client) for letter, client in self.clients.items()}
        deadline = time.monotonic() + SETTLE_SECONDS
        for letter, run in accepted.items():
            if run is None:
                self._clean_runs[letter] = None
                continue
            left = max(1.0, deadline - time.monotonic())
            try:
                self._clean_runs[letter] = self.handle.wait_for_run(
                    self.practice, self.clients[letter].client_id, run["runId"], timeout=left
                )
            except CliError as error:
                self._clean_runs[letter] = {"status": "unfinished", "errorMessage": str(error)}
        wait_until_drained(self.stack, self.practice, self.clients, SETTLE_SECONDS)
        self.workers.stop()

    def _full_syncs(self, checks: Any) -> None:
        """Each client a resource was taken from (404/410) during the storm: compared with Xero as its clean Sync Now
        left it (the resources that run found unavailable aside: they may be behind Xero until a full sync), then a
        full sync with every fault off (Sync Now full, or an operator's rerun if the client's full Sync Now was taken),
        after which the settled checks compare everything."""
        from local.chaos.checks import wait_until_drained

        letters = self.plan.not_offered()
        if not letters:
            return
        for letter in letters:
            found = checks.truth_problems(self.clients[letter], self._clean_runs.get(letter))
            self.report.problems += [f"client {letter} before its full sync: {problem}" for problem in found]
        self.workers.start()  # a clean worker: no kill, no faults
        deadline = time.monotonic() + SETTLE_SECONDS
        for letter in letters:
            self._full_runs[letter] = self._full_sync(self.clients[letter], deadline)
            self.report.observed[f"full syncs once settled {self._full_runs[letter]['status']}"] += 1
        wait_until_drained(self.stack, self.practice, self.clients, SETTLE_SECONDS)
        self.workers.stop()

    def _full_sync(self, client: LinkedClient, deadline: float) -> dict[str, Any]:
        try:
            accepted: dict[str, Any] = self.handle.sync_now(self.practice, client.client_id, "full")
        except CliError as error:
            if "full_sync_limited" not in str(error):
                return {"status": "refused", "errorMessage": str(error)}
            assert self.stack.functions is not None
            # An operator's rerun through the dispatch function: queued for the clean worker, exempt from the limit.
            before = {run["runId"] for run in self.handle.runs(self.practice, client.client_id)}
            event = {"clientIds": [client.client_id], "mode": "full"}
            summary = self.stack.functions.invoke("SyncDispatchFunction", event)
            self.report.observed["console reruns"] += 1
            if summary.get("queued") != 1:
                return {"status": "refused", "errorCode": summary.get("error"), "errorMessage": str(summary)}
            accepted = self.handle.first_run_after(self.practice, client.client_id, before, trigger="console")
        try:
            left = max(1.0, deadline - time.monotonic())
            return self.handle.wait_for_run(self.practice, client.client_id, accepted["runId"], timeout=left)
        except CliError as error:
            return {"status": "unfinished", "errorMessage": str(error)}

    def _tidy(self) -> None:
        """Unlinks the seed's clients (the next seeds' nightly runs leave them be) and restores the emulator."""
        with contextlib.suppress(CliError):
            self.handle.emulator_admin("DELETE", "/faults")
            self.handle.emulator_admin("POST", "/config", json={"latencyMs": 0})
        for client in self.clients.values():
            with contextlib.suppress(CliError):
                self.handle.unlink(self.practice, client.client_id)

    def _observed(self) -> Counter[str]:
        observed: Counter[str] = Counter({"workers": self.workers.started, "killed": self.workers.killed})
        observed.update(self.workers.injected())
        stats = self.handle.emulator_admin("GET", "/stats")["tenants"]
        for client in self.clients.values():
            tenant = stats.get(client.tenant_id) or {}
            observed["Xero calls"] += sum(int(n) for n in (tenant.get("calls") or {}).values())
            observed["Xero 429s"] += int(tenant.get("total429") or 0)
        token = stats.get("(none)") or {}
        observed["token calls"] += int((token.get("calls") or {}).get("POST /connect/token", 0))
        return observed


def _id_field(resource: str) -> str:
    from xero_sync.catalogue import CATALOGUE

    return next(spec.id_field for spec in CATALOGUE if spec.name == resource)


def run_seeds(stack: "OfflineStack", seeds: list[int], say: Callable[[str], None]) -> list[SeedReport]:
    reports = []
    for seed in seeds:
        report = ChaosSeed(stack, draw_plan(seed), say).run()
        for line in report.lines():
            say(line)
        reports.append(report)
    return reports


def summary(reports: list[SeedReport], seconds: float) -> list[str]:
    clean = sum(1 for report in reports if report.clean)
    failed = [report.seed for report in reports if not report.clean]
    totals: Counter[str] = Counter()
    for report in reports:
        totals.update(report.observed)
    lines = [
        f"chaos: {clean} of {len(reports)} seeds clean in {seconds / 60:.1f} min",
        "  in all: " + ", ".join(f"{what} {n}" for what, n in sorted(totals.items())),
    ]
    if failed:
        lines.append(f"  failed seeds: {', '.join(map(str, failed))}")
        lines.append(f"  replay one: {REPLAY.format(seed=failed[0])}")
    return lines


@contextlib.contextmanager
def chaos_stack(state_dir: Path) -> Iterator["OfflineStack"]:
    """A local stack of the chaos's own (its own state directory and ports, so a `make up` stack is left be)."""
    from local.stack.offline_stack import OfflineStack

    options = {"api_port": 0, "emulator_port": 0, "run_schedules": False, "write_state": True, **STACK_OPTIONS}
    with OfflineStack(state_dir=state_dir, **options) as stack:
        yield stack
