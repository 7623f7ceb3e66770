"""Integration tier: the real code against moto in-process, with every resource created from template.yaml."""

from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from local.environment import apply_function_environment
from local.provision import provision
from local.template import PhysicalResource
from tests.conftest import TEMPLATE
from tests.sync_support import Emulated, fast_settings, forget_fast_settings
from tests.xero import Xero, running_xero


@dataclass
class Aws:
    physical: dict[str, PhysicalResource]
    session: boto3.Session

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
        apply_function_environment(TEMPLATE.functions(physical)["SyncClientFunction"].environment)
        yield Aws(physical=physical, session=session)


@pytest.fixture
def xero(aws: Aws) -> Iterator[Xero]:
    with running_xero(TEMPLATE.functions(aws.physical)["SyncClientFunction"].environment, {}) as xero:
        yield xero


@pytest.fixture(autouse=True, scope="session")
def moto_tables_iterate_a_snapshot() -> Iterator[None]:
    """moto's in-process DynamoDB walks a table's live dicts on every query, so a sync's concurrent writes (five
    resources at once) can make another thread's query fail with "dictionary changed size during iteration".
    DynamoDB never does that; here each walk takes a snapshot first (list() of a dict is one step under the GIL).
    The contract tier runs on the real engine."""
    from moto.dynamodb.models.table import Table

    original = Table.all_items

    def all_items(self: Table) -> list:
        items = []
        for hash_set in list(self.items.values()):
            items.extend(list(hash_set.values()) if self.range_key_attr else [hash_set])
        return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    Table.all_items = all_items  # type: ignore[method-assign]
    yield
    Table.all_items = original  # type: ignore[method-assign]


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
