"""Opaque paging cursors. A cursor carries only the last sort key seen; the partition always comes from the
caller's own scope, so a cursor can never reach into another practice or client."""

import base64
import binascii
import re

from xero_sync.errors import InvalidCursor

MAX_PAGE_SIZE = 100


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, pattern: str) -> str:
    try:
        sort_key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    if not re.fullmatch(pattern, sort_key):
        raise InvalidCursor()
    return sort_key
