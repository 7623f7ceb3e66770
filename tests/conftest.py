"""Every test tier runs the code with the environment a deployed function gets: template.yaml's, resolved with
local names, set here before any test runs (the product reads its settings when first used, then keeps them).

Every AWS call a function makes is checked against that function's IAM policy in template.yaml (tests/aws_calls.py):
moto and DynamoDB Local enforce no IAM, so the test during which a function made a call its policy does not allow
fails here. What each function called is written to test-artifacts/aws-calls-<worker>.json.

The secrets guard (tests/log_guard.py) covers the whole session: every token, code, PKCE verifier and client secret
made in this process is collected, each test fails if a line it logged carries one, and the session ends in an
error if any log line of it, or any log file a local stack wrote under the session's temporary directory, does."""

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

from local.gc_pace import collect_less_often, keep_startup_out_of_collections
from local.stack.template import Template
from tests.aws_calls import CallRecorder, Policies, disallowed
from tests.log_guard import SecretWatch, recording_secrets, subprocess_log_leaks

os.environ.update(
    {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",  # every line the code can write is checked for secrets
    }
)
for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
    os.environ.pop(variable, None)

TEMPLATE = Template()
FUNCTION_ENVIRONMENT = TEMPLATE.functions(TEMPLATE.named_resources())["ClientsFunction"].environment
FUNCTION_ENVIRONMENT["POWERTOOLS_LOG_LEVEL"] = "DEBUG"
os.environ.update(FUNCTION_ENVIRONMENT)


class LogLines(logging.Handler):
    """Every log line of the test session, formatted exactly as the functions write it (JSON, via Powertools)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


pytest_plugins = ("tests.scheduling",)  # how `make test` shares the tests among its workers


def pytest_configure() -> None:
    collect_less_often()  # local/gc_pace.py: collecting was a tenth of a test worker's CPU


def pytest_collection_finish() -> None:
    keep_startup_out_of_collections()  # the imported modules and the collected tests, never garbage


LOG_LINES = LogLines()
SECRETS = SecretWatch()
AWS_CALLS = CallRecorder()
POLICIES = Policies(TEMPLATE)
ARTIFACTS = TEMPLATE.path.parent / "test-artifacts"


@pytest.fixture(scope="session", autouse=True)
def every_log_line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogLines]:
    from xero_sync.observability import logger

    LOG_LINES.setFormatter(logger.registered_formatter)
    service_logger = logging.getLogger(logger.service)
    watched = [logging.getLogger()]  # botocore, urllib3, authlib, werkzeug: at their own (default) levels
    if not service_logger.propagate:
        watched.append(service_logger)
    for watched_logger in watched:
        watched_logger.addHandler(LOG_LINES)
    with recording_secrets(SECRETS):
        yield LOG_LINES
    for watched_logger in watched:
        watched_logger.removeHandler(LOG_LINES)
    leaked = SECRETS.leaks(LOG_LINES.lines) + subprocess_log_leaks(SECRETS, tmp_path_factory.getbasetemp())
    assert not leaked, f"{len(leaked)} log line(s) of the session carry a secret:\n" + "\n".join(leaked[:20])


@pytest.fixture(scope="session", autouse=True)
def every_aws_call() -> Iterator[CallRecorder]:
    with AWS_CALLS.installed():
        yield AWS_CALLS
    used: dict[str, set[str]] = {}
    for call in AWS_CALLS.calls:
        if call.function is not None:
            grants = POLICIES.needed(call)
            used.setdefault(call.function, set()).update(
                f"{g.action} {POLICIES.resource_name(g.resource)}" for g in grants
            )
    ARTIFACTS.mkdir(exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    report = {function: sorted(grants) for function, grants in sorted(used.items())}
    (ARTIFACTS / f"aws-calls-{worker}.json").write_text(json.dumps(report, indent=1) + "\n")


@pytest.fixture(autouse=True, scope="session")
def pynamodb_sessions_share_one_loader() -> Iterator[None]:
    """A test that applies a function environment (every integration test; an e2e stack's start, a test pacing the
    engine to the emulator) drops the product's DynamoDB connection; the next one PynamoDB makes starts a botocore
    session of its own, which would read DynamoDB's service model and endpoint rules from disk again. Here those
    sessions share one botocore loader, which keeps what it read."""
    import pynamodb.connection.base
    from botocore.loaders import create_loader

    original = pynamodb.connection.base.get_session
    loader = create_loader()

    def get_session() -> Any:
        session = original()
        session.register_component("data_loader", loader)
        return session

    pynamodb.connection.base.get_session = get_session
    yield
    pynamodb.connection.base.get_session = original


@pytest.fixture(autouse=True)
def every_aws_call_allowed_by_the_functions_policy(every_aws_call: CallRecorder) -> Iterator[None]:
    first_call = len(every_aws_call.calls)
    yield
    missing = disallowed(POLICIES, every_aws_call.since(first_call))
    assert not missing, "a function made AWS calls its IAM policy does not allow:\n" + "\n".join(missing)


@pytest.fixture(autouse=True)
def no_secret_in_this_tests_log_lines(every_log_line: LogLines) -> Iterator[None]:
    """Fails the test that logged a token, code, verifier or client secret (the session check names no test)."""
    first_line = len(every_log_line.lines)
    yield
    leaked = SECRETS.leaks(every_log_line.lines[first_line:])
    assert not leaked, f"{len(leaked)} log line(s) carry a secret:\n" + "\n".join(leaked[:20])
