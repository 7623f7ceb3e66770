"""What pass a run makes over one resource: its kind, where it starts, what it asks Xero for, whether it resumes.

- `initial`: nothing imported yet; `full`: a reconciliation (asked for, or the resource's last one is older than
  full_interval); `incremental`: what changed since the resource's mark (If-Modified-Since, frozen for the pass, less
  an overlap), or, for offset paging, on from the last number read. Resources Xero cannot filter, and those whose
  deletes make records vanish, are re-read whole on every pass and diffed.
- Append-only resources (catalogue `append_only`) skip the periodic reconciliation; a full sync asked for re-reads
  them.
- A pass stopped between two pages resumes from its checkpoint: the same kind, the same If-Modified-Since.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from xero_sync.catalogue import Paging, ResourceSpec
from xero_sync.engine.context import EngineOptions
from xero_sync.engine.pages import start_of
from xero_sync.models import PassCheckpoint
from xero_sync.schemas import SyncMode

PassKind = Literal["initial", "full", "incremental"]


@dataclass(frozen=True)
class Plan:
    kind: PassKind
    start: int  # the first page, or offset
    since: datetime | None  # If-Modified-Since
    resumed: bool  # continues a pass an earlier invocation began
    whole: bool  # reads everything Xero shows (a resumed one only from where it stopped)

    @property
    def reconciles(self) -> bool:
        return self.kind != "incremental"


def _kind(cp: PassCheckpoint, mode: SyncMode, clock: Callable[[], datetime], options: EngineOptions) -> PassKind:
    if cp.full_synced_at is None:
        return "initial" if cp.modified_since is None and cp.journal_offset is None else "full"
    if mode == "full" or cp.full_synced_at < clock() - options.full_interval:
        return "full"
    return "incremental"


def plan_pass(
    spec: ResourceSpec, cp: PassCheckpoint, mode: SyncMode, clock: Callable[[], datetime], options: EngineOptions
) -> Plan:
    by_offset = spec.paging is Paging.OFFSET
    if cp.pass_kind is not None and cp.next_page is not None:
        kind: PassKind = cp.pass_kind  # type: ignore[assignment]
        since = cp.pass_since
        return Plan(
            kind, int(cp.next_page), since, resumed=True, whole=kind != "incremental" if by_offset else since is None
        )
    kind = _kind(cp, mode, clock, options)
    if spec.append_only and kind == "full" and mode != "full":
        # Never edited or deleted: the periodic reconciliation, which would cost a call per page of them, skips
        # them; a full sync asked for re-reads them.
        kind = "incremental"
    if by_offset:
        start = int(cp.journal_offset or 0) if kind == "incremental" else start_of(spec)
        return Plan(kind, start, None, resumed=False, whole=kind != "incremental")
    since = None
    if kind == "incremental" and spec.incremental and cp.modified_since is not None:
        since = cp.modified_since - options.ims_overlap
    return Plan(kind, start_of(spec), since, resumed=False, whole=since is None)
