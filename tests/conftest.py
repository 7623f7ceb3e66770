"""Every test tier runs the code with the environment a deployed function gets: template.yaml's, resolved with
local names. This runs before any test module imports xero_sync (its models read table names at import)."""

import logging
import os
from collections.abc import Iterator

import pytest

from local.template import Template

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


LOG_LINES = LogLines()


@pytest.fixture(scope="session", autouse=True)
def every_log_line() -> Iterator[LogLines]:
    from xero_sync.observability import logger

    LOG_LINES.setFormatter(logger.registered_formatter)
    service_logger = logging.getLogger(logger.service)
    watched = [logging.getLogger()]  # botocore, urllib3, authlib: at their own (default) levels
    if not service_logger.propagate:
        watched.append(service_logger)
    for watched_logger in watched:
        watched_logger.addHandler(LOG_LINES)
    yield LOG_LINES
    for watched_logger in watched:
        watched_logger.removeHandler(LOG_LINES)
