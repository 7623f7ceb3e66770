"""EventBridge Scheduler, offline: the template's schedules fired on their expression, or on demand.

Expressions as Scheduler takes them, in the schedule's time zone:
  cron(Minutes Hours Day-of-month Month Day-of-week Year)  e.g. cron(0 2 * * ? *); day-of-week 1-7 is SUN-SAT,
      one of the two day fields is `?`; `L` (last day of month, or `6L` last Friday) and `n#k` are understood;
  rate(N minute|minutes|hour|hours|day|days);
  at(yyyy-mm-ddThh:mm:ss).
"""

import calendar
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

log = logging.getLogger("local.scheduler")

_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_CRON = re.compile(r"^cron\((.+)\)$")


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    def number(text: str) -> int:
        value = (names or {}).get(text.upper())
        if value is None:
            value = int(text)
        if not low <= value <= high:
            raise ValueError(f"{text} is out of range {low}-{high}")
        return value

    result: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = number(first), number(last)
        else:
            start = number(base)
            end = high if step_text else start
        result.update(range(start, end + 1, step))
    return result


def _aws_weekday(day: date) -> int:
    return (day.isoweekday() % 7) + 1  # SUN=1 ... SAT=7


@dataclass(frozen=True)
class CronExpression:
    minutes: set[int]
    hours: set[int]
    day_of_month: str
    months: set[int]
    day_of_week: str
    years: set[int]

    @classmethod
    def parse(cls, text: str) -> "CronExpression":
        fields = text.split()
        if len(fields) != 6:
            raise ValueError(f"an AWS cron expression has 6 fields, not {len(fields)}: {text}")
        minutes, hours, dom, months, dow, years = fields
        if (dom == "?") == (dow == "?"):
            raise ValueError("exactly one of day-of-month and day-of-week must be '?'")
        expression = cls(
            minutes=_values(minutes, 0, 59),
            hours=_values(hours, 0, 23),
            day_of_month=dom.upper(),
            months=_values(months, 1, 12, _MONTHS),
            day_of_week=dow.upper(),
            years=_values(years, 1970, 2199),
        )
        expression.matches_day(date(2000, 1, 1))  # validates the day fields
        return expression

    def matches_day(self, day: date) -> bool:
        if day.year not in self.years or day.month not in self.months:
            return False
        last = calendar.monthrange(day.year, day.month)[1]
        if self.day_of_week == "?":
            field = self.day_of_month
            if field == "L":
                return day.day == last
            if "W" in field:
                raise ValueError("the W (nearest weekday) form is not supported by the local scheduler")
            return day.day in _values(field, 1, 31)
        field = self.day_of_week
        if "#" in field:
            weekday, nth = field.split("#")
            return _aws_weekday(day) == _values(weekday, 1, 7, _DAYS).pop() and (day.day - 1) // 7 + 1 == int(nth)
        if field.endswith("L") and field != "L":
            return _aws_weekday(day) == _values(field[:-1], 1, 7, _DAYS).pop() and day.day + 7 > last
        return _aws_weekday(day) in _values(field.replace("L", "7"), 1, 7, _DAYS)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first time after `moment` (an aware datetime in the schedule's zone) that the expression names."""
        tz = moment.tzinfo
        day = moment.date()
        for _ in range(366 * 5):
            if self.matches_day(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                        if candidate > moment:
                            return candidate
            day += timedelta(days=1)
        return None


@dataclass(frozen=True)
class ScheduleExpression:
    text: str
    timezone: str = "UTC"

    def next_after(self, moment: datetime) -> datetime | None:
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        if found := _CRON.match(self.text):
            return CronExpression.parse(found.group(1)).next_after(local)
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

    def fire(self, name: str) -> Any:
        """Invokes the schedule's target now with the schedule's input; returns what the function returned."""
        schedule = self.schedules[name]
        log.info("schedule %s fires %s", name, schedule.function)
        return self.invoke(schedule.function, dict(schedule.input))

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
            threading.Thread(target=self._fire_async, args=(name,), name=f"schedule-{name}", daemon=True).start()
            upcoming[name] = self.schedules[name].expression.next_after(when)

    def _fire_async(self, name: str) -> None:
        try:
            self.fire(name)
        except Exception:
            log.exception("schedule %s: its target failed", name)
