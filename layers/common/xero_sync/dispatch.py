"""The nightly fan-out: one sync message per linked client, read from the sparse index page by page.

Nothing is written per client here: each message carries a fresh run id and the worker claims the run with a
conditional write (runs.begin_run), so a message for a client that is already syncing simply does nothing.
Clients the index shows as busy are skipped up front to save the message.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from xero_sync.ids import new_run_id
from xero_sync.linking import retry_remote_cleanups
from xero_sync.models import LINKED_PARTITION, Client, RunTrigger
from xero_sync.observability import logger, metrics
from xero_sync.queue import SyncQueue
from xero_sync.runs import has_active_run, now_utc
from xero_sync.schemas import SyncMessage

INDEX_PAGE_SIZE = 500


@dataclass
class DispatchSummary:
    queued: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: {"already_active": 0})
    not_queued: int = 0
    cleanups_pending: int = 0  # unlinked clients whose Xero connection could not be removed yet


def _nightly_messages(summary: DispatchSummary) -> Iterator[SyncMessage]:
    now = now_utc()
    for client in Client.linked_clients.query(LINKED_PARTITION, page_size=INDEX_PAGE_SIZE):
        if has_active_run(client, now):
            summary.skipped["already_active"] += 1
            continue
        yield SyncMessage(
            practice_id=client.practice_id,
            client_id=client.client_id,
            run_id=new_run_id(now),
            trigger=RunTrigger.NIGHTLY,
        )


def dispatch_nightly(queue: SyncQueue | None = None) -> DispatchSummary:
    summary = DispatchSummary()
    messages = _nightly_messages(summary)
    unsent = len((queue or SyncQueue()).send(_counted(messages, summary)))
    summary.queued -= unsent
    summary.not_queued = unsent
    logger.info(
        "nightly dispatch done",
        extra={"queued": summary.queued, "skipped": summary.skipped, "not_queued": summary.not_queued},
    )
    metrics.add_metric(name="ClientsQueued", unit="Count", value=summary.queued)
    metrics.add_metric(name="ClientsSkipped", unit="Count", value=sum(summary.skipped.values()))
    metrics.add_metric(name="ClientsNotQueued", unit="Count", value=summary.not_queued)
    summary.cleanups_pending = retry_remote_cleanups()
    return summary


def _counted(messages: Iterator[SyncMessage], summary: DispatchSummary) -> Iterator[SyncMessage]:
    for message in messages:
        summary.queued += 1
        yield message
