"""Errors the logic raises that callers are meant to see, each with its HTTP status and a stable code."""

from http import HTTPStatus
from typing import Any


class ApiError(Exception):
    """An error the API answers with its status, code and fixed message (what it says when raised without one).
    Each kind declares what it changes of them as class keywords; the rest it inherits."""

    status: HTTPStatus = HTTPStatus.BAD_REQUEST
    code: str = "bad_request"
    fixed_message: str = "the request is invalid"

    def __init_subclass__(
        cls,
        *,
        status: HTTPStatus | None = None,
        code: str | None = None,
        fixed_message: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code
        if fixed_message is not None:
            cls.fixed_message = fixed_message

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.fixed_message
        super().__init__(self.message)

    @property
    def headers(self) -> dict[str, str]:
        """Headers the error's response carries besides its body."""
        return {}

    @property
    def details(self) -> list[dict[str, Any]] | None:
        """The body's `details`, when the error has any to give."""
        return None


class Unauthorized(ApiError, status=HTTPStatus.UNAUTHORIZED, code="unauthorized"):
    pass


class ClientNotFound(ApiError, status=HTTPStatus.NOT_FOUND, code="client_not_found", fixed_message="no such client"):
    """Also what another practice's client looks like: the two must be indistinguishable."""


class ClientNotLinked(ApiError, status=HTTPStatus.CONFLICT, code="client_not_linked"):
    pass


class SyncNotQueued(
    ApiError,
    status=HTTPStatus.SERVICE_UNAVAILABLE,
    code="enqueue_failed",
    fixed_message="the sync could not be queued; try again",
):
    """The sync queue did not take the run's message: the run is recorded failed, and the client is free again."""


class SyncContended(
    SyncNotQueued,
    code="sync_contended",
    fixed_message="the client kept changing while its sync was being queued; try again",
):
    """The claim of the client's run was refused at every attempt (DynamoDB cancelling the transaction, or the
    client changing each time): no run was written, and the client is as it was."""


class ResourceNotFound(ApiError, status=HTTPStatus.NOT_FOUND, code="resource_not_found"):
    """A data API resource that is not in the catalogue: the message and details name the valid ones."""

    def __init__(self, valid: list[str]) -> None:
        super().__init__(f"no such Xero resource; one of: {', '.join(valid)}")
        self.valid = valid

    @property
    def details(self) -> list[dict[str, Any]] | None:
        return [{"location": "path.resource", "reason": "not a Xero resource", "valid": self.valid}]


class RecordNotFound(ApiError, status=HTTPStatus.NOT_FOUND, code="record_not_found", fixed_message="no such record"):
    pass


class InvalidParameter(ApiError, status=HTTPStatus.UNPROCESSABLE_ENTITY, code="validation_error"):
    """A parameter valid on its own but not here (contactId on a resource without contacts, too many ids): the same
    422 `validation_error` the request validation gives, with where and why."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__()
        self.location, self.reason = location, reason

    @property
    def details(self) -> list[dict[str, Any]] | None:
        return [{"location": self.location, "reason": self.reason}]


class InvalidCursor(ApiError, code="invalid_cursor", fixed_message="the paging cursor is not one this API gave out"):
    pass


class LinkNotCompleted(ApiError):
    """A link completion that linked nothing: its code says why, with the fixed message of that code."""

    def __init__(self, status: HTTPStatus, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# What a practice user is shown when a sync fails: a code and its fixed message, never an exception's text (which
# may carry an account id, a role, a secret's ARN or a response body). The details go to the logs only.
RUN_ERROR_MESSAGES = {
    "sync_error": "The sync failed on our side. The next sync will try again.",
    "xero_error": "Xero answered in a way the sync could not use. The next sync will try again.",
    "xero_transient_failure": "Xero kept failing. The next sync will try again.",
    "pagination_out_of_sequence": "Xero numbered a page of records out of sequence, so it was not stored. The next "
    "sync will try again.",
    "record_mismatch": "Xero's answer for one record was not that record, so nothing was changed. The next sync will "
    "try again.",
    "pagination_repeated": "Xero answered the same page of records when asked for the next, so the read could not go "
    "on. The next sync will try again.",
    "xero_unauthorized": "Xero refused the sync's authorisation. Relink the client if this persists.",
    "xero_forbidden": "Xero no longer allows access to this organisation. Relink it to sync.",
    "token_revoked": "Xero no longer accepts this client's authorisation. Relink it to sync.",
    "no_token_set": "This client has no Xero authorisation. Relink it to sync.",
    "enqueue_failed": "The sync could not be queued. Try again.",
    "worker_lost": "The sync stopped answering and a later sync took over.",
    "client_unlinked": "The client was unlinked before this sync could finish.",
    "client_deleted": "The client was deleted before this sync could finish.",
    # A run that outlived RUN_MAX_AGE_SECONDS still waiting (sync_worker): what it waited on.
    "xero_unavailable": "Xero kept this organisation unavailable (offline or under maintenance) for too long. The "
    "next sync will try again.",
    "token_unavailable": "The client's Xero authorisation could not be refreshed for too long. The next sync will "
    "try again.",
    "rate_limited": "Xero kept limiting the sync's calls for too long. The next sync will try again.",
    "run_expired": "The sync did not finish in the time a sync is given. The next sync will try again.",
}


def run_error_message(code: str) -> str:
    """The fixed message of a run's error code (an unknown code reads as the generic failure)."""
    return RUN_ERROR_MESSAGES.get(code, RUN_ERROR_MESSAGES["sync_error"])


class TooManyRequests(ApiError, status=HTTPStatus.TOO_MANY_REQUESTS, code="too_many_requests"):
    """Refused for now: Retry-After says in how many seconds (at least 1) the same request would be taken."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = max(1, retry_after_seconds)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class RateLimited(TooManyRequests, code="rate_limited"):
    pass


class FullSyncLimited(TooManyRequests, code="full_sync_limited"):
    pass
