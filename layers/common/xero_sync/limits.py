"""Limits per practice on the API's mutating routes: a fixed window per practice, counted in DynamoDB.

Each request adds one to its practice's current window with one conditional UpdateItem (ADD, only while the count is
below the limit), so concurrent requests across any number of Lambdas never let more than the limit through; there is
no read before the write. A window's item is keyed "{practice_id}#{window_start_epoch}" and expires by TTL after it.

A route opts in with `middlewares=[practice_limit]` and documents the answer with
`documented(..., HTTPStatus.TOO_MANY_REQUESTS)`. Powertools runs route middlewares after its request validation (no
I/O) and before the handler, so the check comes after the JWT's practice is read and before any other work.
"""

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from pynamodb.exceptions import UpdateError

from xero_sync.api import caller_practice_id, documented
from xero_sync.config import get_settings
from xero_sync.errors import RateLimited
from xero_sync.models import RequestWindow, condition_failed

# Epoch seconds now; the tests move it to cross a window without sleeping.
clock: Callable[[], float] = time.time


def take_request(practice_id: str) -> None:
    """Counts one request of the practice in the current window, or raises RateLimited when it is full."""
    settings = get_settings()
    window = settings.practice_request_window_seconds
    now = clock()
    start = int(now // window) * window
    end = start + window
    try:
        RequestWindow(window_key=f"{practice_id}#{start}").update(
            actions=[
                RequestWindow.requests.add(1),
                # One window more than needed: TTL deletes late anyway, and a key names one window only.
                RequestWindow.expires_at.set(datetime.fromtimestamp(end + window, UTC)),
            ],
            condition=RequestWindow.requests.does_not_exist()
            | (RequestWindow.requests < settings.practice_request_limit),
        )
    except UpdateError as error:
        if not condition_failed(error):
            raise
        retry_after = math.ceil(end - now)
        raise RateLimited(
            f"this practice made {settings.practice_request_limit} such requests in {window} s; "
            f"try again in {max(1, retry_after)} s",
            retry_after,
        ) from None


def practice_limit(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    """Route middleware: the caller's practice (401 without one) takes a request from its window, then the route
    runs; over the limit it is a 429 `rate_limited` with Retry-After."""
    take_request(caller_practice_id(app))
    return next_middleware(app)


def limited(success: dict[int, Any] | None = None, *more_errors: HTTPStatus) -> dict[str, Any]:
    """A mutating route's options: the practice's limit applied (practice_limit), its 429 documented beside its other
    answers. `@app.post(path, **limited({202: ...}, HTTPStatus.CONFLICT))`."""
    return {
        "responses": documented(success, *more_errors, HTTPStatus.TOO_MANY_REQUESTS),
        "middlewares": [practice_limit],
    }
