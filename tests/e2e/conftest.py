"""One local stack (in-process front door, pollers and functions; DynamoDB Local and moto as child processes) shared
by the e2e tests of a run. It is stopped, and the process environment restored, as soon as the next test to run is
not an e2e test, so the other tiers never see its endpoints (`make test` mixes tiers on one xdist worker).

Kinds of stack, one at a time (a stack owns the process environment): `stack`, where Xero is a closed port, and
`xero_stack`, with the Xero emulator, for the tests that link clients and sync them for real (a module asks for it by
overriding `stack`; a module that works on both overrides it with `any_stack`), and `limited_stack`, the plain one
with a small limit per practice for the limit's own test. A kind starts when a test first needs it and is replaced
only when a test needs another, so the Xero tests' real syncs never share a queue with the tests that count what is
on it.

No stack at all for the console's browser tests in the states of the API a stack reaches only after hours or in races:
`page`, Chromium on the console whose API is a scripted double (api_double.py), one of each per module."""

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.chaos.driver import STACK_OPTIONS as CHAOS_STACK
from local.stack.function_environment import forget_cached_clients
from local.stack.offline_stack import OfflineStack
from tests.e2e.api_double import ApiDouble, Console, Page
from tests.e2e.browser import chromium
from tests.e2e.helpers import Api
from tests.sync_support import FAST_LIMITS, XERO_TIME_SCALE
from tests.xero import Xero

E2E_DIR = Path(__file__).resolve().parent
VISIBILITY_TIMEOUT = 2  # seconds; the template's 5400 s would make redelivery untestable
MAX_RECEIVE_COUNT = 2  # deliveries before the dead-letter queue (the template's default is 5)
# With the emulator a real sync takes seconds: a visibility timeout shorter than that would redeliver it mid-run.
XERO_VISIBILITY_TIMEOUT = 120
# The purge stack's purge function timeout (the template's is 300 s): a slice hands over its client's purge
# purge_time_margin_seconds before its invocation's end, so each slice here has about a second to delete, and a
# purge spans several invocations at twenty thousand records, not the millions 300 s would need.
PURGE_TIMEOUT_SECONDS = 9

# Without the emulator, Xero is a closed port: never a developer's running emulator, never the real Xero.
UNREACHABLE_XERO = {name: "http://127.0.0.1:9" for name in ("XeroLoginUrl", "XeroIdentityUrl", "XeroApiUrl")}

# The fuzz calls one practice's mutating routes FUZZ_MAX_EXAMPLES times each (over the template's 60 a minute once
# raised): its answers must be the routes' own, not the limit's, which has its own stack kind below.
UNLIMITED_PRACTICE = {"PracticeRequestLimit": "1000000"}
# The limit's own test (test_limits_e2e.py): a few requests, in a window no test run crosses.
LIMITED_PRACTICE = {"PracticeRequestLimit": "3", "PracticeRequestWindowSeconds": "86400"}

XERO_STACK: dict[str, Any] = {"emulator": True, "visibility_timeout": XERO_VISIBILITY_TIMEOUT}
STACK_KINDS: dict[str, dict[str, Any]] = {
    "plain": {
        "emulator": False,
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "parameters": {"SyncMaxReceiveCount": str(MAX_RECEIVE_COUNT), **UNREACHABLE_XERO, **UNLIMITED_PRACTICE},
    },
    "limited": {
        "emulator": False,
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "parameters": {"SyncMaxReceiveCount": str(MAX_RECEIVE_COUNT), **UNREACHABLE_XERO, **LIMITED_PRACTICE},
    },
    "xero": XERO_STACK,
    # The xero stack with the purge's invocations cut to PURGE_TIMEOUT_SECONDS (the client delete's e2e).
    "purge": {**XERO_STACK, "function_timeouts": {"PurgeFunction": PURGE_TIMEOUT_SECONDS}},
    "chaos": CHAOS_STACK,  # the chaos driver's (local/chaos/driver.py): a killed worker's message is back in seconds
}

_holder: dict[str, tuple[str, OfflineStack]] = {}


def _running_stack(kind: str, tmp_path_factory: pytest.TempPathFactory) -> OfflineStack:
    if "stack" in _holder and _holder["stack"][0] != kind:
        stop_stack()
    if "stack" not in _holder:
        stack = OfflineStack(
            api_port=0,
            run_schedules=False,
            state_dir=tmp_path_factory.mktemp(f"local-stack-{kind}"),
            write_state=True,  # for processes attached to it (python -m local worker)
            **STACK_KINDS[kind],
        )
        _holder["stack"] = (kind, stack.start())
    return _holder["stack"][1]


def stop_stack() -> None:
    held = _holder.pop("stack", None)
    if held is not None:
        held[1].stop()


# The fixture each kind of stack comes from; a test whose fixtures name none of them needs no stack of this tier's.
KIND_OF_FIXTURE = {
    "chaos_stack": "chaos",
    "limited_stack": "limited",
    "xero_stack": "xero",
    "purge_stack": "purge",
    "stack": "plain",
}
# Files that start stacks of their own (the CLI, the demo, the browser tests) first, while no shared stack idles.
KIND_ORDER = [None, "plain", "limited", "purge", "xero", "chaos"]


def stack_kind(item: pytest.Item) -> str | None:
    names = getattr(item, "fixturenames", ())
    return next((kind for fixture, kind in KIND_OF_FIXTURE.items() if fixture in names), None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The e2e tests run grouped by the kind of stack they need (files whole, in their order within a kind), and
    `make test` hands each kind's files to one worker (an xdist_group: tests/scheduling.py), so one stack of each
    kind starts in a run rather than one on each worker, and again at every change of kind (a start is a JVM and a
    moto server, seconds of CPU each)."""
    slots = [i for i, item in enumerate(items) if E2E_DIR in Path(item.path).resolve().parents]
    e2e = [items[i] for i in slots]
    kind_of_file: dict[Path, str | None] = {}
    for item in e2e:  # a file's kind is its first test's that needs a stack (any_stack follows whichever runs)
        path = Path(item.path)
        if kind_of_file.get(path) is None:
            kind_of_file[path] = stack_kind(item)
    files = list(dict.fromkeys(Path(item.path) for item in e2e))
    rank = {path: (KIND_ORDER.index(kind_of_file[path]), files.index(path)) for path in files}
    for slot, item in zip(slots, sorted(e2e, key=lambda item: rank[Path(item.path)]), strict=True):
        items[slot] = item
        if kind := kind_of_file[Path(item.path)]:
            item.add_marker(pytest.mark.xdist_group(f"{kind}-stack"))


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None or E2E_DIR not in Path(nextitem.path).resolve().parents:
        stop_stack()


def pytest_sessionfinish() -> None:
    stop_stack()


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> OfflineStack:
    return _running_stack("plain", tmp_path_factory)


@pytest.fixture
def xero_stack(tmp_path_factory: pytest.TempPathFactory) -> OfflineStack:
    """The stack with the Xero emulator running and the local Xero app registered for its callback."""
    return _running_stack("xero", tmp_path_factory)


@pytest.fixture
def purge_stack(tmp_path_factory: pytest.TempPathFactory) -> OfflineStack:
    """The xero stack with the purge function's invocations cut short, for a purge in several slices."""
    return _running_stack("purge", tmp_path_factory)


@pytest.fixture
def limited_stack(tmp_path_factory: pytest.TempPathFactory) -> OfflineStack:
    """The plain stack with a small limit per practice (LIMITED_PRACTICE, through the template's parameters)."""
    return _running_stack("limited", tmp_path_factory)


@pytest.fixture
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> OfflineStack:
    """The stack `python -m local chaos` runs on, for the chaos smoke."""
    return _running_stack("chaos", tmp_path_factory)


@pytest.fixture
def any_stack(tmp_path_factory: pytest.TempPathFactory) -> OfflineStack:
    """Whichever kind of stack runs (for a test that works on both: it never makes the worker switch)."""
    if "stack" in _holder:
        return _holder["stack"][1]
    return _running_stack("plain", tmp_path_factory)


@pytest.fixture
def xero(stack: OfflineStack) -> Iterator[Xero]:
    """The Xero emulator of the module's stack (`xero_stack` or `chaos_stack`), as the tests drive its admin API
    (latency set by a test is undone after it)."""
    assert stack.emulator is not None, "this module's stack runs no Xero emulator: override `stack` with xero_stack"
    emulator = Xero(stack.emulator, requests.Session())
    yield emulator
    with contextlib.suppress(RuntimeError):  # the stack is gone already (the last e2e test of the run)
        emulator.admin("POST", "/config", json={"latencyMs": 0})
    emulator.session.close()


@pytest.fixture
def xero_minute_a_second(xero: Xero, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Xero's rate-limit minute shortened to a second, and the engine (in this process and the worker processes a
    test starts, which inherit its environment) pacing itself to that minute and backing off quickly."""
    for name, value in FAST_LIMITS.items():
        monkeypatch.setenv(name, value)
    forget_cached_clients()
    xero.admin("POST", "/config", json={"rateLimits": {"timeScale": XERO_TIME_SCALE}, "latencyMs": 10})
    yield
    with contextlib.suppress(RuntimeError):  # the stack may be gone already (the last e2e test of the run)
        xero.admin("POST", "/config", json={"rateLimits": {"timeScale": 1}})
    monkeypatch.undo()
    forget_cached_clients()


@pytest.fixture
def practice() -> str:
    """A practice of this test's own: tests never see each other's data."""
    return f"practice-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def api(stack: OfflineStack) -> Iterator[Api]:
    client = Api(stack)
    yield client
    client.session.close()


@pytest.fixture
def seed_client(stack: OfflineStack) -> Callable[..., Any]:
    """Writes a client straight into DynamoDB Local with the shared package's model (as linking does)."""
    from tests.builders import a_client
    from xero_sync.models import LinkState

    def seed(practice_id: str, name: str, linked: bool = True) -> Any:
        return a_client(practice_id, name, LinkState.LINKED if linked else LinkState.UNLINKED)

    return seed


@pytest.fixture(scope="module")
def api_double() -> Iterator[ApiDouble]:
    double = ApiDouble()
    double.start()
    yield double
    double.stop()


@pytest.fixture(scope="module")
def console(api_double: ApiDouble) -> Iterator[Console]:
    """The console server, its API the double (and the double's CORS for its origin)."""
    server = Console()
    server.config = {
        "apiUrl": api_double.url,
        "signIn": {"mode": "local", "tokensUrl": f"{api_double.url}/_local/tokens"},
    }
    api_double.console_origin = server.url
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_chromium() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def page(module_chromium: Any, console: Console, api_double: ApiDouble) -> Page:
    """The module's browser on the console, the double with no answers and nothing logged, config.json served."""
    api_double.reset()
    console.reset()
    return Page(module_chromium, console, api_double)
