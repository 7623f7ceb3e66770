"""Deleting a client (DELETE /clients/{id}): mark it deleted at once, then queue its purge (purge.py).

`delete_client` writes the deleted mark with a conditional update: from then on the client is a 404 for every route
and is invisible to every flow (`clients.load_client`), it leaves the link-state index, it is unlinked (so no sync
can claim it) and its active run is closed. It then queues the first purge message and answers 202. Deleting again
is harmless: it queues the purge again (a no-op if one is under way, a restart where a lost message had stopped it).
Until its purge ends the client waits under PURGE_PARTITION of the pending-cleanups index, so a purge whose first
message never went out (SQS failing, the request killed) is queued again by the nightly dispatch
(`requeue_stalled_purges`): nothing a practice deleted stays stored.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field
from pynamodb.exceptions import DoesNotExist, UpdateError

from xero_sync import aws_clients
from xero_sync.config import get_settings
from xero_sync.errors import ClientNotFound
from xero_sync.events import link_changed, publish
from xero_sync.ids import PracticeId
from xero_sync.models import PURGE_PARTITION, Client, LinkState, SyncRun, condition_failed
from xero_sync.observability import logger, metrics
from xero_sync.runs import close_current_run, now_utc
from xero_sync.schemas import ApiModel

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

DELETED_REASON = "Deleted by the practice"
SQS_MAX_DELAY_SECONDS = 900


class PurgeMessage(ApiModel):
    """One slice of one client's purge: the step it belongs to and where the previous slice got to."""

    practice_id: PracticeId
    client_id: str = Field(min_length=36, max_length=36)
    step: int = Field(ge=0)
    phase: str | None = Field(default=None, max_length=128)  # None: from the beginning
    after: str | None = Field(default=None, max_length=2048)  # the last key the phase deleted


class DeleteAccepted(ApiModel):
    client_id: str
    status: Literal["deleting"] = "deleting"


class PurgeQueue:
    """The purge queue (one message at a time: a purge sends one continuation per slice)."""

    def __init__(self, queue_url: str | None = None, sqs: "SQSClient | None" = None) -> None:
        self._queue_url = queue_url or get_settings().purge_queue_url
        self._given = sqs

    @cached_property
    def _sqs(self) -> "SQSClient":
        return self._given or aws_clients.sqs()

    def send(self, message: PurgeMessage, delay_seconds: int = 0) -> None:
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=message.model_dump_json(),
            DelaySeconds=max(0, min(SQS_MAX_DELAY_SECONDS, delay_seconds)),
        )


# --- DELETE /clients/{id} --------------------------------------------------------------------------------------------
def delete_client(practice_id: str, client_id: str, queue: PurgeQueue | None = None) -> DeleteAccepted:
    """Marks the client deleted (a 404 everywhere from now on) and queues its purge. Another practice's client, or
    one already purged, is a ClientNotFound; one whose deletion is under way is accepted again."""
    try:
        client = Client.get(practice_id, client_id, consistent_read=True)
    except DoesNotExist:
        raise ClientNotFound() from None
    if client.deleting_since is None:
        client, marked = _mark_deleted(client)
        if marked:  # a racing DELETE that marked it first said so
            publish(link_changed(client, "deleted"))
        metrics.add_metric(name="ClientsDeleted", unit="Count", value=1)
        logger.info("client marked deleted", extra={"client_id": client_id})
    close_current_run(client, "client_deleted")  # also one an earlier DELETE, stopped midway, left open
    if not _queue_purge(client, queue or PurgeQueue()):  # the deletion stands; the nightly dispatch queues its purge
        metrics.add_metric(name="PurgesNotQueued", unit="Count", value=1)
    return DeleteAccepted(client_id=client_id)


def _mark_deleted(client: Client) -> tuple[Client, bool]:
    """The client as marked, and whether this call marked it (False: a racing DELETE did)."""
    now = now_utc()
    try:
        client.update(
            actions=[
                Client.deleting_since.set(now),
                Client.purge_step.set(0),
                # Unlinked, so no claim can be taken any more (runs._claimable), and out of the link-state index.
                Client.link_state.set(LinkState.UNLINKED.value),
                Client.link_state_reason.set(DELETED_REASON),
                Client.link_state_key.remove(),
                Client.cleanup_partition.set(PURGE_PARTITION),  # until the purge ends: requeue_stalled_purges
                Client.updated_at.set(now),
            ],
            condition=Client.practice_id.exists() & Client.deleting_since.does_not_exist(),
        )
    except UpdateError as error:
        if not condition_failed(error):
            raise
        try:
            client.refresh(consistent_read=True)  # a racing DELETE marked it first
        except DoesNotExist:
            raise ClientNotFound() from None  # or it was purged meanwhile
        return client, False
    # No run can be taken from now on (unlinked): the last one a worker took is the last that can write.
    not_before = _last_sync_writes_end(client.client_id, now)
    if not_before is not None:
        hold_purge_until(client, not_before)
    return client, True


def hold_purge_until(client: Client, not_before: datetime) -> None:
    """No slice of the client's purge runs before `not_before` (process_purge_message waits until then)."""
    client.update(actions=[Client.purge_not_before.set(not_before)], condition=Client.client_id.exists())


def sync_grace() -> timedelta:
    """How long a sync's worker may still write after its run was closed under it (it learns so at its next
    heartbeat, and its invocation has surely ended by then)."""
    return timedelta(seconds=get_settings().purge_sync_grace_seconds)


def _last_sync_writes_end(client_id: str, now: datetime) -> datetime | None:
    """When a worker of the client's last sync can write no more (its invocation has surely ended), if that is still
    to come: a run still on, or one closed under its worker (an unlink just before: the worker learns it only at its
    next heartbeat, and may write a page or two meanwhile). None: no worker can be writing."""
    grace = sync_grace()
    for run in SyncRun.query(client_id, scan_index_forward=False, consistent_read=True, page_size=10):
        if run.started_at is None:  # never taken by a worker (queued, or failed to queue)
            continue
        if run.finished_at is None:
            return now + grace
        if run.error_code in _CLOSED_UNDER_ITS_WORKER and run.finished_at + grace > now:
            return run.finished_at + grace
        return None  # its worker ended it: that was its last write
    return None


_CLOSED_UNDER_ITS_WORKER = frozenset({"client_unlinked", "worker_lost"})


def _queue_purge(client: Client, queue: PurgeQueue) -> bool:
    """Queues the client's current purge step from the beginning: a no-op when a slice of it is under way or its
    message is waiting (one of the two is dropped), the restart when a message was lost. False when SQS did not
    take it (logged): the nightly dispatch queues it again."""
    message = PurgeMessage(practice_id=client.practice_id, client_id=client.client_id, step=int(client.purge_step or 0))
    try:
        queue.send(message, delay_seconds=seconds_until(client.purge_not_before))
    except (BotoCoreError, ClientError) as error:  # SQS unreachable or failing after botocore's own retries
        logger.error("purge not queued", extra={"error": type(error).__name__, "client_id": client.client_id})
        return False
    return True


@dataclass(frozen=True)
class PurgesRequeued:
    """What the nightly dispatch did with the stalled purges."""

    queued: int = 0  # queued again
    not_queued: int = 0  # SQS did not take its message, or anything else failed (each logged): tried the next night


def requeue_stalled_purges(queue: PurgeQueue | None = None) -> PurgesRequeued:
    """Queues again the purge of every deleted client no slice is working on (its lease lapsed or never taken): the
    nightly dispatch's. A purge that is only between slices or waiting gets a duplicate, which its step drops.
    One client's purge failing to queue in a way not foreseen (a value no message takes, an error of ours) is logged
    and counted, and stays pending for the next night: it must not stop the others', nor the rest of the dispatch."""
    queue = queue or PurgeQueue()
    now = now_utc()
    queued = not_queued = 0
    for client in Client.pending_cleanups.query(PURGE_PARTITION):  # every one has deleting_since: set together
        lease = client.purge_lease_expires_at
        if lease is not None and lease > now:
            continue
        try:
            sent = _queue_purge(client, queue)
        except Exception as error:
            logger.error(
                "stalled purge not queued again",
                extra={"client_id": client.client_id, "error": type(error).__name__},
            )
            sent = False
        if sent:
            queued += 1
        else:
            not_queued += 1
    return PurgesRequeued(queued, not_queued)


def seconds_until(moment: datetime | None) -> int:
    if moment is None:
        return 0
    return max(0, math.ceil((moment - now_utc()).total_seconds()))
