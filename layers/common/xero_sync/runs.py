"""Sync runs and the one-run-per-client claim: a run's life from its worker's side (begin, suspend, finish). Queuing a
run is `sync_requests`; the heartbeat that keeps a running sync's claim alive, `run_heartbeat`; a client's history
of runs, `run_history`.

A client holds at most one active run: `current_run_id` on the client item, claimed by a conditional write and
lapsing at `current_run_expires_at` (so a crashed worker or a dead-lettered message never blocks a client for
good). Every transition below is conditional, so duplicate or out-of-order messages cannot start a second run.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from xero_sync.clients import load_client
from xero_sync.config import get_settings
from xero_sync.errors import ClientNotFound, run_error_message
from xero_sync.events import publish, sync_ended
from xero_sync.models import (
    ACTIVE_RUN_STATUSES,
    Client,
    LinkState,
    RunStatus,
    SyncRun,
)
from xero_sync.observability import logger, metrics
from xero_sync.schemas import SyncMessage
from xero_sync.tables import shared_connection
from xero_sync.xero_pacing import WaitReason


def now_utc() -> datetime:
    return datetime.now(UTC)


def lease_until(now: datetime) -> datetime:
    """When a claim taken or renewed now lapses if nobody renews it (a queued or waiting run's)."""
    return now + timedelta(seconds=get_settings().run_lease_seconds)


def worker_lease_until(now: datetime) -> datetime:
    """When a claim its holder must keep renewing lapses (a running run's; a sync request's until its message is
    sent)."""
    return now + timedelta(seconds=get_settings().worker_lease_seconds)


def claimable(now: datetime) -> Condition:
    """The condition for taking a client's claim: it exists, is linked, and no run holds it (or its claim lapsed)."""
    no_active_run = Client.current_run_id.does_not_exist() | (Client.current_run_expires_at < now)
    condition: Condition = Client.practice_id.exists() & (Client.link_state == LinkState.LINKED.value) & no_active_run
    return condition


def no_worker_running(now: datetime) -> Condition:
    """The condition that no worker holds the client's run running (its claim lapsed if one did)."""
    lapsed = Client.current_run_expires_at < now
    condition: Condition = (Client.current_run_status != RunStatus.RUNNING.value) | lapsed
    return condition


def refused_parts(error: TransactWriteError) -> set[int]:
    """The parts of a cancelled transaction (their places in it) whose condition failed."""
    reasons = error.cancellation_reasons
    return {
        place for place, reason in enumerate(reasons) if reason is not None and reason.code == "ConditionalCheckFailed"
    }


def refused_on_a_condition(error: TransactWriteError) -> bool:
    """Whether DynamoDB refused the transaction because a condition failed (someone else changed an item first),
    not for a reason that passes (a conflicting transaction at that moment, throttling) or an error."""
    return bool(refused_parts(error))


def cancelled_in_passing(error: BaseException) -> bool:
    """Whether DynamoDB cancelled the transaction, writing nothing, for a reason that passes. An error that is not a
    cancellation (a timeout, a 500 botocore has already retried) may have been applied: trying it again would meet
    its own write."""
    return (
        isinstance(error, TransactWriteError) and bool(error.cancellation_reasons) and not refused_on_a_condition(error)
    )


# A transaction DynamoDB cancels in passing is tried again (a refusal drops the message or the claim's end).
retry_cancelled_in_passing = retry(
    retry=retry_if_exception(cancelled_in_passing),
    stop=stop_after_attempt(3),
    wait=wait_random_exponential(multiplier=0.05, max=1.0),
    reraise=True,
)


@dataclass(frozen=True)
class RunKey:
    practice_id: str
    client_id: str
    run_id: str


@dataclass(frozen=True)
class BegunRun:
    client: Client
    run: SyncRun
    deferred_until: datetime | None = None  # a run parked on Xero's day limit: when that limit resets


def begin_run(message: SyncMessage) -> BegunRun | None:
    """Takes the run this message names, or returns None when the message must be dropped (a duplicate, a run
    already finished, a client that has another run, or is gone or unlinked)."""
    now = now_utc()
    try:
        client = load_client(message.practice_id, message.client_id)
    except ClientNotFound:
        logger.info("sync message for a client that no longer exists: dropped")
        return None
    try:
        run = SyncRun.get(message.client_id, message.run_id, consistent_read=True)
    except DoesNotExist:
        run = None

    if run is not None and run.status not in ACTIVE_RUN_STATUSES:
        logger.info("sync message for a finished run: dropped", extra={"run_status": run.status})
        return None
    if run is None:
        # A nightly message: the run is created here, by the claim, so an overlapping or duplicate one is a no-op.
        run = SyncRun(
            client_id=message.client_id,
            run_id=message.run_id,
            practice_id=message.practice_id,
            trigger=message.trigger.value,
            mode=message.mode,
            queued_at=now,
        )
        owns_claim: Condition = claimable(now)
        run_condition: Condition = SyncRun.run_id.does_not_exist()
    else:
        # Claimed at request time (Sync Now, link): the client must still name this run, and a run already
        # running is taken over only once its worker's claim has lapsed (a duplicate delivery must not run it twice).
        owns_claim = (
            (Client.current_run_id == message.run_id)
            & (Client.link_state == LinkState.LINKED.value)
            & no_worker_running(now)
        )
        run_condition = SyncRun.status.is_in(*(s.value for s in ACTIVE_RUN_STATUSES))
    deferred_until = run.resumes_at if run.status == RunStatus.DEFERRED.value else None
    run.status = RunStatus.RUNNING.value
    run.started_at = run.started_at or now
    run.waiting_reason = run.resumes_at = run.progress = None
    claim = [
        Client.current_run_id.set(message.run_id),
        Client.current_run_status.set(RunStatus.RUNNING.value),
        Client.current_run_expires_at.set(worker_lease_until(now)),
    ]
    try:
        take_claim(client, claim, owns_claim, run, run_condition)
    except TransactWriteError as error:
        if not refused_on_a_condition(error):
            raise  # the message goes back to the queue
        logger.info("sync message lost the claim (another run is active or the client is not linked): dropped")
        if run.run_id == client.current_run_id and client.link_state == LinkState.NEEDS_RELINK.value:
            end_stranded_run(message, relink_code(client.link_state_reason))
        return None
    client.refresh(consistent_read=True)
    return BegunRun(client=client, run=run, deferred_until=deferred_until)


def take_claim(
    client: Client, claim: Sequence[Action], condition: Condition, run: SyncRun, run_condition: Condition
) -> None:
    """Writes a client's claim and the run it is for in one transaction (TransactWriteError: refused), as `client`
    was read: the run it named, if another, had its claim lapse (its worker died) and ends in the same
    transaction, failed as lost. Closed after the claim instead, a claimer killed in between would leave it running
    for ever: nobody names it any more."""
    named = client.current_run_id
    as_read = Client.current_run_id == named if named else Client.current_run_id.does_not_exist()
    lapsed = named if named != run.run_id else None
    try:
        _write_claim(client, claim, condition & as_read, run, run_condition, lapsed)
    except TransactWriteError as error:
        if lapsed is None or not _refused_by_the_lapsed_run_alone(error):
            raise
        logger.warning("the lapsed run the client named had ended", extra={"lapsed_run_id": lapsed})
        _write_claim(client, claim, condition & as_read, run, run_condition, None)
        return
    if lapsed:
        _run_ended(RunKey(client.practice_id, client.client_id, lapsed), RunStatus.FAILED, "worker_lost")


@retry_cancelled_in_passing
def _write_claim(
    client: Client,
    claim: Sequence[Action],
    condition: Condition,
    run: SyncRun,
    run_condition: Condition,
    lost: str | None,
) -> None:
    with TransactWrite(connection=shared_connection()) as transaction:
        transaction.update(client, actions=list(claim), condition=condition)
        transaction.save(run, condition=run_condition)
        if lost:
            transaction.update(
                SyncRun(client_id=client.client_id, run_id=lost),
                actions=[
                    SyncRun.status.set(RunStatus.FAILED.value),
                    SyncRun.finished_at.set(now_utc()),
                    SyncRun.error_code.set("worker_lost"),
                    SyncRun.error_message.set(run_error_message("worker_lost")),
                ],
                condition=SyncRun.status.is_in(*(s.value for s in ACTIVE_RUN_STATUSES)),
            )


def _refused_by_the_lapsed_run_alone(error: TransactWriteError) -> bool:
    """Whether only the lapsed run's condition failed (it had ended), the claim itself being free to take."""
    reasons = list(getattr(error.cause, "cancellation_reasons", None) or [])
    return (
        len(reasons) == 3
        and reasons[0] is None
        and reasons[1] is None
        and reasons[2] is not None
        and reasons[2].code == "ConditionalCheckFailed"
    )


def finish_run(
    message: SyncMessage | RunKey,
    status: RunStatus,
    error_code: str | None = None,
    failed_resources: Iterable[str] = (),
    only_if: Condition | None = None,
) -> datetime | None:
    """Records the run's outcome and releases the client's claim (only if the client still names this run, and
    meets `only_if` if given: refused, nothing is written). A failure is recorded as its code and that code's fixed
    message (errors.RUN_ERROR_MESSAGES). The call that ends the run counts it and puts its one event (Xero Sync
    Succeeded / Failed), and returns the run's `finished_at`; one that finds it ended already does neither, and
    returns None."""
    now = now_utc()
    error_message = run_error_message(error_code) if error_code else None
    failed = sorted(failed_resources)
    if error_message and failed:  # our resource names, never anything Xero sent
        error_message = f"{error_message} Not imported this time: {', '.join(failed)}."
    run_actions: list[Action] = [
        SyncRun.status.set(status.value),
        SyncRun.finished_at.set(now),
        SyncRun.waiting_reason.remove(),
        SyncRun.error_code.set(error_code) if error_code else SyncRun.error_code.remove(),
        SyncRun.error_message.set(error_message) if error_message else SyncRun.error_message.remove(),
    ]
    if failed:
        run_actions.append(SyncRun.failed_resources.set(set(failed)))
    client_actions: list[Action] = [
        Client.current_run_id.remove(),
        Client.current_run_status.remove(),
        Client.current_run_expires_at.remove(),
    ]
    if status is RunStatus.SUCCEEDED:
        client_actions += [Client.last_successful_sync_at.set(now), Client.last_error.remove()]
    elif error_message:
        client_actions.append(Client.last_error.set(error_message))
    if _update_run_and_claim(message, run_actions, client_actions, only_if):
        _run_ended(message, status, error_code)
        return now
    if only_if is not None:
        return None
    # The client no longer names this run (its claim lapsed and another run took over): record the run alone,
    # unless it was closed meanwhile (the client was unlinked or deleted under it: that reason stands).
    run = SyncRun(client_id=message.client_id, run_id=message.run_id)
    try:
        run.update(actions=run_actions, condition=SyncRun.status.is_in(*(s.value for s in ACTIVE_RUN_STATUSES)))
    except UpdateError:
        return None
    _run_ended(message, status, error_code, run)  # the update answered the whole run
    return now


# Runs the practice closed (it unlinked or deleted their client) are not syncs that failed: counted as neither.
_CLOSED_BY_THE_PRACTICE = frozenset({"client_unlinked", "client_deleted"})


def close_current_run(client: Client, error_code: str) -> None:
    """Closes the run the client names, if any, as the practice's doing (`client_unlinked`, `client_deleted`): it
    must not go on, nor hold the client. A no-op once closed."""
    if client.current_run_id:
        finish_run(RunKey(client.practice_id, client.client_id, client.current_run_id), RunStatus.FAILED, error_code)


# The codes a client is moved to needs_relink with (unlinking.mark_needs_relink): its reason is the code's message.
_RELINK_CODES = ("token_revoked", "xero_forbidden")


def relink_code(link_state_reason: str | None) -> str:
    """The code a client's needs_relink reason is the message of (token_revoked if none matches)."""
    return next((c for c in _RELINK_CODES if run_error_message(c) == link_state_reason), "token_revoked")


def end_stranded_run(key: SyncMessage | RunKey, error_code: str) -> bool:
    """Ends, failed with `error_code` (the client's needs_relink code), a queued or deferred run whose client was moved
    to needs_relink under it: no worker will ever take it (begin_run needs a linked client), and it must not hold
    the client (a relink's sync, Sync Now) until its lease lapses. Only while the client still names it, still
    needs a relink and no worker holds it running; True when this call ended it (and put its one event)."""
    stranded = (Client.link_state == LinkState.NEEDS_RELINK.value) & no_worker_running(now_utc())
    return finish_run(key, RunStatus.FAILED, error_code, only_if=stranded) is not None


def _run_ended(
    message: SyncMessage | RunKey, status: RunStatus, error_code: str | None, ended: SyncRun | None = None
) -> None:
    """The one call that ended a run (its worker, a takeover, a failed send...) counts its outcome and puts its
    event: the run read back as stored, with the client's last successful sync as it now stands. The run is
    recorded already: a read that fails here loses the event (logged), never the run."""
    if status is RunStatus.SUCCEEDED:
        metrics.add_metric(name="SyncSucceeded", unit="Count", value=1)
    elif error_code not in _CLOSED_BY_THE_PRACTICE:
        metrics.add_metric(name="SyncFailed", unit="Count", value=1)
    try:
        run = ended or SyncRun.get(message.client_id, message.run_id, consistent_read=True)
        try:
            client = Client.get(message.practice_id, message.client_id, consistent_read=True)
            last_success = client.last_successful_sync_at
        except DoesNotExist:  # purged meanwhile
            last_success = None
    except Exception as error:
        logger.error("event not published", extra={"detail_type": "run ended", "error": type(error).__name__})
        metrics.add_metric(name="EventsNotPublished", unit="Count", value=1)
        return
    publish(sync_ended(run, last_success))


def suspend_run(
    message: SyncMessage,
    status: RunStatus,
    resumes_at: datetime | None = None,
    waiting_reason: WaitReason | None = None,
) -> bool:
    """Hands the run back to the queue (a continuation, a rate-limit wait, a day-limit deferral): the client keeps
    naming it, but as queued/deferred, so the continuation's begin_run can take it; the claim outlasts the wait.
    The run shows what it waits on until when. Returns False when the client no longer names this run."""
    now = now_utc()
    expires = lease_until(max(now, resumes_at or now))
    run_actions: list[Action] = [
        SyncRun.status.set(status.value),
        SyncRun.resumes_at.set(resumes_at) if resumes_at else SyncRun.resumes_at.remove(),
        SyncRun.waiting_reason.set(waiting_reason) if waiting_reason else SyncRun.waiting_reason.remove(),
        SyncRun.progress.remove(),
    ]
    if status is RunStatus.DEFERRED and resumes_at:
        run_actions.append(SyncRun.ages_from.set(resumes_at))  # a day-limit wait does not count in its age
    return _update_run_and_claim(
        message,
        run_actions=run_actions,
        client_actions=[Client.current_run_status.set(status.value), Client.current_run_expires_at.set(expires)],
    )


def outlived(run: SyncRun, now: datetime) -> bool:
    """Whether the run has gone on longer than RUN_MAX_AGE_SECONDS: since it was queued, or since its latest
    deferral to Xero's next day ended (waiting out the day limit is not held against it)."""
    since = max(run.queued_at, run.ages_from or run.queued_at)
    return (now - since).total_seconds() > get_settings().run_max_age_seconds


def _update_run_and_claim(
    message: SyncMessage | RunKey,
    run_actions: list[Action],
    client_actions: list[Action],
    only_if: Condition | None = None,
) -> bool:
    """Updates the run and its client's claim in one transaction, only while the client still names this run (and
    meets `only_if`) and the run has not ended; False (and nothing written) when it no longer does, or the run ended
    or does not exist. Raises TransactWriteError when DynamoDB kept failing it for another reason."""
    try:
        _transact_run_and_claim(message, run_actions, client_actions, only_if)
    except TransactWriteError as error:
        if refused_on_a_condition(error):
            return False
        raise
    return True


@retry_cancelled_in_passing
def _transact_run_and_claim(
    message: SyncMessage | RunKey, run_actions: list[Action], client_actions: list[Action], only_if: Condition | None
) -> None:
    names_it: Condition = Client.current_run_id == message.run_id
    with TransactWrite(connection=shared_connection()) as transaction:
        transaction.update(
            SyncRun(client_id=message.client_id, run_id=message.run_id),
            actions=run_actions,
            condition=SyncRun.status.is_in(*(s.value for s in ACTIVE_RUN_STATUSES)),
        )
        transaction.update(
            Client(practice_id=message.practice_id, client_id=message.client_id),
            actions=client_actions,
            condition=names_it & only_if if only_if is not None else names_it,
        )
