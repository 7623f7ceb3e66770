"""What the e2e tests share besides fixtures: the API client and polling."""

import time
from collections.abc import Callable
from typing import Any

import requests

from local.stack import LocalStack


class Api:
    """The front door as the front end calls it."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.session = requests.Session()

    def request(
        self, method: str, path: str, practice: str | None = None, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is None and practice is not None:
            token = self.stack.token(practice)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, self.stack.api_url + path, headers=headers, timeout=30, **kwargs)

    def get(self, path: str, practice: str | None = None, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, practice, **kwargs)

    def post(self, path: str, practice: str | None = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, practice, **kwargs)


def eventually(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2) -> Any:
    """Polls until `check` returns something truthy; the last value (or the last assertion) otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            return result
        time.sleep(interval)
