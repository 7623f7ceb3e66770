"""Errors the logic raises that callers are meant to see, each with its HTTP status and a stable code."""

from http import HTTPStatus


class ApiError(Exception):
    status: HTTPStatus = HTTPStatus.BAD_REQUEST
    code: str = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        """Headers the error's response carries besides its body."""
        return {}


class Unauthorized(ApiError):
    status = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"


class ClientNotFound(ApiError):
    """Also what another practice's client looks like: the two must be indistinguishable."""

    status = HTTPStatus.NOT_FOUND
    code = "client_not_found"

    def __init__(self) -> None:
        super().__init__("no such client")


class ClientNotLinked(ApiError):
    status = HTTPStatus.CONFLICT
    code = "client_not_linked"


class InvalidCursor(ApiError):
    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("the paging cursor is not one this API gave out")


class TooManyRequests(ApiError):
    """Refused for now: Retry-After says in how many seconds (at least 1) the same request would be taken."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "too_many_requests"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = max(1, retry_after_seconds)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class RateLimited(TooManyRequests):
    code = "rate_limited"


class FullSyncLimited(TooManyRequests):
    code = "full_sync_limited"
