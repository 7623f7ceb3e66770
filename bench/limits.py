"""Xero's per-organisation limits and what a run's calls cost against them: the rate-limit floor, the minute windows a
run used (replayed from the emulator's call timeline), and the projection of a time-scaled run onto real minutes.

Organisations up to medium run on Xero's real minute, and their times are measured. The large one runs its limits on
a clock `scale` times faster (a "minute" lasts 60/scale s; latency is not scaled), so its wall time mixes real time
(calls in flight, the client's own work) with scaled time (waiting for a spent minute to pass). The projection
replays its windows with real minutes:
- a spent window (its 60 calls admitted, or all but the few our pacer keeps back for calls in flight, or a call
  refused) lasted, from its first call to the next window's, span = minute + overshoot. With real minutes that is
  60 s + the overshoot: neither client's overshoot scales with the minute (our pacer waits out a window from the
  first answer to one of its calls, a round trip after it began; tap-xero sleeps whole seconds of Retry-After);
- a window the client did not spend went at its own pace: with real minutes it would have gone on at that pace
  until 60 calls and then waited, so it takes the longer of its measured span and a second per call (60 a minute);
- the last window, and time outside any window, are real time already.
"""

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

CALLS_PER_MINUTE = 60
IN_FLIGHT = 5
REAL_MINUTE = 60.0


@dataclass(frozen=True)
class Call:
    arrived: float
    answered: float
    status: int


def calls_from_timeline(rows: Iterable[Sequence[float]], since: float = float("-inf")) -> list[Call]:
    """The emulator's `timeline` rows ([arrived, answered, status]) from `since` on, in order of arrival."""
    calls = [Call(float(a), float(b), int(s)) for a, b, s in rows if float(a) >= since]
    return sorted(calls, key=lambda c: c.arrived)


def rate_floor_seconds(calls: int, latency_seconds: float, minute_seconds: float = REAL_MINUTE) -> float:
    """The issue's floor: `calls` at 60 a minute, or at 5 in flight with this latency, whichever takes longer."""
    return max(calls / CALLS_PER_MINUTE * minute_seconds, calls * latency_seconds / IN_FLIGHT)


@dataclass
class Window:
    start: float
    admitted: int = 0
    refused: int = 0

    @property
    def spent(self) -> bool:
        return self.admitted >= CALLS_PER_MINUTE - IN_FLIGHT or self.refused > 0


def windows(calls: Sequence[Call], minute_seconds: float) -> list[Window]:
    """Xero's fixed windows, replayed: one starts with the first call after the previous one ended."""
    out: list[Window] = []
    for call in calls:
        if not out or call.arrived >= out[-1].start + minute_seconds:
            out.append(Window(call.arrived))
        if call.status == 429:
            out[-1].refused += 1
        else:
            out[-1].admitted += 1
    return out


@dataclass
class Projection:
    seconds: float  # the run's wall time with real minutes
    windows: int
    spent_windows: int
    client_paced_windows: int  # not spent and not the last: the client's own pace, capped at 60 calls a minute
    calls_per_window: list[int]  # admitted in each window, in order


def project(wall_seconds: float, calls: Sequence[Call], scale: float) -> Projection:
    minute = REAL_MINUTE / scale
    found = windows(calls, minute)
    extra = 0.0
    spent = paced = 0
    for window, following in itertools.pairwise(found):
        span = following.start - window.start
        if window.spent:
            spent += 1
            real_span = REAL_MINUTE + max(0.0, span - minute)
        else:
            paced += 1
            real_span = max(span, window.admitted * REAL_MINUTE / CALLS_PER_MINUTE)
        extra += real_span - span
    if found and found[-1].spent:
        spent += 1
    return Projection(wall_seconds + extra, len(found), spent, paced, [w.admitted for w in found])


def call_figures(stats: dict[str, Any], wall_seconds: float, latency_seconds: float, scale: float) -> dict[str, Any]:
    """A run's calls as the emulator saw them (its stats for the organisation, cleared before the run), its time
    scaled and projected onto real minutes, and the floors of both."""
    calls = calls_from_timeline(stats.get("timeline", []))
    admitted = sum(1 for c in calls if c.status != 429)
    projection = project(wall_seconds, calls, scale)
    by_endpoint = dict(stats.get("calls", {}))
    return {
        "calls": admitted,
        "refused429": len(calls) - admitted,
        "maxInFlight": stats.get("maxInFlight", 0),
        "callsByEndpoint": by_endpoint,
        "seconds": round(wall_seconds, 2),
        "floorSeconds": round(rate_floor_seconds(admitted, latency_seconds, REAL_MINUTE / scale), 2),
        "unscaledSeconds": round(projection.seconds, 1),
        "unscaledFloorSeconds": round(rate_floor_seconds(admitted, latency_seconds), 1),
        "windows": projection.windows,
        "spentWindows": projection.spent_windows,
        "clientPacedWindows": projection.client_paced_windows,
        "callsPerWindow": projection.calls_per_window,
    }
