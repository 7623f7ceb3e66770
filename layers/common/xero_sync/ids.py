"""Identifiers: what a practice id may be, time-ordered run ids, and client ids that are unique per (practice, Xero
organisation)."""

import hashlib
import re
import secrets
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator

# Deriving the client id from the practice and the tenant makes "one client per organisation per practice" a
# property of the key: a conditional put can never create a duplicate, however two link callbacks interleave.
_CLIENT_NAMESPACE = uuid.UUID("6f1c7d0e-4a55-4b5e-9a0c-2f1e0b7d9c31")
# A UUID in its canonical text form: a client id (validated before any lookup), and Xero's own ids (ContactID...).
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CLIENT_ID_PATTERN = UUID_PATTERN
_UUID = re.compile(UUID_PATTERN)
RUN_ID_PATTERN = r"^\d{8}T\d{12}Z-[0-9a-f]{8}$"
_RUN_ID = re.compile(RUN_ID_PATTERN)

# A practice id (the JWT's practice claim) is a key, and part of one (the rate limit's window): far below DynamoDB's
# 2,048-byte partition keys. The API refuses a claim that is not one (401); every message naming a practice takes
# any the API takes (PracticeId), so a practice the API serves can always be synced and purged.
MAX_PRACTICE_ID_BYTES = 512


def practice_id_problem(value: str) -> str | None:
    """Why `value` cannot be a practice id (empty, not UTF-8 text, over MAX_PRACTICE_ID_BYTES), or None when it can."""
    if not value:
        return "is empty"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate (JSON can escape one): no key or message can hold it
        return "is not UTF-8 text"
    if size > MAX_PRACTICE_ID_BYTES:
        return f"is over {MAX_PRACTICE_ID_BYTES} bytes"
    return None


def _practice_id(value: str) -> str:
    if (problem := practice_id_problem(value)) is not None:
        raise ValueError(f"a practice id {problem}")
    return value


PracticeId = Annotated[str, AfterValidator(_practice_id)]


def client_id_for(practice_id: str, tenant_id: str) -> str:
    return str(uuid.uuid5(_CLIENT_NAMESPACE, f"{practice_id}\n{tenant_id}"))


def new_run_id(now: datetime, suffix: str | None = None) -> str:
    """Sorts by time (so newest-first is a reverse query), unique by its suffix (8 hex digits; random if not given)."""
    return f"{now:%Y%m%dT%H%M%S%f}Z-{suffix or secrets.token_hex(4)}"


def scheduled_run_id(scheduled: datetime, client_id: str) -> str:
    """A nightly run's id, the same at every delivery of one scheduled fan-out (Lambda's and Scheduler's retries of
    it): a retry's message names the run the first one created, and the worker drops it (runs.begin_run)."""
    return new_run_id(scheduled, hashlib.sha256(f"{client_id}\n{scheduled.isoformat()}".encode()).hexdigest()[:8])


def is_run_id(value: str) -> bool:
    return bool(_RUN_ID.fullmatch(value))


def is_uuid(value: str) -> bool:
    """Whether `value` is a UUID in its canonical text form (as Xero writes its ids)."""
    return bool(_UUID.fullmatch(value))
