"""Queuing a sync of one client (Sync Now, a link, a console rerun): the claim of its run, taken at request time, and
the limit on full syncs asked for through the API. The run's life from there is `runs`.

The claim is held only as long as a worker's (WORKER_LEASE_SECONDS) until the message is out, then as long as a
message may wait in the queue (RUN_LEASE_SECONDS): a request that dies before sending frees the client in minutes,
not hours.
"""

import contextlib
import math
from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.update import Action

from xero_sync.clients import load_client
from xero_sync.config import get_settings
from xero_sync.errors import ClientNotLinked, FullSyncLimited, SyncContended, SyncNotQueued
from xero_sync.ids import new_run_id
from xero_sync.models import Client, LinkState, RunStatus, RunTrigger, SyncRun, condition_failed
from xero_sync.observability import logger
from xero_sync.queue import SyncQueue
from xero_sync.runs import claimable, finish_run, lease_until, now_utc, take_claim, worker_lease_until
from xero_sync.schemas import SyncAccepted, SyncMessage, SyncMode

_NOT_LINKED_REASONS = {
    LinkState.UNLINKED: "the client is unlinked from Xero; relink it to sync",
    LinkState.NEEDS_RELINK: "Xero no longer accepts this client's authorisation; relink it to sync",
}
_CLAIM_ATTEMPTS = 3


def _ensure_linked(client: Client) -> None:
    state = LinkState(client.link_state)
    if state is not LinkState.LINKED:
        raise ClientNotLinked(_NOT_LINKED_REASONS[state])


def _full_sync_period() -> timedelta:
    return timedelta(seconds=get_settings().full_sync_period_seconds)


def _ensure_full_sync_allowed(client: Client, now: datetime) -> None:
    last = client.last_full_sync_requested_at
    if last is not None and last > now - _full_sync_period():
        wait = math.ceil((last + _full_sync_period() - now).total_seconds())
        raise FullSyncLimited(
            f"a full sync of this client was asked for at {last.isoformat()}; the next may be in {max(1, wait)} s",
            wait,
        )


def _give_back_full_sync(client: Client, taken_at: datetime) -> None:
    """A full sync that could not be queued does not use up the client's period."""
    previous = client.last_full_sync_requested_at
    with contextlib.suppress(UpdateError):  # another request took the slot since: it stands
        Client(practice_id=client.practice_id, client_id=client.client_id).update(
            actions=[
                Client.last_full_sync_requested_at.set(previous)
                if previous
                else Client.last_full_sync_requested_at.remove()
            ],
            condition=Client.last_full_sync_requested_at == taken_at,
        )


def _sent(message: SyncMessage, queue: SyncQueue | None) -> bool:
    try:
        return not (queue or SyncQueue()).send([message])
    except (BotoCoreError, ClientError) as error:  # SQS unreachable or failing after botocore's own retries
        logger.error("sync message not sent", extra={"error": type(error).__name__})
        return False


def _hold_while_queued(client: Client, run_id: str) -> None:
    """The message is out: the claim now lasts as long as the message may wait in the queue, unless a worker has
    taken the run already (its own lease stands)."""
    try:
        Client(practice_id=client.practice_id, client_id=client.client_id).update(
            actions=[Client.current_run_expires_at.set(lease_until(now_utc()))],
            condition=(Client.current_run_id == run_id) & (Client.current_run_status == RunStatus.QUEUED.value),
        )
    except UpdateError as error:
        if not condition_failed(error):  # the run is queued all the same; its claim only lapses sooner
            logger.warning("queued claim not extended", extra={"error": type(error).__name__})


def request_sync(
    practice_id: str,
    client_id: str,
    trigger: RunTrigger,
    mode: SyncMode = "incremental",
    queue: SyncQueue | None = None,
) -> SyncAccepted:
    """Queues a sync of one client, or returns the run already queued or running (double clicks collapse).

    A full sync asked for through the API (trigger manual) is taken once per client per FULL_SYNC_PERIOD_SECONDS:
    the period is stamped by the claim's own conditional write, so only a sync actually queued uses it (a press
    answered with the run already queued does not); console reruns and the nightly run are exempt."""
    limit_full = trigger is RunTrigger.MANUAL and mode == "full"
    for _ in range(_CLAIM_ATTEMPTS):
        client = load_client(practice_id, client_id)
        _ensure_linked(client)
        now = now_utc()
        if client.has_active_run(now):
            assert client.current_run_id is not None
            return SyncAccepted(run_id=client.current_run_id, status=RunStatus(client.current_run_status))
        run = SyncRun(
            client_id=client_id,
            run_id=new_run_id(now),
            practice_id=practice_id,
            trigger=trigger.value,
            mode=mode,
            status=RunStatus.QUEUED.value,
            queued_at=now,
        )
        # Made before anything is written: a message that cannot be made leaves no run queued and no claim to lapse.
        message = SyncMessage(
            practice_id=practice_id, client_id=client_id, run_id=run.run_id, trigger=trigger, mode=mode
        )
        claim: list[Action] = [
            Client.current_run_id.set(run.run_id),
            Client.current_run_status.set(RunStatus.QUEUED.value),
            Client.current_run_expires_at.set(worker_lease_until(now)),  # until the message is out
        ]
        condition = claimable(now)
        if limit_full:
            _ensure_full_sync_allowed(client, now)
            claim.append(Client.last_full_sync_requested_at.set(now))
            condition &= Client.last_full_sync_requested_at.does_not_exist() | (
                Client.last_full_sync_requested_at <= now - _full_sync_period()
            )
        try:
            take_claim(client, claim, condition, run, SyncRun.run_id.does_not_exist())
        except TransactWriteError:  # refused (someone else claimed or changed the client), or cancelled in passing
            continue  # look again
        if not _sent(message, queue):
            finish_run(message, RunStatus.FAILED, "enqueue_failed")
            if limit_full:
                _give_back_full_sync(client, now)
            raise SyncNotQueued()
        _hold_while_queued(client, run.run_id)
        return SyncAccepted(run_id=run.run_id, status=RunStatus.QUEUED)
    raise SyncContended()
