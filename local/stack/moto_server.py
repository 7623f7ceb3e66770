"""moto's server as the local stack runs it: `python -m local.stack.moto_server --port N --port-file PATH`, moto's
WSGI app in werkzeug's threaded server as moto.server runs it (port 0: any free one). Once it listens, it writes the
port it holds to PATH: the local stack waits for that file (local/stack/aws_engines.py), never for something to
answer on a port, which another process could hold.

moto (5.2) reads SQS's clock through datetime arithmetic (now minus the epoch, as a timedelta) and counts a queue's
messages (each message's visibility and delay: two clock reads) for every message it sends or receives: a nightly
dispatch of a thousand clients, and the receives after it, spent most of their time there. Here SQS's clock is
`time.time()`: the same value, without the datetimes. And moto lists a response class's methods (inspect.getmembers)
at every request, to find the action's handler; the classes never change, so each is listed once.
tests/tooling/test_moto_server.py holds both to moto's own answers.
"""

import argparse
import time
from datetime import datetime
from functools import cache
from pathlib import Path

from local.gc_pace import collect_less_often, keep_startup_out_of_collections


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


def write_port(port_file: Path, port: int) -> None:
    """Written whole (a rename), so a reader never sees half a number."""
    partial = port_file.with_name(port_file.name + ".partial")
    partial.write_text(str(port))
    partial.replace(port_file)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.stack.moto_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--port-file", type=Path, required=True, help="where to write the port, once listening")
    args = parser.parse_args(argv)
    collect_less_often()
    read_sqs_clock_quickly()
    list_handler_methods_once()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    # Bound here, in the main thread: a port that cannot be had ends the process at once.
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    keep_startup_out_of_collections()
    write_port(args.port_file, server.port)
    server.serve_forever()  # until SIGTERM (how the stack stops its engines) ends the process


if __name__ == "__main__":
    main()
