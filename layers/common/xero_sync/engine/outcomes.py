"""How a run ends, and the one table that says what each error does to a resource's pass and to the run.

| error                                  | the resource's pass                     | the run ends                      |
|----------------------------------------|-----------------------------------------|-----------------------------------|
| NotOffered (404/410 on the collection) | unavailable: asked by the next run,     | (goes on)                         |
|                                        | then skipped until reconciled           |                                   |
| Unauthorized                           | not entitled, where the catalogue says  | failed (xero_unauthorized)        |
|                                        | a 401 means so (`entitlement_gated`)    |                                   |
| TokenSetRevoked, Forbidden             | stops every pass                        | needs_relink                      |
| RateLimited (day)                      | stops every pass                        | deferred until the limit resets   |
| RateLimited (minute, concurrent)       | stops every pass                        | continue after Retry-After        |
| token set unavailable for now          | stops every pass                        | continue after offline_retry      |
| OutOfTime (the invocation's time)      | stops every pass                        | continue at once                  |
| OrganisationOffline (503s outlasting)  | raised                                  | continue after offline_retry      |
| Stopped (another pass stopped the run) | raised                                  | (the other error decides)         |
| any other XeroApiError                 | this resource failed, the others go on  | partial                           |
| anything else                          | raised                                  | failed (sync_error)               |
UnprovenRead never leaves a pass: the pass ends without sweeping or moving its mark, with a warning in the run.
"""

import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from xero_sync.observability import logger
from xero_sync.record_store import Counts
from xero_sync.tokens import TokenRefreshBusy, TokenSaveFailed, TokenSetRevoked
from xero_sync.xero_api import (
    Forbidden,
    NotOffered,
    OrganisationOffline,
    RateLimited,
    Unauthorized,
    XeroApiError,
)
from xero_sync.xero_identity import XeroUnavailable
from xero_sync.xero_pacing import Stopped, WaitReason


class OutcomeKind(StrEnum):
    DONE = "done"
    PARTIAL = "partial"  # some resources failed: the others were imported
    CONTINUE = "continue"  # requeued: the run goes on in another invocation
    DEFERRED = "deferred"  # Xero's daily limit: the run sleeps until it resets
    FAILED = "failed"
    NEEDS_RELINK = "needs_relink"


@dataclass
class Outcome:
    kind: OutcomeKind
    delay_seconds: int = 0
    resumes_at: datetime | None = None
    waiting_reason: WaitReason | None = None  # what the run waits on until resumes_at
    error_code: str | None = None
    failed_resources: list[str] = field(default_factory=list)  # a partial run's resources not imported this time


class OutOfTime(Exception):
    """Too little of the invocation's time is left to start another call: the run continues in the next one."""


# Warnings a pass leaves on its resource in the run: it ended without proof it read everything, so it swept nothing
# and moved no mark (the next run reads it again), or a mass deletion was or was not confirmed by a second read.
PAGINATION_MISSING = "pagination_missing"  # a pageSize answer without Xero's `pagination` or one of its counts
PAGINATION_MISMATCH = "pagination_mismatch"  # fewer records read than Xero's itemCount says there are
PAGINATION_RESUMED = "pagination_resumed"  # a pageSize read resumed: the records read before it cannot be counted
PAGINATION_STALLED = "pagination_stalled"  # a full page of an offset read that names no later offset
# A deletion the confirming whole read did not confirm: it could not prove its end, or rejected a record (which may
# be one it showed again). Nothing was deleted.
SWEEP_UNCONFIRMED = "sweep_unconfirmed"
SWEEP_CONFIRMED = "mass_deletion_confirmed"  # a mass deletion a second whole read confirmed
# A whole read that showed none of the records stored of a resource whose deletions Xero shows as a status: an odd
# answer, not every record deleted. Nothing was deleted.
SWEEP_REFUSED = "sweep_refused"


# Answers a pass refuses: the resource fails with the code (the run ends partial), nothing of the answer is stored and
# its checkpoint stays where it was. Each code's message for the practice: errors.RUN_ERROR_MESSAGES.
class OutOfSequence(XeroApiError, code="pagination_out_of_sequence"):
    """A page of an offset read whose numbers do not each rise from the one before (the offset asked for, first) by
    at most catalogue.OFFSET_GAP_MAX."""


class NotTheRecordAskedFor(XeroApiError, code="record_mismatch"):
    """A GET /{name}/{id} answer that is not the one record asked for (none, several, or another)."""


class PageRepeated(XeroApiError, code="pagination_repeated"):
    """A page of a `page` read that holds what the page before held: the endpoint ignores `page`."""


class UnprovenRead(Exception):
    """A whole read that cannot prove it saw every record (`code`: one of the PAGINATION_* warnings)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class OnResource(StrEnum):
    """What an error raised by one resource's pass does to that pass."""

    UNAVAILABLE = "unavailable"  # marked on its checkpoint, asked again at the next reconciliation
    NOT_ENTITLED = "not_entitled"  # where the catalogue says so; elsewhere raised
    STOP_ALL = "stop_all"  # every other pass stops before its next call, and the error is raised
    RAISE = "raise"  # raised: the run's outcome decides
    FAILED = "failed"  # this resource alone is not imported this time; the run ends partial


@dataclass(frozen=True)
class Rule:
    errors: tuple[type[BaseException], ...]
    on_resource: OnResource
    outcome: OutcomeKind  # when the error ends the run
    wait: WaitReason | None = None  # a continuation waits on this (rate limits: their Retry-After)
    code: str | None = None  # the run's error code (else the error's own, else sync_error)


# The token set could not be refreshed for now (Xero's token endpoint away, another holder kept the lease, the
# rotated set could not be saved): the run is tried again in a few minutes rather than failed, so a refresh whose
# answer or save was lost is retried well within Xero's 30-minute grace for the refresh token kept.
TOKEN_UNAVAILABLE = (XeroUnavailable, TokenRefreshBusy, TokenSaveFailed)

# First match wins (NotOffered, Unauthorized, RateLimited... are XeroApiErrors).
RULES: tuple[Rule, ...] = (
    Rule((NotOffered,), OnResource.UNAVAILABLE, OutcomeKind.FAILED),
    Rule((Unauthorized,), OnResource.NOT_ENTITLED, OutcomeKind.FAILED),
    Rule((TokenSetRevoked,), OnResource.STOP_ALL, OutcomeKind.NEEDS_RELINK, code="token_revoked"),
    Rule((Forbidden,), OnResource.STOP_ALL, OutcomeKind.NEEDS_RELINK, code="xero_forbidden"),
    Rule((RateLimited,), OnResource.STOP_ALL, OutcomeKind.CONTINUE, wait="rate_limit"),
    Rule(TOKEN_UNAVAILABLE, OnResource.STOP_ALL, OutcomeKind.CONTINUE, wait="xero_retry", code="token_unavailable"),
    Rule((OutOfTime,), OnResource.STOP_ALL, OutcomeKind.CONTINUE),
    Rule((OrganisationOffline,), OnResource.RAISE, OutcomeKind.CONTINUE, wait="organisation_offline"),
    Rule((Stopped,), OnResource.RAISE, OutcomeKind.CONTINUE),
    Rule((XeroApiError,), OnResource.FAILED, OutcomeKind.FAILED),
    Rule((BaseException,), OnResource.RAISE, OutcomeKind.FAILED),
)


def rule_for(error: BaseException) -> Rule:
    return next(rule for rule in RULES if isinstance(error, rule.errors))


def run_outcome(errors: list[BaseException], now: datetime, offline_retry_seconds: float) -> Outcome | None:
    """How the run ends after the errors its passes raised (None: none did, the run goes on)."""
    real = [e for e in errors if not isinstance(e, Stopped)]
    if not real:
        return None if not errors else Outcome(OutcomeKind.CONTINUE)
    ruled = [(error, rule_for(error)) for error in real]
    for error, rule in ruled:
        if rule.outcome is OutcomeKind.NEEDS_RELINK:
            if isinstance(error, TokenSetRevoked):
                logger.warning("Xero no longer accepts the token set", extra={"detail": error.reason})
            else:
                logger.warning("Xero refused the organisation", extra={"detail": str(error)})
            return Outcome(OutcomeKind.NEEDS_RELINK, error_code=rule.code)
    for error, rule in ruled:
        if rule.outcome is OutcomeKind.FAILED:
            logger.exception("sync failed", exc_info=error)
            return Outcome(
                OutcomeKind.FAILED, error_code=error.code if isinstance(error, XeroApiError) else "sync_error"
            )
    day = [e for e in real if isinstance(e, RateLimited) and e.problem == "day"]
    if day:
        wait = max(e.retry_after for e in day)
        resumes_at = now + timedelta(seconds=wait)
        return Outcome(OutcomeKind.DEFERRED, math.ceil(wait), resumes_at, waiting_reason="daily_limit")
    # A wait carries its error's code: the run's, should it outlive its maximum age waiting (sync_worker).
    waits: list[tuple[float, WaitReason, str | None]] = [
        (
            error.retry_after if isinstance(error, RateLimited) else offline_retry_seconds,
            rule.wait,
            rule.code or (error.code if isinstance(error, XeroApiError) else None),
        )
        for error, rule in ruled
        if rule.wait is not None
    ]
    if waits:
        wait, reason, code = max(waits, key=lambda w: (w[0], w[1]))
        return Outcome(
            OutcomeKind.CONTINUE, math.ceil(wait), now + timedelta(seconds=wait), waiting_reason=reason, error_code=code
        )
    return Outcome(OutcomeKind.CONTINUE)


MAX_ERRORS_PER_RESOURCE = 20  # reasons kept per resource and run (the count has them all)


@dataclass
class RunTotals:
    counts: dict[str, Counts] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)  # why records were rejected, per resource
    warnings: dict[str, list[str]] = field(default_factory=dict)  # codes above, per resource
    not_entitled: set[str] = field(default_factory=set)
    unavailable: set[str] = field(default_factory=set)  # resources Xero does not offer the organisation (404, 410)
    failed: dict[str, str] = field(default_factory=dict)  # resource -> error code: not imported this time
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, resource: str, counts: Counts, errors: list[str] | None = None) -> None:
        with self.lock:
            self.counts.setdefault(resource, Counts()).add(counts)
            if errors:
                kept = self.errors.setdefault(resource, [])
                kept.extend(errors[: MAX_ERRORS_PER_RESOURCE - len(kept)])

    def warn(self, resource: str, code: str) -> None:
        logger.warning("a pass ended without proof", extra={"resource": resource, "warning": code})
        with self.lock:
            codes = self.warnings.setdefault(resource, [])
            if code not in codes:
                codes.append(code)


def merged_counts(previous: dict[str, Any], totals: RunTotals) -> dict[str, dict[str, Any]]:
    """A run's counts per resource (and the reasons records were rejected) after one more invocation's."""
    merged: dict[str, dict[str, Any]] = {}
    for name in set(previous) | set(totals.counts) | set(totals.warnings):
        old = previous.get(name) or {}
        new = totals.counts[name].as_dict() if name in totals.counts else {}
        entry: dict[str, Any] = {k: int(old.get(k, 0)) + int(new.get(k, 0)) for k in Counts().as_dict()}
        errors = [*(old.get("errors") or []), *totals.errors.get(name, [])][:MAX_ERRORS_PER_RESOURCE]
        if errors:
            entry["errors"] = errors
        warnings = list(dict.fromkeys([*(old.get("warnings") or []), *totals.warnings.get(name, [])]))
        if warnings:
            entry["warnings"] = warnings
        merged[name] = entry
    return merged
