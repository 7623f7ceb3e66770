"""Xero's dates: `/Date(1439434356790+0000)/` in every answer. A module of its own so that reading stored records
never imports the Xero client (requests, tenacity): the read-only handlers start faster without them."""

import re
from datetime import UTC, datetime
from typing import Any

_MS_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


def from_ms(ms: float) -> datetime:
    """The moment an epoch-milliseconds stamp (parse_ms_date's) names, in UTC."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def parse_ms_date(value: Any) -> int | None:
    """Xero's `/Date(1439434356790+0000)/` as milliseconds since the epoch (the offset is informational)."""
    match = _MS_DATE.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None
