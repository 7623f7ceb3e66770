"""Xero's rate limits: per tenant (per app) 60/minute, 5,000/day and 5 in flight; per app 10,000/minute.

Windows are fixed and start at the first call after the previous window ended, so they reset at different times for
each tenant ("Requests are counted against a fixed window which will reset at different times for each tenant").
Window lengths follow the emulator clock divided by the time scale.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from local.xero_emulator.clock import Clock
from local.xero_emulator.config import RateLimitConfig

MINUTE, DAY = 60.0, 86_400.0


@dataclass
class _Window:
    start: float = -math.inf
    count: int = 0

    def roll(self, now: float, length: float) -> None:
        if now >= self.start + length:
            self.start, self.count = now, 0

    def retry_after(self, now: float, length: float) -> int:
        return max(1, math.ceil(self.start + length - now))


@dataclass
class Decision:
    allowed: bool
    headers: dict[str, str] = field(default_factory=dict)
    problem: str | None = None  # X-Rate-Limit-Problem: minute, day, concurrent or appminute
    retry_after: int | None = None


class RateLimiter:
    def __init__(self, config: RateLimitConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._lock = threading.Lock()
        self._app_minute: dict[str, _Window] = {}
        self._tenant_minute: dict[tuple[str, str], _Window] = {}
        self._tenant_day: dict[tuple[str, str], _Window] = {}
        self._in_flight: dict[tuple[str, str], int] = {}

    def reset(self) -> None:
        with self._lock:
            self._app_minute.clear()
            self._tenant_minute.clear()
            self._tenant_day.clear()
            self._in_flight.clear()

    def _lengths(self) -> tuple[float, float]:
        scale = self.config.time_scale if self.config.time_scale > 0 else 1.0
        return MINUTE / scale, DAY / scale

    def acquire_app(self, app_id: str) -> Decision:
        """A tenant-less call (GET /connections): only the app minute limit applies."""
        minute_len, _ = self._lengths()
        cfg = self.config
        with self._lock:
            now = self.clock.now()
            window = self._app_minute.setdefault(app_id, _Window())
            window.roll(now, minute_len)
            if cfg.enabled and window.count >= cfg.app_per_minute:
                return Decision(
                    False, {"X-AppMinLimit-Remaining": "0"}, "appminute", window.retry_after(now, minute_len)
                )
            window.count += 1
            return Decision(True, {"X-AppMinLimit-Remaining": str(max(0, cfg.app_per_minute - window.count))})

    def acquire(self, app_id: str, tenant_id: str) -> tuple[Decision, int]:
        """Admit or refuse one call; on admission the caller must release(). Returns (decision, calls in flight)."""
        minute_len, day_len = self._lengths()
        cfg = self.config
        key = (app_id, tenant_id)
        with self._lock:
            now = self.clock.now()
            app = self._app_minute.setdefault(app_id, _Window())
            minute = self._tenant_minute.setdefault(key, _Window())
            day = self._tenant_day.setdefault(key, _Window())
            app.roll(now, minute_len)
            minute.roll(now, minute_len)
            day.roll(now, day_len)
            in_flight = self._in_flight.get(key, 0)

            def headers() -> dict[str, str]:
                return {
                    "X-DayLimit-Remaining": str(max(0, cfg.tenant_per_day - day.count)),
                    "X-MinLimit-Remaining": str(max(0, cfg.tenant_per_minute - minute.count)),
                    "X-AppMinLimit-Remaining": str(max(0, cfg.app_per_minute - app.count)),
                }

            if cfg.enabled:
                if app.count >= cfg.app_per_minute:
                    return Decision(False, headers(), "appminute", app.retry_after(now, minute_len)), in_flight
                if day.count >= cfg.tenant_per_day:
                    return Decision(False, headers(), "day", day.retry_after(now, day_len)), in_flight
                if minute.count >= cfg.tenant_per_minute:
                    return Decision(False, headers(), "minute", minute.retry_after(now, minute_len)), in_flight
                if in_flight >= cfg.tenant_concurrent:
                    # Xero documents Retry-After only for the minute and daily limits.
                    return Decision(False, headers(), "concurrent", None), in_flight
            app.count += 1
            minute.count += 1
            day.count += 1
            self._in_flight[key] = in_flight + 1
            return Decision(True, headers()), in_flight + 1

    def release(self, app_id: str, tenant_id: str) -> None:
        with self._lock:
            key = (app_id, tenant_id)
            self._in_flight[key] = max(0, self._in_flight.get(key, 0) - 1)
