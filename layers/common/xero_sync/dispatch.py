"""The nightly fan-out: one sync message per linked client, read from the link-state index page by page.

Nothing is written per client here: each message carries a run id and the worker claims the run with a conditional
write (runs.begin_run), so a message for a client that is already syncing simply does nothing. The schedule's fan-out
derives each run id from the time the schedule fired and the client (ids.scheduled_run_id): when Lambda or Scheduler
retries the invocation (a failure after the messages went out), the retry's messages name the runs the first made,
and each client is still synced once that night.
Clients the index shows as busy (a run queued or running, or parked on Xero's daily limit) are skipped up front to
save the message; unlinked and needs-relink clients are counted from their partitions of the index (a count query
each), never read. Memory stays flat: messages stream from the index pages into batches of ten.
After the fan-out the nightly run retries pending Xero clean-ups, queues stalled purges again and forgets token sets
no client names (token_sweep).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from xero_sync.clients import load_client, practice_of
from xero_sync.deletion import requeue_stalled_purges
from xero_sync.errors import ClientNotFound, ClientNotLinked, SyncNotQueued
from xero_sync.ids import CLIENT_ID_PATTERN, new_run_id, scheduled_run_id
from xero_sync.models import Client, LinkState, RunStatus, RunTrigger
from xero_sync.observability import logger, metrics
from xero_sync.queue import SyncQueue
from xero_sync.runs import now_utc
from xero_sync.schemas import RequestedMode, SyncMessage
from xero_sync.sync_requests import request_sync
from xero_sync.token_sweep import forget_orphaned_token_sets
from xero_sync.unlinking import retry_remote_cleanups

INDEX_PAGE_SIZE = 500
# SendMessageBatch calls at once. One after another, 10,000 clients' 1,000 calls at SQS's 10-20 ms each would take
# 10-20 s of the dispatch; eight at a time, a couple of seconds (the index is still read page by page, as they go).
SEND_IN_FLIGHT = 8


class ConsoleDispatch(BaseModel):
    """A direct invoke: the schedule's `{"trigger": "nightly", "scheduledTime": "<aws.scheduler.scheduled-time>"}`
    (Scheduler writes the time it fired for); an operator's `{}` (every linked client, as the nightly run would) or
    `{"clientIds": [...], "mode": "incremental" | "full"}` (just those, in that mode)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    trigger: Literal["nightly", "console"] = "console"
    client_ids: list[Annotated[str, StringConstraints(pattern=CLIENT_ID_PATTERN)]] | None = Field(
        default=None, alias="clientIds", min_length=1, max_length=1000
    )
    mode: RequestedMode | None = None
    scheduled_time: AwareDatetime | None = Field(default=None, alias="scheduledTime")

    @model_validator(mode="after")
    def _mode_names_clients(self) -> "ConsoleDispatch":
        # The nightly fan-out leaves each run's mode to the engine (a full reconciliation when one is due).
        if self.mode is not None and self.client_ids is None:
            raise ValueError("mode applies to the clients named in clientIds")
        if self.scheduled_time is not None and self.client_ids is not None:
            raise ValueError("scheduledTime applies to the fan-out to every linked client")
        return self


def _nightly_skips() -> dict[str, int]:
    return {"queued": 0, "running": 0, "deferred": 0, "unlinked": 0, "needs_relink": 0}


@dataclass
class DispatchSummary:
    queued: int = 0
    skipped: dict[str, int] = field(default_factory=_nightly_skips)  # by reason
    not_queued: int = 0
    failed: int = 0  # clients whose message could not be made, or whose console rerun raised (logged): not queued
    cleanups_pending: int = 0  # unlinked clients whose Xero connection could not be removed yet
    purges_requeued: int = 0  # deleted clients whose purge had stalled, queued again
    purges_not_requeued: int = 0  # stalled purges that could not be queued again (logged): tried the next night
    token_sets_forgotten: int = 0  # token sets (secret and ref) no client named, deleted

    def fan_out(self) -> dict[str, object]:
        """What the fan-out to the clients did, as both dispatches log it (the nightly clean-ups come after)."""
        return {"queued": self.queued, "skipped": self.skipped, "not_queued": self.not_queued, "failed": self.failed}


def dispatch(request: ConsoleDispatch) -> DispatchSummary:
    if request.client_ids is None:
        return dispatch_nightly(trigger=RunTrigger(request.trigger), scheduled=request.scheduled_time)
    return dispatch_clients(request.client_ids, request.mode or "incremental")


def dispatch_clients(client_ids: list[str], mode: RequestedMode = "incremental") -> DispatchSummary:
    """Queues a sync of each named client (as Sync Now would: a client already syncing keeps its run, counted as
    `active`; a full sync asked for here is not held to the API's once a day)."""
    summary = DispatchSummary(skipped={"not_found": 0, "not_linked": 0, "active": 0})
    for client_id in dict.fromkeys(client_ids):
        try:
            practice_id = practice_of(client_id)
            before = load_client(practice_id, client_id)
            active = before.current_run_id if before.has_active_run(now_utc()) else None
            if request_sync(practice_id, client_id, RunTrigger.CONSOLE, mode).run_id == active:
                summary.skipped["active"] += 1  # its run was under way already: nothing was queued
                continue
        except ClientNotFound:
            summary.skipped["not_found"] += 1
            continue
        except ClientNotLinked:
            summary.skipped["not_linked"] += 1
            continue
        except SyncNotQueued:
            summary.not_queued += 1
            continue
        except Exception as error:
            # As in the nightly fan-out: one client that raises anything else (a value no message takes, an error of
            # ours) must not stop the clients named after it. Its id and the error's type only: the text may hold data.
            logger.error("console sync request failed", extra={"client_id": client_id, "error": type(error).__name__})
            summary.failed += 1
            continue
        summary.queued += 1
    logger.info("console dispatch done", extra=summary.fan_out())
    return summary


def _nightly_messages(
    summary: DispatchSummary, trigger: RunTrigger, scheduled: datetime | None
) -> Iterator[SyncMessage]:
    now = now_utc()
    for client in Client.by_link_state.query(LinkState.LINKED.value, page_size=INDEX_PAGE_SIZE):
        # One client whose message cannot be made (a value no message takes, stored by a write that is not the
        # API's; an error of ours) must not stop the fan-out to the clients after it, nor the clean-ups after the
        # fan-out: it is logged and counted, and the others go on. Reading the index failing stops the dispatch.
        try:
            if client.has_active_run(now):
                summary.skipped[client.current_run_status or RunStatus.QUEUED.value] += 1
                continue
            message = SyncMessage(
                practice_id=client.practice_id,
                client_id=client.client_id,
                run_id=scheduled_run_id(scheduled, client.client_id) if scheduled else new_run_id(now),
                trigger=trigger,
            )
        except Exception as error:
            logger.error(
                "nightly sync message not made", extra={"client_id": client.client_id, "error": type(error).__name__}
            )
            summary.failed += 1
            continue
        yield message


def dispatch_nightly(
    queue: SyncQueue | None = None, trigger: RunTrigger = RunTrigger.NIGHTLY, scheduled: datetime | None = None
) -> DispatchSummary:
    """`scheduled`: the time the schedule fired for (the same at every retry of one firing), or None (an operator's
    `{}`: fresh runs)."""
    summary = DispatchSummary()
    messages = _nightly_messages(summary, trigger, scheduled)
    unsent = len((queue or SyncQueue()).send(_counted(messages, summary), in_flight=SEND_IN_FLIGHT))
    summary.queued -= unsent
    summary.not_queued = unsent
    for state in (LinkState.UNLINKED, LinkState.NEEDS_RELINK):
        summary.skipped[state.value] = Client.by_link_state.count(state.value)
    logger.info("nightly dispatch done", extra=summary.fan_out())
    metrics.add_metric(name="ClientsQueued", unit="Count", value=summary.queued)
    for reason, count in summary.skipped.items():
        metrics.add_metric(name=f"ClientsSkipped_{reason}", unit="Count", value=count)
    metrics.add_metric(name="ClientsNotQueued", unit="Count", value=summary.not_queued)
    metrics.add_metric(name="ClientsFailed", unit="Count", value=summary.failed)
    summary.cleanups_pending = retry_remote_cleanups()
    purges = requeue_stalled_purges()
    summary.purges_requeued, summary.purges_not_requeued = purges.queued, purges.not_queued
    metrics.add_metric(name="PurgesRequeued", unit="Count", value=summary.purges_requeued)
    metrics.add_metric(name="PurgesNotRequeued", unit="Count", value=summary.purges_not_requeued)
    summary.token_sets_forgotten = forget_orphaned_token_sets()
    metrics.add_metric(name="TokenSetsForgotten", unit="Count", value=summary.token_sets_forgotten)
    return summary


def _counted(messages: Iterator[SyncMessage], summary: DispatchSummary) -> Iterator[SyncMessage]:
    for message in messages:
        summary.queued += 1
        yield message
