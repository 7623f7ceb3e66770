"""Xero's dates: `/Date(1439434356790+0000)/` in every answer. A module of its own so that reading stored records
never imports the Xero client (requests, tenacity): the read-only handlers start faster without them."""

import re
from datetime import UTC, datetime
from typing import Any

_MS_DATE = re.compile(r"^/Date\((-?\d{1,16})(?:[+-]\d{4})?\)/$")
# What a datetime can hold (years 1 to 9999): a stamp outside it names no moment, and is no date at all.
_FIRST_MS = int(datetime(1, 1, 1, tzinfo=UTC).timestamp() * 1000)
_LAST_MS = int(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)


def from_ms(ms: float) -> datetime:
    """The moment an epoch-milliseconds stamp (parse_ms_date's) names, in UTC."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def parse_ms_date(value: Any) -> int | None:
    """Xero's `/Date(1439434356790+0000)/` as milliseconds since the epoch (the offset is informational); None for
    anything else, a stamp out of a calendar's range included."""
    match = _MS_DATE.match(value) if isinstance(value, str) else None
    ms = int(match.group(1)) if match else None
    return ms if ms is not None and _FIRST_MS <= ms <= _LAST_MS else None
