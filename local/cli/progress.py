"""Progress of a sync run as people expect it on long work: a live bar per resource while it runs (records and pages
so far, API calls, waits on rate limits), then a summary table. Plain lines, no colour or bars, when stdout is not a
terminal (CI, a pipe).

Where the numbers come from (the CLI runs beside the stack):
- the run itself through the API (`GET /clients/{id}/syncs`): status, mode, per-resource counts, API calls, 429s and
  time waited, as the worker records them at the end of each invocation. A resource's figures are shown only once
  the run records them (a resource done but not yet recorded is not "0 records"), and the summary sums the same
  counts, so the lines and the summary agree;
- the run's heartbeat (`currentRun.progress` of `GET /clients/{id}`): resources done and records read so far;
- the run's Checkpoint items, read from DynamoDB Local: which resources this run has finished and how far the others
  are (page, Journals offset) while it runs;
- the Xero emulator's own call log (`/_emulator/stats`): calls per endpoint and 429s as they happen.
"""

import math
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from local.cli.stack_client import StackHandle
from xero_sync.catalogue import CATALOGUE, Paging, ResourceSpec

RESOURCES = [spec.name for spec in CATALOGUE]
BY_NAME = {spec.name: spec for spec in CATALOGUE}
ENDED = ("succeeded", "partial", "failed")  # a run's final statuses


def endpoint_resource(endpoint: str) -> str | None:
    """`GET /ContactGroups/{id}` -> ContactGroups; token and identity calls -> None."""
    method, _, path = endpoint.partition(" ")
    name = path.strip("/").split("/")[0]
    return name if method == "GET" and name in BY_NAME else None


def floor_calls(spec: ResourceSpec, records: int) -> int:
    """The fewest calls that can read `records` records of a resource whole (Xero's page sizes; a short page ends
    a page-less read, so an exact multiple needs one more)."""
    if spec.paging is Paging.PAGE_SIZE:
        calls = max(1, math.ceil(records / spec.page_size))
    elif spec.paging in (Paging.PAGE, Paging.OFFSET):
        calls = records // spec.page_size + 1
    else:
        calls = 1
    return calls + (records if spec.detail_by_id else 0)


@dataclass
class ResourceProgress:
    name: str
    state: str = "waiting"  # waiting | reading | done
    records: int = 0
    pages: int = 0  # calls to this resource's endpoints in this run
    total: int | None = None
    counted: bool = False  # `records` is the run's recorded `fetched` (not an estimate from a checkpoint)


@dataclass
class RunProgress:
    run: dict[str, Any]
    resources: dict[str, ResourceProgress]
    api_calls: int
    rate_limited: int
    elapsed: float
    waiting_on: dict[str, Any] | None = None  # the overview's currentRun.waitingOn: {reason, until}
    heartbeat: dict[str, Any] | None = None  # the overview's currentRun.progress: {resourcesDone, recordsSoFar, …}

    @property
    def status(self) -> str:
        return str(self.run.get("status"))

    @property
    def finished(self) -> bool:
        return self.status in ENDED


@dataclass
class ProgressReader:
    """Reads a run's progress from the API, its checkpoints and the emulator's call log."""

    handle: StackHandle
    practice: str
    client: dict[str, Any]
    run_id: str
    totals: dict[str, int] | None = None  # records per resource at Xero, when the run reads everything
    # The emulator's call log before the run was asked for (its calls are counted from there); taken now if None,
    # which misses the calls a worker already made.
    baseline: dict[str, Any] | None = None
    started: float = field(default_factory=time.monotonic)
    _baseline: dict[str, Any] = field(default_factory=dict)
    _offsets: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.baseline is None:
            self.baseline = self.handle.tenant_stats(self.client["tenantId"])
        self._baseline = self.baseline
        journals = self.handle.checkpoints(self.client["clientId"]).get("Journals", {})
        self._offsets["Journals"] = int(journals.get("journal_offset") or 0)

    def read(self) -> RunProgress:
        run = self.handle.run(self.practice, self.client["clientId"], self.run_id) or {"status": "queued"}
        checkpoints = self.handle.checkpoints(self.client["clientId"])
        stats = self.handle.tenant_stats(self.client["tenantId"])
        calls_by_resource: dict[str, int] = {}
        base_calls = self._baseline.get("calls", {})
        for endpoint, count in (stats.get("calls") or {}).items():
            resource = endpoint_resource(endpoint)
            if resource:
                delta = int(count) - int(base_calls.get(endpoint, 0))
                calls_by_resource[resource] = calls_by_resource.get(resource, 0) + delta
        counts = run.get("counts") or {}
        resources: dict[str, ResourceProgress] = {}
        for name in RESOURCES:
            spec = BY_NAME[name]
            cp = checkpoints.get(name, {})
            progress = ResourceProgress(name, total=(self.totals or {}).get(name))
            progress.pages = calls_by_resource.get(name, 0)
            in_this_run = cp.get("run_id") == self.run_id
            if name in counts:  # recorded by the worker at the end of an invocation: the figure the summary sums
                progress.records = int(counts[name].get("fetched", 0))
                progress.counted = True
            if (in_this_run and cp.get("pass_kind") is None) or run.get("status") in ENDED:
                progress.state = "done"
            elif in_this_run or progress.pages:
                progress.state = "reading"
                if not progress.counted:
                    progress.records = self._records_so_far(spec, cp)
            if progress.total is not None and progress.counted:
                progress.total = max(progress.total, progress.records)
            resources[name] = progress
        api_calls = int(stats.get("totalCalls", 0)) - int(self._baseline.get("totalCalls", 0))
        limited = int(stats.get("total429", 0)) - int(self._baseline.get("total429", 0))
        api_calls = max(api_calls, int(run.get("apiCalls") or 0))
        limited = max(limited, int(run.get("rateLimited") or 0))
        if run.get("status") in ENDED:
            api_calls, limited = int(run.get("apiCalls") or 0), int(run.get("rateLimited") or 0)  # as recorded
        current = self.handle.client(self.practice, self.client["clientId"]).get("currentRun") or {}
        ours = current.get("runId") == self.run_id
        waiting = current.get("waitingOn") if ours else None
        heartbeat = current.get("progress") if ours else None
        return RunProgress(run, resources, api_calls, limited, time.monotonic() - self.started, waiting, heartbeat)

    def _records_so_far(self, spec: ResourceSpec, cp: dict[str, Any]) -> int:
        """Records read by a pass still in progress, from its checkpoint (pages done, Journals offset)."""
        if cp.get("pass_kind") is None:
            return 0
        next_page = int(cp.get("next_page") or 0)
        if spec.paging is Paging.OFFSET:
            return max(0, next_page - self._offsets.get(spec.name, 0))
        return max(0, next_page - 1) * spec.page_size


# --- renderers ------------------------------------------------------------------------------------------------------
class Renderer:
    def start(self, title: str) -> None: ...

    def update(self, progress: RunProgress) -> None: ...

    def stop(self, progress: RunProgress | None) -> None: ...


WAIT_REASONS = {
    "rate_limit": "Xero's minute limit",
    "daily_limit": "Xero's daily limit",
    "organisation_offline": "the organisation is offline at Xero",
    "xero_retry": "a retry after a Xero error",
}


def _status_line(progress: RunProgress) -> str:
    """The run's state. While it runs: its heartbeat and the calls seen at the emulator so far; once it ended: the
    run's record alone (calls, 429s, the wall-clock time its calls waited), as the summary prints it."""
    waited = float(progress.run.get("waitedSeconds") or 0)
    status = progress.status
    if progress.waiting_on:
        reason = WAIT_REASONS.get(progress.waiting_on["reason"], progress.waiting_on["reason"])
        status += f" (waiting on {reason} until {str(progress.waiting_on['until'])[11:19]} UTC)"
    beat = progress.heartbeat if not progress.finished else None
    so_far = (
        f" · {beat.get('resourcesDone')}/{beat.get('resourcesTotal')} resources, "
        f"{beat.get('recordsSoFar')} records read so far"
        if beat
        else ""
    )
    return (
        f"run {status}{so_far} · API calls {progress.api_calls} · 429s {progress.rate_limited} · "
        f"waited {waited:.1f} s · {progress.elapsed:.0f} s"
    )


class BarRenderer(Renderer):
    """A live bar per resource (terminal only)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bars = Progress(
            TextColumn("{task.fields[mark]} {task.description:<19}"),
            BarColumn(bar_width=28),
            MofNCompleteColumn(),
            TextColumn("records · {task.fields[pages]:>3} calls"),
            console=console,
            expand=False,
        )
        self.header = Text("")
        self.live = Live(Group(self.header, self.bars), console=console, refresh_per_second=8, transient=False)
        self.tasks: dict[str, TaskID] = {}

    def start(self, title: str) -> None:
        self.header.plain = title
        for name in RESOURCES:
            self.tasks[name] = self.bars.add_task(name, total=None, mark=" ", pages=0)
        self.live.start()

    def update(self, progress: RunProgress) -> None:
        self.header.plain = _status_line(progress)
        for name, resource in progress.resources.items():
            mark = {"done": "✔", "reading": "…", "waiting": " "}[resource.state]
            total = (
                resource.total
                if resource.total is not None
                else (resource.records if resource.state == "done" else None)
            )
            # Done but its figures not recorded yet (the worker records them at the end of its invocation): a full
            # bar, not a count of its own; the recorded figure replaces it.
            completed = resource.records if resource.counted or resource.state != "done" else (total or 0)
            self.bars.update(self.tasks[name], completed=completed, total=total, mark=mark, pages=resource.pages)

    def stop(self, progress: RunProgress | None) -> None:
        if progress is not None:
            self.update(progress)
        self.live.stop()


class LineRenderer(Renderer):
    """Plain lines: each resource once the run has recorded its figures (the worker records them when its
    invocation ends), and the run's state every few seconds."""

    def __init__(self, out: IO[str], every: float = 10.0) -> None:
        self.out = out
        self.every = every
        self.reported: set[str] = set()
        self.last_line = 0.0

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def start(self, title: str) -> None:
        self._print(title)
        self.last_line = time.monotonic()

    def update(self, progress: RunProgress) -> None:
        for name, resource in progress.resources.items():
            if name in self.reported or resource.state != "done" or not (resource.counted or progress.finished):
                continue
            self.reported.add(name)
            calls = f"{resource.pages:>4} call{'' if resource.pages == 1 else 's'}"
            if resource.counted:
                self._print(f"  {name:<19} {resource.records:>7} fetched  {calls}")
            else:
                self._print(f"  {name:<19} {'-':>7} not read by this run  {calls}")
        if time.monotonic() - self.last_line >= self.every:
            self.last_line = time.monotonic()
            self._print(f"  … {_status_line(progress)}")

    def stop(self, progress: RunProgress | None) -> None:
        if progress is not None:
            self.update(progress)
            self._print(f"  {_status_line(progress)}")


def renderer_for(console: Console, out: IO[str] = sys.stdout) -> Renderer:
    return BarRenderer(console) if console.is_terminal else LineRenderer(out)


def follow(reader: ProgressReader, renderer: Renderer, title: str, interval: float = 0.5) -> RunProgress:
    """Polls the run until it finishes, drawing its progress."""
    renderer.start(title)
    progress: RunProgress | None = None
    try:
        while True:
            progress = reader.read()
            renderer.update(progress)
            if progress.finished:
                return progress
            time.sleep(interval)
    finally:
        renderer.stop(progress)


# --- the summary ----------------------------------------------------------------------------------------------------
def summary_table(
    progress: RunProgress, stored: dict[str, tuple[int, int]], whole: bool, title: str = "Sync summary"
) -> Table:
    """Records per resource (fetched, written, stored), calls against the floor, time and stored bytes."""
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("resource", "left"),
        ("fetched", "right"),
        ("new", "right"),
        ("changed", "right"),
        ("removed", "right"),
        ("stored", "right"),
        ("KiB stored", "right"),
        ("calls", "right"),
        ("floor", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    counts = progress.run.get("counts") or {}
    totals = dict.fromkeys(("fetched", "inserted", "updated", "deleted", "stored", "bytes", "calls", "floor"), 0)
    for name in RESOURCES:
        row = counts.get(name, {})
        records, size = stored.get(name, (0, 0))
        calls = progress.resources[name].pages if name in progress.resources else 0
        floor = floor_calls(BY_NAME[name], records) if whole else 1
        values = {
            "fetched": int(row.get("fetched", 0)),
            "inserted": int(row.get("inserted", 0)),
            "updated": int(row.get("updated", 0)),
            "deleted": int(row.get("deleted", 0)),
            "stored": records,
            "bytes": size,
            "calls": calls,
            "floor": floor,
        }
        for key, value in values.items():
            totals[key] += value
        table.add_row(name, *_cells(values))
    table.add_section()
    table.add_row("total", *_cells(totals), style="bold")
    return table


def _cells(values: dict[str, int]) -> list[str]:
    return [
        str(values["fetched"]),
        str(values["inserted"]),
        str(values["updated"]),
        str(values["deleted"]),
        str(values["stored"]),
        f"{values['bytes'] / 1024:.1f}",
        str(values["calls"]),
        str(values["floor"]),
    ]


def run_line(progress: RunProgress, whole: bool, stored: dict[str, tuple[int, int]]) -> str:
    run = progress.run
    floor = sum(floor_calls(BY_NAME[n], stored.get(n, (0, 0))[0]) for n in RESOURCES) if whole else len(RESOURCES)
    total_bytes = sum(size for _, size in stored.values())
    fetched = sum(int(c.get("fetched", 0)) for c in (run.get("counts") or {}).values())
    return (
        f"run {run.get('runId')} {run.get('status')} ({run.get('trigger')}, {run.get('mode')}): "
        f"{fetched} records fetched, {int(run.get('apiCalls') or 0)} API calls (floor {floor}"
        f"{'' if whole else ': one per resource'}), {int(run.get('rateLimited') or 0)} rate-limited, "
        f"waited {float(run.get('waitedSeconds') or 0):.1f} s, {progress.elapsed:.1f} s, "
        f"{total_bytes / 1024:.0f} KiB stored"
    )
