"""moto's server as the local stack runs it: `python -m local.stack.moto_server [moto.server's options]`.

moto (5.2) reads SQS's clock through datetime arithmetic (now minus the epoch, as a timedelta) and counts a queue's
messages (each message's visibility and delay: two clock reads) for every message it sends or receives: a nightly
dispatch of a thousand clients, and the receives after it, spent most of their time there. Here SQS's clock is
`time.time()`: the same value, without the datetimes. And moto lists a response class's methods (inspect.getmembers)
at every request, to find the action's handler; the classes never change, so each is listed once.
tests/tooling/test_moto_server.py holds both to moto's own answers.
"""

import sys
import time
from datetime import datetime
from functools import cache


def read_sqs_clock_quickly() -> None:
    """moto's SQS models read the clock through `time.time()` from now on (in this process)."""
    import moto.sqs.models as sqs_models

    moto_unix_time = sqs_models.unix_time

    def unix_time(dt: datetime | None = None) -> float:
        return time.time() if dt is None else moto_unix_time(dt)

    def unix_time_millis(dt: datetime | None = None) -> float:
        return unix_time(dt) * 1000.0

    sqs_models.unix_time = unix_time
    sqs_models.unix_time_millis = unix_time_millis


def list_handler_methods_once() -> None:
    """moto finds each request's handler among its response class's methods: listed once per class from now on (in
    this process)."""
    import moto.core.responses as responses

    responses.method_names_from_class = cache(responses.method_names_from_class)


def main() -> None:
    read_sqs_clock_quickly()
    list_handler_methods_once()
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
