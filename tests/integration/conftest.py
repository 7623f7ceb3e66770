"""Integration tier: the real code against moto in-process, with every resource created from template.yaml."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.stack.function_environment import apply_function_environment
from local.stack.provision import observe_events, provision
from local.stack.template import PhysicalResource
from tests.conftest import TEMPLATE
from tests.sync_support import Emulated, fast_settings, forget_fast_settings
from tests.xero import Xero, running_xero


@dataclass
class Aws:
    physical: dict[str, PhysicalResource]
    session: boto3.Session
    event_observer_url: str  # every event put on the template's bus (local.stack.provision.observe_events)

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """(detail-type, detail) of each event published since the last call (moto's queue keeps the order they were
        put in)."""
        sqs = self.session.client("sqs")
        events: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=self.event_observer_url, MaxNumberOfMessages=10).get("Messages"):
            events.extend(json.loads(m["Body"]) for m in batch)
            sqs.delete_message_batch(
                QueueUrl=self.event_observer_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        return [(event["detail-type"], event["detail"]) for event in events]

    def queue_url(self, logical_id: str) -> str:
        return self.physical[logical_id].ref

    def receive_all(self, logical_id: str) -> list[dict]:
        sqs = self.session.client("sqs")
        messages: list[dict] = []
        while batch := sqs.receive_message(
            QueueUrl=self.queue_url(logical_id), MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", []):
            messages.extend(batch)
        return messages


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        session = boto3.Session(region_name=TEMPLATE.region)
        physical = provision(TEMPLATE, session)
        observer = observe_events(TEMPLATE, session, physical)
        apply_function_environment(TEMPLATE.functions(physical)["SyncClientFunction"].environment)
        yield Aws(physical=physical, session=session, event_observer_url=observer)


@pytest.fixture
def xero(aws: Aws) -> Iterator[Xero]:
    with running_xero(TEMPLATE.functions(aws.physical)["SyncClientFunction"].environment, {}) as xero:
        yield xero


@pytest.fixture(autouse=True, scope="session")
def moto_dynamodb_answers_one_request_at_a_time() -> Iterator[None]:
    """moto's in-process DynamoDB walks live dicts while answering (a query's items, an item's attributes), so a
    sync's concurrent writes (five resources at once) can make another thread's read fail with "dictionary changed
    size during iteration". DynamoDB never does that; here its requests take turns, each whole, as the real engine
    makes each one atomic. Other services are left concurrent: an SQS long poll must not hold up the writes it waits
    for. The contract tier runs on the real engine."""
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.__call__
    one_at_a_time = threading.Lock()

    def answer(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        if ".dynamodb." not in event_name:
            return original(self, event_name, request, **kwargs)
        with one_at_a_time:
            return original(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = answer  # type: ignore[method-assign]
    yield
    BotocoreStubber.__call__ = original  # type: ignore[method-assign]


@pytest.fixture
def emu(aws: Aws, xero: Xero) -> Iterator[Emulated]:
    """The emulator as the sync tests drive it: its rate-limit minute one real second, the engine told so."""
    xero.admin("POST", "/config", json={"rateLimits": {"timeScale": 60}})
    fast_settings()
    yield Emulated(xero.base_url, xero.session)
    forget_fast_settings()


@pytest.fixture
def queue_url(aws: Aws) -> str:
    return aws.queue_url("SyncQueue")
