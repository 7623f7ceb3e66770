"""Xero's date formats: Microsoft JSON dates in the Accounting API, naive ISO strings in the Identity API."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def ms_date(ms: int) -> str:
    """`/Date(1573755038314+0000)/`, the form Xero uses for dates and timestamps in JSON."""
    return f"/Date({ms}+0000)/"


def envelope_date(ms: int) -> str:
    """The envelope's DateTimeUTC carries no offset in Xero's examples."""
    return f"/Date({ms})/"


def parse_ms_date(value: str) -> int | None:
    match = _MS_DATE.match(value)
    return int(match.group(1)) if match else None


def iso_z(ms: int) -> str:
    """`2019-03-05T18:59:06Z` (UpdatedDateUTCString)."""
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_naive(ms: int) -> str:
    """`2016-11-12T00:00:00` (DateString and friends)."""
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def identity_date(seconds: float) -> str:
    """`2019-12-07T18:46:19.5165400`: the Identity API's naive UTC timestamps with 7 fractional digits."""
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0"


def day_ms(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp() * 1000)


def parse_if_modified_since(value: str) -> int:
    """Milliseconds since the epoch, truncated to the second (Xero: "accurate to the second").

    Accepts ISO 8601 (what the official SDKs send; naive means UTC) and the RFC 7231 HTTP-date form.
    Raises ValueError on anything else.
    """
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            dt = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"unreadable If-Modified-Since: {value!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1000
