"""What the sync_client function does with one message: take the run, import, record the outcome.

Outcomes of the engine (engine/outcomes.py) and what they do to the run:
- done: succeeded (the client records its last successful sync);
- continue: the Lambda ran short of time, or a minute limit / an offline organisation asks for a longer wait than
  is worth holding the Lambda for (or than it has left): the run goes back to `queued` and the same message is
  requeued (with the delay), unless the run has outlived RUN_MAX_AGE_SECONDS (runs.outlived): then it fails with
  what it waited on (`xero_unavailable`, `token_unavailable`, `rate_limited`; `run_expired` for a continuation);
- deferred: Xero's day limit: the run is `deferred` with `resumes_at`, the message requeued (SQS delays at most
  15 minutes, so a message that arrives early is put back again without calling Xero);
- failed: a persistent failure, recorded with its reason; every checkpoint is kept for the next run;
- needs_relink: Xero refused the token set (invalid_grant, 403): the client is marked and the run fails.
Each invocation adds its counts, API calls, 429s and time waited to the run.
"""

import math
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from pynamodb.attributes import MapAttribute
from pynamodb.exceptions import UpdateError

from xero_sync.config import get_settings
from xero_sync.engine import EngineHooks, Outcome, OutcomeKind, SyncEngine, merged_counts, options_from_settings
from xero_sync.models import RunStatus, SyncRun
from xero_sync.observability import logger, metrics
from xero_sync.queue import SyncQueue
from xero_sync.run_heartbeat import Heartbeat
from xero_sync.runs import BegunRun, begin_run, finish_run, now_utc, outlived, suspend_run
from xero_sync.schemas import SyncMessage
from xero_sync.tokens import TokenStore, usable
from xero_sync.unlinking import mark_needs_relink
from xero_sync.xero_api import XeroApi

SQS_MAX_DELAY_SECONDS = 900


class AccessToken:
    """A bearer token for the client's token set, refreshed through the token store when near expiry."""

    def __init__(self, token_set_id: str, store: TokenStore | None = None) -> None:
        self.token_set_id = token_set_id
        self.store = store or TokenStore()
        self.lock = threading.Lock()
        self.current: Any = None

    def __call__(self, refused: str | None) -> str:
        """The token to call Xero with; `refused` is one Xero answered 401 to (another thread may have replaced it
        already: then that replacement is used, not refreshed again)."""
        with self.lock:
            if self.current is None or not usable(self.current, refused):
                self.current = self.store.fresh(self.token_set_id, refused=refused)
            token: str = self.current.access_token.get_secret_value()
            return token


def client_api(tenant_id: str, token_set_id: str) -> XeroApi:
    """The Accounting API of one organisation, reached with the client's token set (refreshed as calls need)."""
    settings = get_settings()
    return XeroApi(str(settings.xero_api_url), tenant_id, AccessToken(token_set_id), settings)


def import_organisation(
    begun: BegunRun,
    message: SyncMessage,
    remaining_seconds: Callable[[], float] | None = None,
    hooks: EngineHooks | None = None,
) -> tuple[Outcome, SyncEngine | None]:
    """Runs the engine over the client's organisation while a heartbeat keeps the run's claim and publishes its
    progress; a lost claim stops the engine (another worker owns the client now, or it was unlinked)."""
    client = begun.client
    if not client.token_set_id:
        return Outcome(OutcomeKind.FAILED, error_code="no_token_set"), None
    api = client_api(client.tenant_id, client.token_set_id)
    engine = SyncEngine(
        client.client_id,
        api,
        mode=message.mode,
        run_id=message.run_id,
        options=options_from_settings(),
        remaining_seconds=remaining_seconds,
        hooks=hooks,
    )
    records_before = sum(int(c.get("fetched", 0)) for c in _run_counts(begun.run).values())
    with Heartbeat(message, progress=lambda: engine.progress(records_before), on_lost=api.stop.set):
        return engine.run(), engine


def _run_counts(run: SyncRun) -> dict[str, dict[str, int]]:
    counts = run.counts.as_dict() if isinstance(run.counts, MapAttribute) else dict(run.counts or {})
    return {name: dict(value) for name, value in counts.items()}


def _record_progress(begun: BegunRun, engine: SyncEngine | None) -> None:
    if engine is None:
        return
    previous = _run_counts(begun.run)
    merged = merged_counts(previous, engine.totals)
    stats = engine.api.stats
    actions: list[Any] = [
        SyncRun.counts.set(merged),
        SyncRun.api_calls.add(stats.calls),
        SyncRun.rate_limited.add(stats.rate_limited),
        SyncRun.waited_seconds.add(round(stats.waited_seconds, 3)),
    ]
    if engine.totals.not_entitled:
        actions.append(SyncRun.not_entitled.add(engine.totals.not_entitled))
    if engine.totals.unavailable:
        actions.append(SyncRun.unavailable.add(engine.totals.unavailable))
    try:
        SyncRun(client_id=begun.run.client_id, run_id=begun.run.run_id).update(
            actions=actions, condition=SyncRun.run_id.exists()
        )
    except UpdateError:
        logger.info("the run was removed meanwhile (its client was deleted): its progress is not recorded")
        return
    _add_invocation_metrics(engine)
    logger.info(
        "sync invocation ended",
        extra={
            "records_fetched": sum(c.fetched for c in engine.totals.counts.values()),
            "api_calls": stats.calls,
            "rate_limited": stats.rate_limited,
            "waited_seconds": round(stats.waited_seconds, 3),
        },
    )


def _add_invocation_metrics(engine: SyncEngine) -> None:
    """This invocation's share of the run, as metrics (a run of several invocations sums up in CloudWatch)."""
    counts = engine.totals.counts.values()
    stats = engine.api.stats
    metrics.add_metric(name="RecordsFetched", unit="Count", value=sum(c.fetched for c in counts))
    metrics.add_metric(
        name="RecordsImported", unit="Count", value=sum(c.inserted + c.updated + c.deleted for c in counts)
    )
    metrics.add_metric(name="XeroApiCalls", unit="Count", value=stats.calls)
    metrics.add_metric(name="XeroRateLimited", unit="Count", value=stats.rate_limited)
    metrics.add_metric(name="RateLimitWaitSeconds", unit="Seconds", value=round(stats.waited_seconds, 3))


def _finish(
    begun: BegunRun, message: SyncMessage, status: RunStatus, error_code: str | None = None, failed: Sequence[str] = ()
) -> None:
    """Ends the run (finish_run counts its outcome) and, when this call ended it, adds how long it took from its
    first start (as the claim stored it); a run ended already under its worker (unlinked, deleted) is neither
    counted again nor timed."""
    finished_at = finish_run(message, status, error_code, failed)
    if finished_at is not None and begun.run.started_at is not None:
        seconds = (finished_at - begun.run.started_at).total_seconds()
        metrics.add_metric(name="SyncDurationSeconds", unit="Seconds", value=round(seconds, 3))


def _requeue(message: SyncMessage, status: RunStatus, outcome: Outcome, queue: SyncQueue | None) -> RunStatus:
    delay = min(SQS_MAX_DELAY_SECONDS, max(0, outcome.delay_seconds))
    if not suspend_run(message, status, outcome.resumes_at, outcome.waiting_reason):
        logger.info("the client no longer names this run: not requeued")
        return status
    if (queue or SyncQueue()).send([message], delay_seconds=delay):
        finish_run(message, RunStatus.FAILED, "enqueue_failed")
        return RunStatus.FAILED
    logger.info("sync run requeued", extra={"status": status.value, "delay_seconds": delay})
    return status


def process_sync_message(
    message: SyncMessage,
    remaining_seconds: Callable[[], float] | None = None,
    queue: SyncQueue | None = None,
    hooks: EngineHooks | None = None,
) -> RunStatus | None:
    """Runs (or continues) the sync a message asks for; returns the run's status after this invocation, or None
    when the message was dropped. `hooks`: where tests step into the engine's run."""
    logger.append_keys(client_id=message.client_id, run_id=message.run_id)
    begun = begin_run(message)
    if begun is None:
        return None
    now = now_utc()
    resumes_at = begun.deferred_until
    if resumes_at is not None and resumes_at > now + timedelta(seconds=1):
        # Woken before the day limit resets (SQS delays 15 minutes at most): back to sleep, Xero untouched.
        wait = math.ceil((resumes_at - now).total_seconds())
        return _requeue(
            message, RunStatus.DEFERRED, Outcome(OutcomeKind.DEFERRED, wait, resumes_at, "daily_limit"), queue
        )
    engine: SyncEngine | None = None
    logger.info("sync run taken", extra={"trigger": message.trigger.value, "mode": message.mode})
    try:
        outcome, engine = import_organisation(begun, message, remaining_seconds, hooks)
    except Exception:
        logger.exception("sync failed unexpectedly")
        outcome = Outcome(OutcomeKind.FAILED, error_code="sync_error")
    _record_progress(begun, engine)
    logger.info("sync outcome", extra={"outcome": outcome.kind, "error_code": outcome.error_code})
    if outcome.kind == "done":
        _finish(begun, message, RunStatus.SUCCEEDED)
        return RunStatus.SUCCEEDED
    if outcome.kind == "partial":
        # The other resources are imported and checkpointed; the client's last successful sync does not move.
        _finish(begun, message, RunStatus.PARTIAL, outcome.error_code or "sync_error", outcome.failed_resources)
        return RunStatus.PARTIAL
    if outcome.kind == "continue":
        if outlived(begun.run, now_utc()):
            # Xero offline for a day, a token set that cannot be refreshed: failed (an event, the alarm), the client
            # freed for the next sync, rather than requeued for ever.
            logger.warning("sync run outlived its maximum age: failed, not requeued")
            _finish(begun, message, RunStatus.FAILED, outcome.error_code or "run_expired")
            return RunStatus.FAILED
        return _requeue(message, RunStatus.QUEUED, outcome, queue)
    if outcome.kind == "deferred":
        return _requeue(message, RunStatus.DEFERRED, outcome, queue)
    if outcome.kind == "needs_relink" and begun.client.token_set_id:
        # A 403 is this organisation's connection (removed in Xero); invalid_grant is the whole token set.
        only = begun.client.tenant_id if outcome.error_code == "xero_forbidden" else None
        code = outcome.error_code or "token_revoked"
        mark_needs_relink(begun.client.token_set_id, code, tenant_id=only, refused_run_id=message.run_id)
    _finish(begun, message, RunStatus.FAILED, outcome.error_code or "sync_error")
    return RunStatus.FAILED
