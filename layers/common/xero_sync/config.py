"""Runtime configuration: the only module that reads environment variables.

Every setting a function needs comes from its Lambda environment (set in template.yaml, or by the local stack),
validated once per cold start into an immutable model.
"""

import os
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

if TYPE_CHECKING:
    from functools import _lru_cache_wrapper

TableName = Annotated[str, Field(min_length=3)]
Named = Annotated[str, Field(min_length=1)]


class Settings(BaseModel):
    # Each setting is read from the environment variable of its name in capitals (clients_table: CLIENTS_TABLE).
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, alias_generator=str.upper)

    clients_table: TableName
    token_sets_table: TableName
    oauth_states_table: TableName
    sync_runs_table: TableName
    checkpoints_table: TableName
    records_table: TableName
    rate_limits_table: TableName
    xero_connections_table: TableName
    sync_queue_url: Named
    # Deleted clients are purged in slices through this queue (see purge.py).
    purge_queue_url: Named
    # The stack's EventBridge bus: run and link events for the rest of the product (events.py, docs/events.md).
    event_bus_name: Named

    # Secrets Manager: one secret per Xero token set under this prefix, encrypted with this key.
    token_secret_prefix: Named
    token_kms_key_id: Named
    xero_app_secret_name: Named

    xero_login_url: HttpUrl
    xero_identity_url: HttpUrl
    xero_api_url: HttpUrl
    # The front end's callback page, as registered with the Xero app: it hands the code and state to the API.
    xero_redirect_uri: HttpUrl
    # Read-only access to everything the sync imports, plus a refresh token (offline_access); nothing reads the
    # user's identity, so openid, profile and email are not asked for.
    xero_scopes: str = Field(
        default="offline_access accounting.settings.read accounting.contacts.read accounting.transactions.read "
        "accounting.journals.read",
    )

    # The JWT claim (verified by API Gateway's authorizer) that names the caller's practice.
    practice_claim: str = Field(default="practice_id", min_length=1)
    # A queued (or deferred) sync run is considered abandoned after this long (its message was lost or dead-lettered).
    run_lease_seconds: int = Field(default=6 * 3600, gt=0)
    # A run that must wait again (Xero offline, a token set that cannot be refreshed, a rate limit, a continuation)
    # after going on this long ends failed instead (runs.outlived): since it was queued, or since its latest deferral
    # to Xero's next day ended (a day-limit deferral itself is never ended by this).
    run_max_age_seconds: int = Field(default=24 * 3600, gt=0)
    # A running sync's claim lasts this long unless its worker renews it: the worker renews it (and publishes the
    # run's progress) every RUN_HEARTBEAT_SECONDS, so a crashed worker's claim lapses soon and the next message of
    # the client takes over. Renewals must fit several times into the lease. A sync request's claim lasts this long
    # too until its message is sent (a request that died before sending frees the client as soon).
    worker_lease_seconds: float = Field(default=90.0, gt=0)
    run_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # Limits per practice (limits.py): the API's mutating routes take at most PRACTICE_REQUEST_LIMIT requests of a
    # practice per fixed window, so one practice cannot spend the organisation's Xero allowance or the fleet's minute.
    practice_request_limit: int = Field(default=60, ge=1)
    practice_request_window_seconds: int = Field(default=60, ge=1)
    # A full sync asked for through the API (Sync Now, mode full) at most once per client in this long (a full sync
    # re-reads everything: thousands of calls); console reruns and the nightly run are exempt.
    full_sync_period_seconds: int = Field(default=86_400, ge=1)
    max_request_body_bytes: int = Field(default=16 * 1024, gt=0)
    enable_swagger: bool = False

    # The sync engine (see engine/). A full reconciliation re-reads everything this often per resource.
    full_reconciliation_seconds: int = Field(default=7 * 86_400, gt=0)
    # If-Modified-Since is set this far before the previous pass began (clock skew, second-granular stamps).
    ims_overlap_seconds: int = Field(default=60, ge=0)
    # Xero's per-organisation limits, and the length of its rate-limit "minute" (shorter against a fast emulator).
    xero_max_in_flight: int = Field(default=5, ge=1, le=5)
    xero_calls_per_minute: int = Field(default=60, ge=1)
    xero_minute_seconds: float = Field(default=60.0, gt=0)
    xero_read_timeout_seconds: float = Field(default=30.0, gt=0)
    # Transient failures are retried this many times per call, backing off exponentially from this base (jittered).
    xero_attempts: int = Field(default=5, ge=1)
    xero_backoff_base_seconds: float = Field(default=0.5, ge=0)
    # A minute 429 whose Retry-After is longer than this (or than the invocation has left before
    # SYNC_TIME_MARGIN_SECONDS) is not waited out in the Lambda: the run is requeued.
    xero_max_inline_wait_seconds: float = Field(default=20.0, ge=0)
    # A 503 that outlasted the retries, or a token set that could not be refreshed for now: the run is tried again
    # this much later. Well under Xero's 30-minute grace for a refresh token already used.
    xero_retry_later_seconds: int = Field(default=300, ge=1, le=900)
    # An access token with this little left (or less) is refreshed before a call uses it (tokens.usable): a sync's
    # next calls must not race its expiry.
    token_refresh_margin_seconds: int = Field(default=120, gt=0)
    # A run saves and requeues a continuation when its Lambda has less than this left.
    sync_time_margin_seconds: float = Field(default=90.0, ge=0)

    # Purging a deleted client: a slice queues its continuation when its Lambda has less than this left.
    purge_time_margin_seconds: float = Field(default=8.0, ge=0)
    # Deletes in flight at once (BatchWriteItem calls of 25) while purging.
    purge_write_threads: int = Field(default=4, ge=1, le=32)
    # A client deleted while a sync's worker may still write (its run on, or closed under it by an unlink) is purged
    # only once that Lambda must have ended (the sync function's timeout). SQS delays 15 minutes at most.
    purge_sync_grace_seconds: int = Field(default=900, ge=0, le=900)

    @model_validator(mode="after")
    def _heartbeat_fits_the_lease(self) -> "Settings":
        if self.run_heartbeat_seconds * 3 > self.worker_lease_seconds:
            raise ValueError("RUN_HEARTBEAT_SECONDS must be at most a third of WORKER_LEASE_SECONDS")
        return self


_FORGETTERS: list[Callable[[], None]] = []


def per_environment[T](build: Callable[[], T]) -> "_lru_cache_wrapper[T]":
    """Builds once per process what depends on the environment (the settings, an AWS client); forget_environment
    drops it. In Lambda a process has one environment; the offline stack runs every function in one process."""
    cached = lru_cache(maxsize=1)(build)
    _FORGETTERS.append(cached.cache_clear)
    return cached


def on_forget_environment(forget: Callable[[], None]) -> Callable[[], None]:
    """Registers what else forget_environment must drop (PynamoDB's per-model connections)."""
    _FORGETTERS.append(forget)
    return forget


def forget_environment() -> None:
    """Drops everything built from the environment so far: the next use builds it from the environment as it is."""
    for forget in _FORGETTERS:
        forget()


@per_environment
def get_settings() -> Settings:
    """The settings of this process, read once (a Lambda cold start, a test session)."""
    return Settings.model_validate(os.environ)
