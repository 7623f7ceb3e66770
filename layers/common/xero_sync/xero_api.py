"""The Accounting API client the sync engine reads Xero through: one organisation, paced to Xero's limits.

- At most `max_in_flight` calls at once (Xero allows 5 per organisation), whatever the number of threads.
- A per-minute budget (Xero: 60 a minute) kept by a sliding log of our own calls, and `X-MinLimit-Remaining`
  honoured: when Xero says the minute is spent, no call goes out until the window has passed (no 429 needed).
- 429: a minute limit with a short Retry-After is waited out here; a long one, or a day limit, is raised to the
  engine (which checkpoints and requeues, or parks the client).
- Transient failures (5xx, timeouts, connection resets, bodies that are not JSON) are retried with exponential
  backoff and full jitter; what still fails is raised with its reason.
- 401/403 are raised as they are: what they mean depends on the resource (Journals) and is the engine's call.
"""

import json
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import requests
from requests.adapters import HTTPAdapter

from xero_sync.observability import logger

# What a sync waits on: Xero's minute limit (a Retry-After, or the minute's budget spent), its daily limit, an
# organisation Xero reports offline (503), or a back-off after a transient failure.
WaitReason = Literal["rate_limit", "daily_limit", "organisation_offline", "xero_retry"]


class XeroApiError(Exception):
    code = "xero_error"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Unauthorized(XeroApiError):
    code = "xero_unauthorized"


class Forbidden(XeroApiError):
    code = "xero_forbidden"


class RateLimited(XeroApiError):
    """A 429 the client did not wait out: `problem` is Xero's X-Rate-Limit-Problem (minute, day...)."""

    code = "rate_limited"

    def __init__(self, problem: str, retry_after: float) -> None:
        super().__init__(f"Xero rate limit reached ({problem}); retry after {retry_after:.0f} s", 429)
        self.problem = problem
        self.retry_after = retry_after


class OrganisationOffline(XeroApiError):
    """503 that outlasted the retries: the organisation (or Xero) is unavailable for now."""

    code = "xero_unavailable"


class TransientFailure(XeroApiError):
    """5xx, timeouts, resets or malformed bodies that outlasted the retries."""

    code = "xero_transient_failure"


class NotOffered(XeroApiError):
    """404 or 410 on a collection: Xero does not offer this resource to the organisation (its plan, its region)."""

    code = "resource_unavailable"


class Stopped(Exception):
    """The engine asked every worker to stop before its next call (a deadline, a rate limit elsewhere)."""


@dataclass(frozen=True)
class ApiOptions:
    max_in_flight: int = 5
    calls_per_window: int = 60
    window_seconds: float = 60.0
    connect_timeout: float = 3.05
    read_timeout: float = 30.0
    attempts: int = 5  # per call, for transient failures
    backoff_base: float = 0.5
    backoff_cap: float = 20.0
    max_inline_wait: float = 20.0  # a minute 429 with a longer Retry-After goes back to the engine


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    pagination: dict[str, Any] | None
    # Xero's clock when the call went out, at the earliest: the envelope's DateTimeUTC less the call's round trip.
    # What the page shows was read after it; the DateTimeUTC itself can be later than the read (it was in Xero's
    # emulator: a change landed between the two).
    read_after_ms: int | None


_MS_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


def from_ms(ms: float) -> datetime:
    """The moment an epoch-milliseconds stamp (parse_ms_date's) names, in UTC."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def parse_ms_date(value: Any) -> int | None:
    """Xero's `/Date(1439434356790+0000)/` as milliseconds since the epoch (the offset is informational)."""
    match = _MS_DATE.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


_adapter_lock = threading.Lock()
_session: requests.Session | None = None


def _shared_session() -> requests.Session:
    """One pooled session per process: keep-alive connections are reused across runs of a warm Lambda."""
    global _session
    with _adapter_lock:
        if _session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=8, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _session = session
        return _session


class _Waits:
    """The waits under way (any thread) and what they wait on: the latest-ending one is the run's to report. Also
    the wall-clock time during which at least one call waited: threads waiting side by side wait once, so a run's
    "waited" is never more than its own length."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ends: dict[int, tuple[float, WaitReason]] = {}
        self._waiting = 0
        self._since = 0.0
        self._wall = 0.0

    @contextmanager
    def on(self, reason: WaitReason, seconds: float) -> Iterator[None]:
        key = threading.get_ident()
        with self.lock:
            self.ends[key] = (time.monotonic() + seconds, reason)
            self._waiting += 1
            if self._waiting == 1:
                self._since = time.monotonic()
        try:
            yield
        finally:
            with self.lock:
                self.ends.pop(key, None)
                self._waiting -= 1
                if self._waiting == 0:
                    self._wall += time.monotonic() - self._since

    def wall_seconds(self) -> float:
        with self.lock:
            ongoing = time.monotonic() - self._since if self._waiting else 0.0
            return self._wall + ongoing

    def current(self) -> tuple[WaitReason, datetime] | None:
        with self.lock:
            if not self.ends:
                return None
            end, reason = max(self.ends.values())
        return reason, datetime.now(UTC) + timedelta(seconds=max(0.0, end - time.monotonic()))


@dataclass
class CallStats:
    calls: int = 0
    rate_limited: int = 0
    waits: _Waits = field(default_factory=_Waits, repr=False)  # the pacer's: what the calls waited, wall-clock
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, calls: int = 0, rate_limited: int = 0) -> None:
        with self.lock:
            self.calls += calls
            self.rate_limited += rate_limited

    @property
    def waited_seconds(self) -> float:
        return self.waits.wall_seconds()


class _Pacer:
    """In-flight cap plus the per-minute budget.

    Xero counts calls in fixed windows that start when the first call after the previous window ended arrives; so
    does the pacer, which cannot see that arrival: it places the window's start at the first answer to a call of the
    window, which came back after that call arrived (the start it could see, the call's sending, is a one-way trip
    early, and a window resumed that early is refused with a 429). Within a window the budget is the smaller of our
    own allowance and what Xero last reported (X-MinLimit-Remaining, less the calls already on their way); when it
    is spent, no call starts before the window ends. A sliding log of our own calls caps any window at
    calls_per_window.
    """

    def __init__(self, options: ApiOptions, stop: threading.Event, sleep: Callable[[float], None]) -> None:
        self.options = options
        self.stop = stop
        self.sleep = sleep
        self.slots = threading.BoundedSemaphore(options.max_in_flight)
        self.lock = threading.Lock()
        self.sent: deque[float] = deque()
        self.blocked_until = 0.0
        self.in_flight = 0
        self.window_start = -math.inf
        self.window_placed = True  # whether an answer to one of this window's calls has placed its start
        self.budget: int | None = None  # what Xero says is left in this window, less what we sent since
        self.waits = _Waits()

    def acquire(self) -> tuple[float, float]:
        """Waits for a slot and the budget; returns the seconds waited and when the call goes (time.monotonic)."""
        waited = 0.0
        self.slots.acquire()
        try:
            while True:
                if self.stop.is_set():
                    raise Stopped
                with self.lock:
                    now = time.monotonic()
                    window = self.options.window_seconds
                    while self.sent and self.sent[0] <= now - window:
                        self.sent.popleft()
                    pause = self.blocked_until - now
                    if len(self.sent) >= self.options.calls_per_window:
                        pause = max(pause, self.sent[0] + window - now)
                    if self.budget is not None and self.budget <= 0:
                        pause = max(pause, self.window_start + window - now)
                    if pause <= 0:
                        if now >= self.window_start + window:
                            self.window_start, self.budget, self.window_placed = now, None, False
                        if self.budget is not None:
                            self.budget -= 1
                        self.sent.append(now)
                        self.in_flight += 1
                        return waited, now
                step = min(pause, 1.0)
                with self.waits.on("rate_limit", pause):
                    self.sleep(step)
                waited += step
        except BaseException:
            self.slots.release()
            raise

    def release(self) -> None:
        with self.lock:
            self.in_flight -= 1
        self.slots.release()

    def observe(self, sent_at: float, minute_remaining: str | None) -> None:
        """An answer to the call sent at `sent_at`. Xero's own count wins: calls made elsewhere (another worker, the
        link flow) spend the same minute."""
        with self.lock:
            if not self.window_placed and sent_at >= self.window_start:
                self.window_start, self.window_placed = time.monotonic(), True
            if minute_remaining is None or not minute_remaining.isdigit():
                return
            left = int(minute_remaining) - self.in_flight
            self.budget = left if self.budget is None else min(self.budget, left)

    def hold(self, seconds: float) -> None:
        with self.lock:
            self.blocked_until = max(self.blocked_until, time.monotonic() + seconds)


class XeroApi:
    def __init__(
        self,
        base_url: str,
        tenant_id: str,
        access_token: Callable[[str | None], str],
        options: ApiOptions | None = None,
        stop: threading.Event | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`access_token(refused)` returns a bearer token: given one Xero refused (401), a token other than that one."""
        self.base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id
        self.access_token = access_token
        self.options = options or ApiOptions()
        self.stop = stop or threading.Event()
        self.session = session or _shared_session()
        self.sleep = sleep
        self.pacer = _Pacer(self.options, self.stop, sleep)
        self.stats = CallStats(waits=self.pacer.waits)

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
        url = f"{self.base_url}/api.xro/2.0/{path}"
        refreshed = False
        failures = 0
        last_reason = ""
        while True:
            _, sent_at = self.pacer.acquire()
            try:
                token = self.access_token(None)
                response = self.session.get(
                    url,
                    params=params,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "xero-tenant-id": self.tenant_id,
                        "Accept": "application/json",
                        **(headers or {}),
                    },
                    timeout=(self.options.connect_timeout, self.options.read_timeout),
                )
                body_bytes = response.content
            except requests.RequestException as error:
                response = None
                body_bytes = b""
                last_reason = f"{type(error).__name__} calling {path}"
            finally:
                self.pacer.release()
            self.stats.add(calls=1)
            if response is not None:
                self.pacer.observe(sent_at, response.headers.get("X-MinLimit-Remaining"))
                status = response.status_code
                if status == 200:
                    try:
                        parsed = json.loads(body_bytes)
                    except ValueError:
                        parsed = None
                    if isinstance(parsed, dict):
                        return parsed, response.elapsed
                    last_reason = f"a malformed body from {path}"
                elif status == 429:
                    self._rate_limited(response)
                    continue  # waited out: not a failure
                elif status == 401:
                    if not refreshed:
                        # An access token can expire between our check and Xero's, or by Xero's clock before ours:
                        # have that token replaced once and try again.
                        refreshed = True
                        self.access_token(token)
                        continue
                    raise Unauthorized(f"Xero answered 401 for {path}: {_detail(response)}", 401)
                elif status == 403:
                    raise Forbidden(f"Xero answered 403 for {path}: {_detail(response)}", 403)
                elif status == 503:
                    last_reason = f"503 from {path} (organisation or Xero offline)"
                elif status >= 500:
                    last_reason = f"{status} from {path}"
                elif status in (404, 410) and "/" not in path:
                    raise NotOffered(f"Xero answered {status} for the collection {path}", status)
                else:
                    raise XeroApiError(f"Xero answered {status} for {path}: {_detail(response)}", status)
            failures += 1
            if failures >= self.options.attempts:
                if response is not None and response.status_code == 503:
                    raise OrganisationOffline(f"Xero kept answering 503 for {path}", 503)
                raise TransientFailure(f"gave up after {failures} attempts: {last_reason}")
            delay = random.uniform(0, min(self.options.backoff_cap, self.options.backoff_base * 2**failures))
            logger.info("transient Xero failure, retrying", extra={"reason": last_reason, "delay": round(delay, 2)})
            self._pause(delay, "xero_retry")

    def _rate_limited(self, response: requests.Response) -> None:
        problem = (response.headers.get("X-Rate-Limit-Problem") or "minute").lower()
        try:
            retry_after = float(response.headers.get("Retry-After") or 0)
        except ValueError:
            retry_after = 0.0
        self.stats.add(rate_limited=1)
        logger.info("Xero rate limit", extra={"problem": problem, "retry_after": retry_after})
        if problem == "day":
            raise RateLimited(problem, retry_after or 3600.0)
        if problem == "concurrent":
            retry_after = retry_after or 1.0
        if retry_after > self.options.max_inline_wait:
            raise RateLimited(problem, retry_after)
        self.pacer.hold(retry_after)
        self._pause(0, "rate_limit")

    def _pause(self, seconds: float, reason: WaitReason) -> None:
        end = time.monotonic() + seconds
        with self.pacer.waits.on(reason, seconds):
            while True:
                if self.stop.is_set():
                    raise Stopped
                left = end - time.monotonic()
                if left <= 0:
                    return
                step = min(left, 0.5)
                self.sleep(step)


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("Detail") or body.get("detail") or body.get("Message") or "")[:200]
    return ""
