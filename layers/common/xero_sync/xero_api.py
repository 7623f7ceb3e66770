"""The Accounting API client the sync engine reads Xero through: one organisation, paced to Xero's limits.

- Calls are paced by `xero_pacing.Pacer`: Xero's in-flight cap and minute budget, honoured before any 429.
- 429: a minute limit with a short Retry-After is waited out here (every call holds for it); a long one, one longer
  than the caller's time left (`time_left`: the engine's invocation), or a day limit, is raised to the engine (which
  checkpoints and requeues, or parks the client). A Retry-After that is no wait (missing, not a number, zero or
  less, infinite) is the limit's window; one over a day is a day.
- Transient failures (5xx, timeouts, connection resets, bodies that are not JSON) are retried (tenacity) with
  exponential backoff and full jitter; what still fails is raised with its reason.
- 401/403 are raised as they are: what they mean depends on the resource (Journals) and is the engine's call.
"""

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.cookiejar import DefaultCookiePolicy
from typing import Any, NoReturn

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_none,
    wait_random_exponential,
)

from xero_sync.config import Settings
from xero_sync.observability import logger

# Re-exported: the engine reads them here, with the errors of a call.
from xero_sync.xero_dates import parse_ms_date
from xero_sync.xero_pacing import CallStats, Pacer, Stopped, WaitReason

CONNECT_TIMEOUT_SECONDS = 3.05
BACKOFF_CAP_SECONDS = 20.0
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0


class XeroApiError(Exception):
    """A Xero call that failed. `code` is what a failed run records; each kind of failure declares its own."""

    code = "xero_error"

    def __init_subclass__(cls, *, code: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = code

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Unauthorized(XeroApiError, code="xero_unauthorized"):
    """401, also with the token that replaced the one Xero refused first."""


class Forbidden(XeroApiError, code="xero_forbidden"):
    """Xero answered 403."""


class RateLimited(XeroApiError, code="rate_limited"):
    """A 429 the client did not wait out: `problem` is Xero's X-Rate-Limit-Problem (minute, day...)."""

    def __init__(self, problem: str, retry_after: float) -> None:
        super().__init__(f"Xero rate limit reached ({problem}); retry after {retry_after:.0f} s", 429)
        self.problem = problem
        self.retry_after = retry_after


class OrganisationOffline(XeroApiError, code="xero_unavailable"):
    """503 that outlasted the retries: the organisation (or Xero) is unavailable for now."""


class TransientFailure(XeroApiError, code="xero_transient_failure"):
    """5xx, timeouts, resets or malformed bodies that outlasted the retries."""


class NotOffered(XeroApiError, code="resource_unavailable"):
    """404 or 410 on a collection: Xero does not offer this resource to the organisation (its plan, its region)."""


class _Transient(Exception):
    """One attempt's transient failure (tried again until the attempts are spent)."""

    def __init__(self, path: str, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.path = path
        self.status = status


class _SendAgain(Exception):
    """Not a failure: a 429 waited out (the pacer holds every call for its Retry-After), or a token Xero refused
    replaced once: the call is sent again at once."""


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    pagination: dict[str, Any] | None
    # Xero's clock when the call went out, at the earliest: the envelope's DateTimeUTC less the call's round trip.
    # What the page shows was read after it; the DateTimeUTC itself can be later than the read (it was in Xero's
    # emulator: a change landed between the two).
    read_after_ms: int | None


_adapter_lock = threading.Lock()
_session: requests.Session | None = None


def _shared_session() -> requests.Session:
    """One pooled session per process: keep-alive connections are reused across runs of a warm Lambda."""
    global _session
    with _adapter_lock:
        if _session is None:
            session = requests.Session()
            # It keeps no cookie: it serves every tenant a warm Lambda syncs, and a call carries its own tenant's
            # token and id alone.
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=8, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _session = session
        return _session


class XeroApi:
    def __init__(
        self,
        base_url: str,
        tenant_id: str,
        access_token: Callable[[str | None], str],
        settings: Settings,
        stop: threading.Event | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`access_token(refused)` returns a bearer token: given one Xero refused (401), a token other than that one.
        `settings` gives the limits and the retry policy (its `xero_*` fields). `sleep` is what every wait sleeps
        with (the pacer's, the retries' back-off): tests pass one that returns."""
        self.base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id
        self.access_token = access_token
        self.settings = settings
        self.stop = stop or threading.Event()
        self.session = session or _shared_session()
        self.sleep = sleep
        self.pacer = Pacer(
            settings.xero_max_in_flight, settings.xero_calls_per_minute, settings.xero_minute_seconds, self.stop, sleep
        )
        self.stats = CallStats(waits=self.pacer.waits)
        # The seconds the caller may still spend waiting (None: no deadline); the engine sets it from its invocation's
        # time, so a 429 answered again and again is not waited out until Lambda's timeout.
        self.time_left: Callable[[], float | None] = lambda: None

    def waiting(self) -> tuple[WaitReason, datetime] | None:
        """What the calls wait on right now (a rate limit, a back-off), and until when; None when none waits."""
        return self.pacer.waits.current()

    def list(self, resource: str, key: str, params: dict[str, str], modified_since: str | None = None) -> Page:
        headers = {"If-Modified-Since": modified_since} if modified_since else {}
        body, round_trip = self._get(resource, params, headers)
        records = body.get(key)
        if not isinstance(records, list):
            raise TransientFailure(f"Xero's answer for {resource} has no {key} list")
        pagination = body.get("pagination")
        answered_ms = parse_ms_date(body.get("DateTimeUTC"))
        return Page(
            records,
            pagination if isinstance(pagination, dict) else None,
            None if answered_ms is None else answered_ms - math.ceil(round_trip.total_seconds() * 1000),
        )

    def get(self, path: str, params: dict[str, str], headers: dict[str, str] | None = None) -> dict[str, Any]:
        """One GET, with the pacing and retries above. Returns the parsed JSON object."""
        return self._get(path, params, headers)[0]

    def _get(
        self, path: str, params: dict[str, str], headers: dict[str, str] | None
    ) -> tuple[dict[str, Any], timedelta]:
        """`get`, and the answering call's round trip (from sending it to its headers: requests' `elapsed`)."""
        refused: set[str] = set()  # the token Xero refused (401), once replaced: a second 401 is raised
        # A 429 waited out or a refused token replaced is sent again at once, and spends no attempt.
        send_again = Retrying(
            retry=retry_if_exception_type(_SendAgain), stop=stop_never, wait=wait_none(), sleep=self.sleep
        )
        transient = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.settings.xero_attempts),
            # tenacity's first back-off is multiplier * 2**0: twice the base, as Xero's guidance has it.
            wait=wait_random_exponential(
                multiplier=2 * self.settings.xero_backoff_base_seconds, max=BACKOFF_CAP_SECONDS
            ),
            sleep=lambda seconds: self._pause(seconds, "xero_retry"),
            before_sleep=_log_retry,
            retry_error_callback=_give_up,
        )
        answer: tuple[dict[str, Any], timedelta] = transient(send_again, self._send, path, params, headers, refused)
        return answer

    def _send(
        self, path: str, params: dict[str, str], headers: dict[str, str] | None, refused: set[str]
    ) -> tuple[dict[str, Any], timedelta]:
        """One call: its parsed body, or what to do next raised (_SendAgain, _Transient, or the error to raise)."""
        _, sent_at = self.pacer.acquire()
        try:
            token = self.access_token(None)
            response = self.session.get(
                f"{self.base_url}/api.xro/2.0/{path}",
                params=params,
                headers={
                    "Authorization": f"Bearer {token}",
                    "xero-tenant-id": self.tenant_id,
                    "Accept": "application/json",
                    **(headers or {}),
                },
                timeout=(CONNECT_TIMEOUT_SECONDS, self.settings.xero_read_timeout_seconds),
            )
            body_bytes = response.content
        except requests.RequestException as error:
            self.stats.add(calls=1)
            raise _Transient(path, f"{type(error).__name__} calling {path}") from error
        finally:
            self.pacer.release()
        self.stats.add(calls=1)
        self.pacer.observe(sent_at, response.headers.get("X-MinLimit-Remaining"))
        status = response.status_code
        if status == 200:
            try:
                parsed = json.loads(body_bytes)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                return parsed, response.elapsed
            raise _Transient(path, f"a malformed body from {path}")
        if status == 429:
            self._rate_limited(response)
            raise _SendAgain
        if status == 401:
            if not refused:
                # An access token can expire between our check and Xero's, or by Xero's clock before ours: have
                # that token replaced once and try again.
                refused.add(token)
                self.access_token(token)
                raise _SendAgain
            raise Unauthorized(f"Xero answered 401 for {path}: {_detail(response)}", 401)
        if status == 403:
            raise Forbidden(f"Xero answered 403 for {path}: {_detail(response)}", 403)
        if status == 503:
            raise _Transient(path, f"503 from {path} (organisation or Xero offline)", 503)
        if status >= 500:
            raise _Transient(path, f"{status} from {path}", status)
        if status in (404, 410) and "/" not in path:
            raise NotOffered(f"Xero answered {status} for the collection {path}", status)
        raise XeroApiError(f"Xero answered {status} for {path}: {_detail(response)}", status)

    def _rate_limited(self, response: requests.Response) -> None:
        problem = (response.headers.get("X-Rate-Limit-Problem") or "minute").lower()
        retry_after = self._retry_after(problem, response.headers.get("Retry-After"))
        self.stats.add(rate_limited=1)
        logger.info("Xero rate limit", extra={"problem": problem, "retry_after": retry_after})
        left = self.time_left()
        too_long = retry_after > self.settings.xero_max_inline_wait_seconds or (left is not None and retry_after > left)
        if problem == "day" or too_long:
            raise RateLimited(problem, retry_after)
        self.pacer.hold(retry_after)
        self._pause(0, "rate_limit")

    def _retry_after(self, problem: str, header: str | None) -> float:
        """The seconds a 429 asks us to wait: its Retry-After when that is a wait (a finite number above zero, at
        most a day, Xero's longest window); otherwise the window of its problem (a call sent again at once is
        refused again)."""
        try:
            seconds = float(header or 0)
        except ValueError:
            seconds = 0.0
        if math.isfinite(seconds) and seconds > 0:
            return min(seconds, MAX_RETRY_AFTER_SECONDS)
        if problem == "day":
            return 3600.0
        return 1.0 if problem == "concurrent" else self.settings.xero_minute_seconds

    def _pause(self, seconds: float, reason: WaitReason) -> None:
        """Sleeps `seconds` in steps (through `sleep`, so a test's returns at once), ending early when stopped."""
        left = seconds
        with self.pacer.waits.on(reason, seconds):
            while True:
                if self.stop.is_set():
                    raise Stopped
                if left <= 0:
                    return
                step = min(left, 0.5)
                self.sleep(step)
                left -= step


def _log_retry(state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0.0
    logger.info("transient Xero failure, retrying", extra={"reason": str(failure), "delay": round(delay, 2)})


def _give_up(state: RetryCallState) -> NoReturn:
    """The attempts are spent: the last failure, as the engine's error."""
    failure = state.outcome.exception() if state.outcome else None
    if isinstance(failure, _Transient) and failure.status == 503:
        raise OrganisationOffline(f"Xero kept answering 503 for {failure.path}", 503) from failure
    raise TransientFailure(f"gave up after {state.attempt_number} attempts: {failure}") from failure


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("Detail") or body.get("detail") or body.get("Message") or "")[:200]
    return ""
