"""Pacing one organisation's calls to Xero's limits, and accounting for what they waited.

- At most `max_in_flight` calls at once (Xero allows 5 per organisation), whatever the number of threads.
- A per-minute budget (Xero: 60 a minute) kept by a sliding log of our own calls, and `X-MinLimit-Remaining`
  honoured: when Xero says the minute is spent, no call goes out until the window has passed (no 429 needed).
- The waits under way and the wall-clock time waited, for a run's progress and its record.
"""

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

# What a sync waits on: Xero's minute limit (a Retry-After, or the minute's budget spent), its daily limit, an
# organisation Xero reports offline (503), or a back-off after a transient failure.
WaitReason = Literal["rate_limit", "daily_limit", "organisation_offline", "xero_retry"]


class Stopped(Exception):
    """The engine asked every worker to stop before its next call (a deadline, a rate limit elsewhere)."""


class Waits:
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
    waits: Waits = field(default_factory=Waits, repr=False)  # the pacer's: what the calls waited, wall-clock
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, calls: int = 0, rate_limited: int = 0) -> None:
        with self.lock:
            self.calls += calls
            self.rate_limited += rate_limited

    @property
    def waited_seconds(self) -> float:
        return self.waits.wall_seconds()


class Pacer:
    """In-flight cap plus the per-minute budget.

    Xero counts calls in fixed windows that start when the first call after the previous window ended arrives; so
    does the pacer, which cannot see that arrival: it places the window's start at the first answer to a call of the
    window, which came back after that call arrived (the start it could see, the call's sending, is a one-way trip
    early, and a window resumed that early is refused with a 429). Within a window the budget is the smaller of our
    own allowance and what Xero last reported (X-MinLimit-Remaining, less the calls already on their way); when it
    is spent, no call starts before the window ends. A sliding log of our own calls caps any window at
    calls_per_window.
    """

    def __init__(
        self,
        max_in_flight: int,
        calls_per_window: int,
        window_seconds: float,
        stop: threading.Event,
        sleep: Callable[[float], None],
    ) -> None:
        self.calls_per_window = calls_per_window
        self.window_seconds = window_seconds
        self.stop = stop
        self.sleep = sleep
        self.slots = threading.BoundedSemaphore(max_in_flight)
        self.lock = threading.Lock()
        self.sent: deque[float] = deque()
        self.blocked_until = 0.0
        self.in_flight = 0
        self.window_start = -math.inf
        self.window_placed = True  # whether an answer to one of this window's calls has placed its start
        self.budget: int | None = None  # what Xero says is left in this window, less what we sent since
        self.waits = Waits()

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
                    window = self.window_seconds
                    while self.sent and self.sent[0] <= now - window:
                        self.sent.popleft()
                    pause = self.blocked_until - now
                    if len(self.sent) >= self.calls_per_window:
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
