"""What every part of a run shares: its options, its checkpoints (a port tests may wrap), its hooks and totals."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist

from xero_sync.config import get_settings
from xero_sync.engine.outcomes import OutOfTime, RunTotals
from xero_sync.models import PassCheckpoint, PendingContacts, checkpoint_items
from xero_sync.record_store import RecordStore
from xero_sync.schemas import SyncMode
from xero_sync.xero_api import XeroApi
from xero_sync.xero_pacing import Stopped


@dataclass(frozen=True)
class EngineOptions:
    """The engine's settings (`options_from_settings`: their values and defaults are config.Settings')."""

    full_interval: timedelta
    ims_overlap: timedelta
    time_margin_seconds: float
    workers: int
    offline_retry_seconds: int  # a 503 that outlasts the retries, or a token set not refreshable for now


def options_from_settings() -> EngineOptions:
    settings = get_settings()
    return EngineOptions(
        full_interval=timedelta(seconds=settings.full_reconciliation_seconds),
        ims_overlap=timedelta(seconds=settings.ims_overlap_seconds),
        time_margin_seconds=settings.sync_time_margin_seconds,
        workers=settings.xero_max_in_flight,
        offline_retry_seconds=settings.xero_retry_later_seconds,
    )


def _nothing(_: object) -> None:
    return None


@dataclass(frozen=True)
class EngineHooks:
    """Where a test steps into a run (a worker dying at a checkpoint, passes held in an order); nothing by default."""

    before_pass: Callable[[str], None] = _nothing  # given the resource's name
    after_pass: Callable[[str], None] = _nothing
    before_save: Callable[[PassCheckpoint], None] = _nothing  # a pass checkpoint about to be written
    after_save: Callable[[PassCheckpoint], None] = _nothing


class CheckpointStore:
    """A client's checkpoints as the engine reads and writes them (consistent reads: a continuation may run at once
    after the invocation that wrote them)."""

    def __init__(self, client_id: str, run_id: str | None, clock: Callable[[], datetime], hooks: EngineHooks) -> None:
        self.client_id = client_id
        self.run_id = run_id
        self.clock = clock
        self.hooks = hooks

    def load(self, resource: str) -> PassCheckpoint:
        try:
            return PassCheckpoint.get(self.client_id, resource, consistent_read=True)
        except DoesNotExist:
            return self._new(resource)

    def load_all(self, resources: Iterable[str]) -> dict[str, PassCheckpoint]:
        """These resources' checkpoints from one consistent Query of the client's items: one round trip, however many
        resources (a resource never imported nor tried has a new one)."""
        stored = {
            item.resource: item
            for item in checkpoint_items(self.client_id, consistent_read=True)
            if isinstance(item, PassCheckpoint)
        }
        return {resource: stored.get(resource) or self._new(resource) for resource in resources}

    def _new(self, resource: str) -> PassCheckpoint:
        """The checkpoint of a resource never imported nor tried."""
        return PassCheckpoint(client_id=self.client_id, resource=resource, updated_at=self.clock())

    def save(self, checkpoint: PassCheckpoint) -> None:
        self.hooks.before_save(checkpoint)
        checkpoint.run_id = self.run_id
        checkpoint.updated_at = self.clock()
        checkpoint.save()
        self.hooks.after_save(checkpoint)

    def done_in_this_run(self, checkpoint: PassCheckpoint) -> bool:
        """Whether an earlier invocation of this run (a continuation) completed the resource's pass."""
        return self.run_id is not None and checkpoint.run_id == self.run_id and checkpoint.pass_kind is None

    # --- contacts to re-read (passes.remember_contacts, passes.follow_up) ---------------------------------------
    def pending_contacts(self) -> set[str]:
        try:
            item = PendingContacts.get(self.client_id, PendingContacts.KEY, consistent_read=True)
        except DoesNotExist:
            return set()
        return set(item.pending_contacts or ())

    def add_pending_contacts(self, entries: set[str]) -> None:
        PendingContacts(client_id=self.client_id, resource=PendingContacts.KEY).update(
            actions=[PendingContacts.pending_contacts.add(entries), PendingContacts.updated_at.set(self.clock())]
        )

    def drop_pending_contacts(self, entries: set[str]) -> None:
        PendingContacts(client_id=self.client_id, resource=PendingContacts.KEY).update(
            actions=[PendingContacts.pending_contacts.delete(entries)]
        )


@dataclass
class Context:
    """One run's shared state, as its passes see it."""

    client_id: str
    api: XeroApi
    store: RecordStore
    checkpoints: CheckpointStore
    mode: SyncMode
    options: EngineOptions
    clock: Callable[[], datetime]
    remaining_seconds: Callable[[], float] | None
    hooks: EngineHooks
    totals: RunTotals = field(default_factory=RunTotals)
    # When (Xero's clock) this run's whole read of the contacts began, once known: a contact whose document changed
    # before it needs no re-read.
    contacts_read_from: datetime | None = None

    def __post_init__(self) -> None:
        self.api.time_left = self.time_left  # a 429's wait, too, must end within the invocation's time

    def time_left(self) -> float | None:
        """Seconds of the invocation left before its margin (what saving and queueing a continuation needs); None
        when it has no deadline."""
        if self.remaining_seconds is None:
            return None
        return self.remaining_seconds() - self.options.time_margin_seconds

    def check_time(self) -> None:
        """Before each call: another pass stopped the run, or too little of the invocation's time is left."""
        if self.api.stop.is_set():
            raise Stopped
        left = self.time_left()
        if left is not None and left < 0:
            raise OutOfTime
