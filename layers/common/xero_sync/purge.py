"""Purging a deleted client (deletion.py marks it and queues the first message): everything it owns, in slices.

The purge (`process_purge_message`, the purge function's SQS event source) walks the client's items phase by
phase: Xero's side (the unlink's clean-up: its connection, and its token set once no client uses it), every records
partition of the catalogue, its sync runs, its checkpoints. Each slice deletes pages of keys with BatchWriteItem
(25 a call, unprocessed items retried with back-off) until its Lambda is near its end, then queues a continuation
naming where it got to (phase and last key), so any size works. The last slice checks every phase is empty, removes
the token set if Xero's clean-up never happened, and deletes the client item itself.

Idempotent under SQS's at-least-once delivery: the client item holds `purge_step`, the step a message must name to
act, and a lease (one slice at a time). A slice queues step n+1 and only then moves the client to it, so a crash
leaves a message that redoes the step; a duplicate of an earlier step, or a copy of a step another slice holds, is
dropped; a step that arrives before its predecessor has moved the client on goes back to the queue for a while.
"""

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from itertools import batched
from typing import Any, Literal, NoReturn

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError
from pynamodb.models import Model
from tenacity import (
    RetryCallState,
    retry,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_random_exponential,
)

from xero_sync.catalogue import CATALOGUE
from xero_sync.config import get_settings
from xero_sync.deletion import PurgeMessage, PurgeQueue, hold_purge_until, seconds_until, sync_grace
from xero_sync.models import CheckpointItem, Client, SyncRun, XeroRecord, condition_failed
from xero_sync.observability import logger, metrics
from xero_sync.runs import close_current_run, now_utc
from xero_sync.tokens import TokenStore
from xero_sync.unlinking import clean_up_remote

BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem maximum
PAGE_SIZE = 1000  # keys read per Query page (keys only: well under 1 MB)
CONTINUATION_DELAY = 2  # seconds
_UNPROCESSED_ATTEMPTS = 10
_LEASE_SLACK_SECONDS = 5


PurgeOutcome = Literal["done", "continued", "waiting", "dropped"]


class PurgeNotReady(Exception):
    """A step arrived before its predecessor moved the client on to it: back to the queue, tried again later."""


# --- what a client owns ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Phase:
    """One partition of one table that holds only this client's items."""

    name: str
    model: type[Model]
    hash_name: str  # the model's attribute names (DynamoDB's may be shorter: models.XeroRecord)
    hash_value: str
    range_name: str

    @property
    def key_names(self) -> list[str]:
        """The key's names in DynamoDB."""
        attributes = self.model.get_attributes()
        return [attributes[self.hash_name].attr_name, attributes[self.range_name].attr_name]

    def key(self, range_value: str) -> dict[str, dict[str, str]]:
        hash_key, range_key = self.key_names
        return {hash_key: {"S": self.hash_value}, range_key: {"S": range_value}}


XERO_PHASE = "xero"


def phases(client_id: str) -> list[Phase]:
    """Every partition of the client, in the order the purge walks them (records first, the small ones last)."""
    records = [
        Phase(
            f"records:{spec.name}", XeroRecord, "partition", XeroRecord.partition_key(client_id, spec.name), "xero_id"
        )
        for spec in CATALOGUE
    ]
    return [
        *records,
        Phase("runs", SyncRun, "client_id", client_id, "run_id"),
        Phase("checkpoints", CheckpointItem, "client_id", client_id, "resource"),
    ]


# --- the purge ------------------------------------------------------------------------------------------------------
def process_purge_message(
    message: PurgeMessage, remaining_seconds: Callable[[], float], queue: PurgeQueue | None = None
) -> PurgeOutcome:
    """Runs one slice of a client's purge; raises PurgeNotReady when the message must come back later."""
    logger.append_keys(client_id=message.client_id, purge_step=message.step)
    try:
        client = Client.get(message.practice_id, message.client_id, consistent_read=True)
    except DoesNotExist:
        logger.info("purge message for a client already purged: dropped")
        return "dropped"
    if client.deleting_since is None:
        logger.warning("purge message for a client that is not being deleted: dropped")
        return "dropped"
    step = int(client.purge_step or 0)
    if message.step < step:
        logger.info("purge message for an earlier step: dropped")
        return "dropped"
    if message.step > step:
        raise PurgeNotReady(f"step {message.step} arrived while the client is at step {step}")
    queue = queue or PurgeQueue()
    wait = seconds_until(client.purge_not_before)
    if wait > 0:  # a sync that was running when the client was deleted may still be writing
        queue.send(message, delay_seconds=wait)
        return "waiting"
    # A DELETE stopped before it closed the client's sync: the purge closes it, then waits until that sync's worker
    # (it learns so at its next heartbeat) can write no more.
    if client.current_run_id:
        close_current_run(client, "client_deleted")
        not_before = now_utc() + sync_grace()
        hold_purge_until(client, not_before)
        queue.send(message, delay_seconds=seconds_until(not_before))
        return "waiting"
    if not _take_lease(client, step, remaining_seconds()):
        logger.info("another invocation holds this purge step: dropped")
        return "dropped"

    slice_ = _Slice(client, remaining_seconds)
    position = slice_.run(message.phase, message.after)
    if position is None:
        _finish(client, step)
        return "done"
    phase, after = position
    # Queued before the client moves on (a crash in between leaves a message that redoes this step, never none),
    # and a little delayed, so it does not arrive before the move and wait out a visibility timeout.
    queue.send(message.model_copy(update={"step": step + 1, "phase": phase, "after": after}), CONTINUATION_DELAY)
    try:
        client.update(
            actions=[Client.purge_step.set(step + 1), Client.purge_lease_expires_at.remove()],
            condition=Client.purge_step == step,
        )
    except UpdateError as error:
        if not condition_failed(error):
            raise
        # This invocation outlived its lease and another took the step over: what both deleted is gone either way,
        # and whichever continuation is taken resumes from a position before which nothing is left.
        logger.info("another invocation took this purge step over: handing over to it")
        return "dropped"
    logger.info("purge continues in a new slice", extra={"phase": phase, "deleted": slice_.deleted})
    return "continued"


def _take_lease(client: Client, step: int, remaining: float) -> bool:
    now = now_utc()
    expires = now + timedelta(seconds=remaining + _LEASE_SLACK_SECONDS)
    try:
        client.update(
            actions=[Client.purge_lease_expires_at.set(expires)],
            condition=(Client.purge_step == step)
            & (Client.purge_lease_expires_at.does_not_exist() | (Client.purge_lease_expires_at < now)),
        )
    except UpdateError as error:
        if condition_failed(error):
            return False
        raise
    return True


class _Slice:
    """One invocation's share of the purge: deletes from a position until its time is nearly up."""

    def __init__(self, client: Client, remaining_seconds: Callable[[], float]) -> None:
        self.client = client
        self.remaining_seconds = remaining_seconds
        self.deleted = 0
        self.pages = 0
        self.phases = phases(client.client_id)

    def out_of_time(self) -> bool:
        """Time to hand over; never before the slice has read one page (every slice makes progress)."""
        return self.pages > 0 and self.remaining_seconds() <= get_settings().purge_time_margin_seconds

    def run(self, phase_name: str | None, after: str | None) -> tuple[str, str | None] | None:
        """Deletes on from (phase, after); returns where to go on from, or None when the client owns nothing more."""
        names = [XERO_PHASE, *(p.name for p in self.phases)]
        if phase_name not in names:  # the beginning (or a phase no longer in the catalogue: start over, harmless)
            phase_name, after = XERO_PHASE, None
        with ThreadPoolExecutor(max_workers=get_settings().purge_write_threads) as pool:
            while True:
                start = names.index(phase_name)
                if phase_name == XERO_PHASE:
                    _clean_up_xero(self.client)
                    start, after = 1, None
                for phase in self.phases[start - 1 :]:
                    if self.out_of_time():
                        return phase.name, None
                    stopped_at = self._purge_phase(pool, phase, after if phase.name == phase_name else None)
                    if stopped_at is not None:
                        return phase.name, stopped_at
                # Every phase walked: anything written behind the walk (a late writer) sends it round again.
                leftover = next((p for p in self.phases if _has_items(p)), None)
                if leftover is None:
                    return None
                logger.info("items found behind the purge: walked again", extra={"phase": leftover.name})
                phase_name, after = leftover.name, None

    def _purge_phase(self, pool: ThreadPoolExecutor, phase: Phase, after: str | None) -> str | None:
        """Deletes the phase's items after `after`; returns the last key deleted if time ran out first."""
        start_key = phase.key(after) if after is not None else None
        while True:
            page = phase.model.query(
                phase.hash_value,
                attributes_to_get=phase.key_names,
                limit=PAGE_SIZE,
                last_evaluated_key=start_key,
            )
            keys = [str(getattr(item, phase.range_name)) for item in page]
            self.pages += 1
            if keys:
                list(pool.map(lambda chunk: _delete_keys(phase, chunk), batched(keys, BATCH_WRITE_LIMIT, strict=False)))
                self.deleted += len(keys)
            start_key = page.last_evaluated_key
            if not start_key or not keys:
                return None
            if self.out_of_time():
                return keys[-1]


def _has_items(phase: Phase) -> bool:
    found = phase.model.query(phase.hash_value, attributes_to_get=phase.key_names, limit=1, consistent_read=True)
    return next(iter(found), None) is not None


def _delete_keys(phase: Phase, range_values: Sequence[str]) -> None:
    """One BatchWriteItem of deletes, and its unprocessed items (throttling) sent again until none is left."""
    _send_deletes(phase, [phase.key(value) for value in range_values])


def _unprocessed_left(state: RetryCallState) -> NoReturn:
    left = state.outcome.result() if state.outcome else []
    raise PutError(f"{len(left)} deletes stayed unprocessed after {state.attempt_number} attempts")


@retry(
    retry=retry_if_result(bool),
    stop=stop_after_attempt(_UNPROCESSED_ATTEMPTS),
    # Equal jitter: half the exponential step (0.05 s doubling, 2 s at most), plus up to as much again at random.
    wait=wait_exponential(multiplier=0.025, max=1.0) + wait_random_exponential(multiplier=0.025, max=1.0),
    retry_error_callback=_unprocessed_left,
)
def _send_deletes(phase: Phase, pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sends `pending` in one BatchWriteItem and leaves in it (and returns) what DynamoDB did not process."""
    response = phase.model._get_connection().batch_write_item(delete_items=pending)
    unprocessed = response.get("UnprocessedItems", {}).get(phase.model.Meta.table_name, [])
    pending[:] = [item["DeleteRequest"]["Key"] for item in unprocessed]
    return pending


# --- Xero's side and the token set ----------------------------------------------------------------------------------
def _clean_up_xero(client: Client) -> bool:
    """The unlink's clean-up (its connection at Xero, its token set once no client uses it), best effort: Xero
    being away does not hold the purge up. True when nothing is left to do."""
    if not client.token_set_id and not client.connection_id:
        return True
    done = clean_up_remote(client)
    if not done:
        logger.warning("Xero clean-up of a deleted client postponed to the end of its purge")
    return done


def _forget_token_set(client: Client) -> None:
    """Xero stayed away to the end: the client's tenant leaves its token set, and the set (its secret) goes once no
    client uses it. The connection at Xero is left to its user (we can no longer reach it)."""
    TokenStore().forget_tenant(client.token_set_id, client.tenant_id)
    metrics.add_metric(name="DeletedClientXeroCleanupAbandoned", unit="Count", value=1)
    logger.warning("a deleted client's connection at Xero could not be removed; its token set was forgotten")


def _finish(client: Client, step: int) -> None:
    """The last slice: Xero's side if it is still to do, then the client item itself."""
    try:
        client.refresh(consistent_read=True)
    except DoesNotExist:
        logger.info("the client item was removed by another slice")
        return
    if not _clean_up_xero(client):
        _forget_token_set(client)
    try:
        client.delete(condition=(Client.purge_step == step) & Client.deleting_since.exists())
    except DeleteError as error:
        if not condition_failed(error):
            raise
        logger.info("the client item was removed by another slice")
        return
    metrics.add_metric(name="ClientsPurged", unit="Count", value=1)
    logger.info("client purged")
