"""EventBridge Scheduler, offline: the template's schedules fired on their expression, or on demand.

Expressions as Scheduler takes them, in the schedule's time zone:
  cron(Minutes Hours Day-of-month Month Day-of-week Year)  e.g. cron(0 2 * * ? *); day-of-week 1-7 is SUN-SAT,
      one of the two day fields is `?`; `L` (last day of month, or `6L` last Friday), `15W` and `n#k` are understood
      (croniter computes the times: AWS's fields are converted to its spelling, not parsed here);
  rate(N minute|minutes|hour|hours|day|days);
  at(yyyy-mm-ddThh:mm:ss).
A target's input gets Scheduler's context attributes (`<aws.scheduler.scheduled-time>` and the others) written in.
"""

import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

log = logging.getLogger("local.stack.scheduler")

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_CRON = re.compile(r"^cron\((.+)\)$")


def _weekday(aws: str) -> str:
    """An AWS day-of-week number (1-7, SUN=1) as croniter's (0-6, SUN=0); names pass through."""
    if not aws.isdigit():
        return aws
    if not 1 <= int(aws) <= 7:
        raise ValueError(f"day-of-week {aws} is out of range 1-7")
    return str(int(aws) - 1)


def _day_of_week(field: str) -> str:
    """AWS's day-of-week field in croniter's spelling: `6L` (last Friday) is `L5`, `2#1` is `1#1`, a lone `L` SAT."""
    parts = []
    for part in field.split(","):
        if "#" in part:
            day, nth = part.split("#", 1)
            parts.append(f"{_weekday(day)}#{nth}")
        elif part == "L":
            parts.append("6")
        elif part.endswith("L"):
            parts.append(f"L{_weekday(part[:-1])}")
        else:
            base, slash, step = part.partition("/")
            parts.append("-".join(_weekday(day) for day in base.split("-")) + slash + step)
    return ",".join(parts)


def cron_to_croniter(text: str) -> str:
    """AWS's six fields (minutes hours day-of-month month day-of-week year) as croniter's seven (seconds at 0).

    AWS requires `?` in exactly one of the day fields; the other one alone decides, so `?` becomes `*` (croniter
    then matches on the restricted field only, as AWS does)."""
    fields = text.split()
    if len(fields) != 6:
        raise ValueError(f"an AWS cron expression has 6 fields, not {len(fields)}: {text}")
    minutes, hours, dom, months, dow, years = fields
    if (dom == "?") == (dow == "?"):
        raise ValueError("exactly one of day-of-month and day-of-week must be '?'")
    dom = "*" if dom == "?" else dom
    dow = "*" if dow == "?" else _day_of_week(dow.upper())
    expression = f"{minutes} {hours} {dom} {months} {dow} 0 {years}"
    if not croniter.is_valid(expression):
        raise ValueError(f"not a cron expression Scheduler would take: cron({text})")
    return expression


@dataclass(frozen=True)
class ScheduleExpression:
    text: str
    timezone: str = "UTC"

    def next_after(self, moment: datetime) -> datetime | None:
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        if found := _CRON.match(self.text):
            expression = cron_to_croniter(found.group(1))
            try:
                following: datetime = croniter(expression, local).get_next(datetime)
            except CroniterBadDateError:  # its years are past: the schedule has no next time
                return None
            return following
        if found := _RATE.match(self.text):
            amount, unit = int(found.group(1)), found.group(2).rstrip("s")
            return local + timedelta(**{f"{unit}s": amount})
        if found := _AT.match(self.text):
            at = datetime.fromisoformat(found.group(1)).replace(tzinfo=zone)
            return at if at > local else None
        raise ValueError(f"not a schedule expression: {self.text}")


@dataclass(frozen=True)
class LocalSchedule:
    name: str
    function: str
    expression: ScheduleExpression
    input: dict[str, Any]


def target_input(input_: dict[str, Any], name: str, scheduled: datetime) -> dict[str, Any]:
    """A schedule's input as Scheduler gives it to the target: its context attributes written in."""
    attributes = {
        "<aws.scheduler.scheduled-time>": f"{scheduled.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "<aws.scheduler.schedule-arn>": f"arn:aws:scheduler:local:000000000000:schedule/default/{name}",
        "<aws.scheduler.execution-id>": secrets.token_hex(8),
        "<aws.scheduler.attempt-number>": "1",
    }
    text = json.dumps(input_)
    for keyword, value in attributes.items():
        text = text.replace(keyword, value)
    result: dict[str, Any] = json.loads(text)
    return result


class Scheduler:
    """Fires each schedule at its next time (asynchronously, as Scheduler invokes a Lambda target)."""

    def __init__(
        self,
        schedules: Sequence[LocalSchedule],
        invoke: Callable[[str, dict[str, Any]], Any],
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.schedules = {schedule.name: schedule for schedule in schedules}
        self.invoke = invoke
        self.now = now or (lambda: datetime.now(ZoneInfo("UTC")))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def fire(self, name: str, scheduled: datetime | None = None) -> Any:
        """Invokes the schedule's target with the schedule's input as Scheduler gives it (`target_input`: the time it
        fires for is `scheduled`, or now when fired on demand); returns what the function returned."""
        schedule = self.schedules[name]
        log.info("schedule %s fires %s", name, schedule.function)
        return self.invoke(schedule.function, target_input(schedule.input, name, scheduled or self.now()))

    def next_fire_times(self) -> dict[str, datetime | None]:
        now = self.now()
        return {name: s.expression.next_after(now) for name, s in self.schedules.items()}

    def start(self) -> None:
        for schedule in self.schedules.values():
            schedule.expression.next_after(self.now())  # an expression the scheduler cannot read fails at start-up
        self._thread = threading.Thread(target=self._run, name="local-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        upcoming = self.next_fire_times()
        while not self._stop.is_set():
            due = [(when, name) for name, when in upcoming.items() if when is not None]
            if not due:
                return
            when, name = min(due)
            if self._stop.wait(max(0.0, (when - self.now()).total_seconds())):
                return
            threading.Thread(target=self._fire_async, args=(name, when), name=f"schedule-{name}", daemon=True).start()
            upcoming[name] = self.schedules[name].expression.next_after(when)

    def _fire_async(self, name: str, scheduled: datetime) -> None:
        try:
            self.fire(name, scheduled)
        except Exception:
            log.exception("schedule %s: its target failed", name)
