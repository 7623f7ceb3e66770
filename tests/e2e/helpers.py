"""What the e2e tests share besides fixtures: the API client, polling, and `python -m local up` in a process."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from local.stack.offline_stack import OfflineStack
from local.stack.template import REPO_ROOT

EPHEMERAL_PORTS = ("--api-port", "0", "--console-port", "0", "--emulator-port", "0")
# A stop is bounded (30 s for the invocations under way, each engine SIGKILLed after 10 s); a loaded machine is slow.
STOP_BUDGET_SECONDS = 90


def developer_environment() -> dict[str, str]:
    """The developer's environment, without what an in-process stack of this test session may have exported."""
    leaked = ("AWS_ENDPOINT_URL", "XERO_", "CLIENTS_TABLE", "RECORDS_TABLE", "SYNC_QUEUE_URL")
    return {k: v for k, v in os.environ.items() if not k.startswith(leaked)}


def local_command(state_dir: Path, *args: str) -> list[str]:
    """`python -m local ARGS` on the stack whose state lives in `state_dir`."""
    return [sys.executable, "-m", "local", "--state-dir", str(state_dir), *args]


def run_local(state_dir: Path, *args: str, timeout: float = 60) -> "subprocess.CompletedProcess[str]":
    """`python -m local ARGS` run to its end as a developer runs it; its output captured."""
    return subprocess.run(  # noqa: S603 - our own command line
        local_command(state_dir, *args),
        cwd=REPO_ROOT,
        env=developer_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_local_up(state_dir: Path, *options: str) -> "subprocess.Popen[str]":
    """`python -m local up` as a developer starts it, on ports of its own and without the schedules (and `options`);
    its stdout piped (read it until the ready line, then `drain` it)."""
    return subprocess.Popen(  # noqa: S603 - our own command line
        local_command(state_dir, "up", *EPHEMERAL_PORTS, "--no-schedules", *options),
        cwd=REPO_ROOT,
        env=developer_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def stop_local_up(process: "subprocess.Popen[str]", state_dir: Path) -> None:
    """Stops a stack `start_local_up` started, as Ctrl-C does. One still running after the budget is killed with
    what it started (`python -m local down`), and the test fails with the last lines of the stack's log."""
    process.terminate()
    try:
        process.wait(timeout=STOP_BUDGET_SECONDS)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGUSR1)  # where each of its threads is, into logs/threads.log
        time.sleep(1)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        run_local(state_dir, "down")
        logs = state_dir / "logs"
        tail = _last_lines(logs / "local.log", 20) + _last_lines(logs / "threads.log", 150)
        message = f"the stack did not stop within {STOP_BUDGET_SECONDS} s; its log and threads:\n" + "\n".join(tail)
        raise AssertionError(message) from None


def _last_lines(path: Path, count: int) -> list[str]:
    return path.read_text(errors="replace").splitlines()[-count:] if path.exists() else [f"(no {path.name})"]


def drain(process: "subprocess.Popen[str]") -> None:
    """Reads on and drops the stack's stdout: the functions log there, and an unread pipe fills and blocks the
    stack on a log line (it then could not even stop)."""
    assert process.stdout is not None
    threading.Thread(target=process.stdout.read, name="stack-stdout", daemon=True).start()


class Api:
    """The front door as the front end calls it."""

    def __init__(self, stack: OfflineStack) -> None:
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
