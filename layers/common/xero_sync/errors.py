"""Errors the logic raises that callers are meant to see, each with its HTTP status and a stable code."""

from http import HTTPStatus


class ApiError(Exception):
    status: HTTPStatus = HTTPStatus.BAD_REQUEST
    code: str = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
