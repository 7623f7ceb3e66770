"""Integration tier: the real code against moto in-process, with every resource created from template.yaml."""

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from local.stack.function_environment import apply_function_environment
from local.stack.moto_server import list_handler_methods_once
from local.stack.provision import observe_events, provision
from local.stack.template import PhysicalResource
from tests.api import Api
from tests.conftest import TEMPLATE
from tests.sync_support import XERO_TIME_SCALE, Emulated, fast_settings, forget_fast_settings, linked_client
from tests.xero import Xero, running_xero
from xero_sync import aws_clients
from xero_sync.models import Client
from xero_sync.schemas import SyncMessage


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


class ProvisionedAws:
    """moto in-process with the template's resources, created once per worker: creating them (a boto3 session, its
    service models, ~20 resources) cost each test 1-2 s, clearing them costs it a few milliseconds. moto patches this
    process's botocore, so it is paused while a test of another tier runs (make test mixes tiers on one worker)."""

    def __init__(self) -> None:
        self.mock = mock_aws()
        self.mock.start()
        session = boto3.Session(region_name=TEMPLATE.region)
        physical = provision(TEMPLATE, session)
        observer = observe_events(TEMPLATE, session, physical)
        self.aws = Aws(physical=physical, session=session, event_observer_url=observer)
        self.running = True
        self.sqs = session.client("sqs")
        self.secrets = session.client("secretsmanager")
        self.template_secrets = {
            physical[logical_id].ref: self.secrets.get_secret_value(SecretId=physical[logical_id].ref)["SecretString"]
            for logical_id in TEMPLATE.of_type("AWS::SecretsManager::Secret")
        }

    def resume(self) -> None:
        if not self.running:
            self.mock.start(reset=False)
            self.running = True

    def pause(self) -> None:
        if self.running:
            self.mock.stop(remove_data=False)
            self.running = False

    def stop(self) -> None:
        if self.running:
            self.mock.stop()
            self.running = False

    def clear(self) -> None:
        """Back to what provisioning left: no item in any table, no message on any queue (in flight and delayed
        included), no secret but the template's, each with its first value. Nothing else is written by the code
        (the event bus's rule and the key are never changed)."""
        # The tables are emptied in moto's backend: deleting a small organisation's records through the API (a scan,
        # then a BatchWriteItem per 25) cost the next test a second or more. moto keeps a table's items (its indexes
        # are read from them) in one dict per table.
        dynamodb = dynamodb_backends[DEFAULT_ACCOUNT_ID][TEMPLATE.region]
        for definition in TEMPLATE.table_definitions().values():
            dynamodb.tables[definition["TableName"]].items.clear()
        # SQS allows one purge a minute per queue (moto too, unless told not to); the product never purges.
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR", "false")
            for url in self.sqs.list_queues().get("QueueUrls", []):
                self.sqs.purge_queue(QueueUrl=url)
        for secret in self.secrets.list_secrets(IncludePlannedDeletion=True)["SecretList"]:
            first_value = self.template_secrets.get(secret["ARN"])
            if first_value is None:
                self.secrets.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
            elif self.secrets.get_secret_value(SecretId=secret["ARN"])["SecretString"] != first_value:
                self.secrets.put_secret_value(SecretId=secret["ARN"], SecretString=first_value)


_provisioned: dict[str, ProvisionedAws] = {}
INTEGRATION_DIR = Path(__file__).resolve().parent


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if "aws" in _provisioned and (nextitem is None or INTEGRATION_DIR not in Path(nextitem.path).resolve().parents):
        _provisioned["aws"].pause()


def pytest_sessionfinish() -> None:
    if "aws" in _provisioned:
        _provisioned.pop("aws").stop()


@pytest.fixture
def aws() -> Iterator[Aws]:
    """The template's resources on moto, empty, as if created for this test alone."""
    if "aws" not in _provisioned:
        _provisioned["aws"] = ProvisionedAws()
    provisioned = _provisioned["aws"]
    provisioned.resume()
    provisioned.clear()
    apply_function_environment(TEMPLATE.functions(provisioned.aws.physical)["SyncClientFunction"].environment)
    yield provisioned.aws


@pytest.fixture
def api(aws: Aws) -> Api:
    """The API's functions, called in-process as API Gateway would (tests/api.py)."""
    return Api(aws.physical)


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


@pytest.fixture(autouse=True, scope="session")
def moto_dynamodb_queries_read_only_their_partition() -> Iterator[None]:
    """moto (5.2) answers a query of a table by sorting every item of the table, then keeping its partition's: each
    page a sync reads or checks cost a sort of every record stored so far (most of a sync test's time). Here a table
    query starts from its partition's items alone, found by the key as DynamoDB finds them; moto still sorts them by
    range key and applies the conditions, the page limit and the start key. Index queries are moto's own."""
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original_query, original_all_items = Table.query, Table.all_items
    partition_of = threading.local()  # the partition the current thread's query reads, if it is a table query

    def query(self: Table, hash_key: DynamoType | None, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is not None or hash_key is None or not self.range_key_attr:
            return original_query(self, hash_key, *args, **kwargs)
        partition_of.items = list(self.items.get(hash_key, {}).values())
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            del partition_of.items

    def all_items(self: Table) -> list[Any]:
        items = getattr(partition_of, "items", None)
        return original_all_items(self) if items is None else items

    Table.query, Table.all_items = query, all_items  # type: ignore[method-assign]
    yield
    Table.query, Table.all_items = original_query, original_all_items  # type: ignore[method-assign]


@pytest.fixture(autouse=True, scope="session")
def moto_names_each_answer_field_once() -> Iterator[None]:
    """moto (5.2) builds each answer by asking, for every field of every value (each attribute of each item a query
    returns), which names it may go by in moto's object: five alias rules a time, a third of a sync test's CPU. For
    the plain dicts DynamoDB's answers are made of, those names follow from the field and its shape alone (the
    rules read no more than the shape, its parent's and the object's class), so each is worked out once, and the
    field's value is the first of them the dict holds, as moto's picker finds it. Answers with a transformer on
    some key path, and objects other than dicts, go through moto's own picker."""
    from moto.core.serialize import AttributePickerContext, ResponseSerializer, XFormedAttributePicker

    original = ResponseSerializer.get_value
    names: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def get_value(self: ResponseSerializer, value: Any, key: str, shape: Any) -> Any:
        picker = self._value_picker
        if type(value) is not dict or type(picker) is not XFormedAttributePicker or picker.response_transformers:
            return original(self, value, key, shape)
        parent = getattr(shape, "parent", None)
        field = (
            tuple(picker.alias_providers),
            self.service_model.service_name,
            key,
            None if shape is None else (shape.name, shape.type_name, shape.serialization.get("name")),
            None if parent is None else (parent.name, parent.type_name),
        )
        possible = names.get(field)
        if possible is None:
            context = AttributePickerContext(
                obj=value, key=key, shape=shape, operation_model=self.operation_model, service_model=self.service_model
            )
            possible = names[field] = tuple(picker.get_possible_keys(context))
        if any("." in name for name in possible):  # a path into nested objects: moto's own walk
            return original(self, value, key, shape)
        return next((value[name] for name in possible if name in value), None)

    ResponseSerializer.get_value = get_value  # type: ignore[method-assign]
    yield
    ResponseSerializer.get_value = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True, scope="session")
def moto_lists_each_response_class_once() -> Iterator[None]:
    """As in the local stack's moto server (local/stack/moto_server.py): moto would list a response class's methods
    again at every request it answers."""
    import moto.core.responses as responses

    original = responses.method_names_from_class
    list_handler_methods_once()
    yield
    responses.method_names_from_class = original


@pytest.fixture
def emu(aws: Aws, xero: Xero) -> Iterator[Emulated]:
    """The emulator as the sync tests drive it: its rate-limit minute one real second, the engine told so."""
    xero.admin("POST", "/config", json={"rateLimits": {"timeScale": XERO_TIME_SCALE}})
    fast_settings()
    yield Emulated(xero.base_url, xero.session, xero.emulator)
    forget_fast_settings()


@pytest.fixture
def link(aws: Aws, emu: Emulated) -> Callable[..., tuple[str, Client, SyncMessage]]:
    """`link(name, size="tiny")`: a new organisation linked as a client of practice-a, as a user links one; returns
    its tenant, the client and its first sync's message, taken off the queue."""
    return partial(linked_client, aws.session, Api(aws.physical), emu, aws.queue_url("SyncQueue"))


@pytest.fixture
def queue_url(aws: Aws) -> str:
    return aws.queue_url("SyncQueue")


@pytest.fixture(params=["sqs_unreachable", "sqs_refuses_the_message"])
def sqs_not_taking(request: pytest.FixtureRequest) -> Callable[[], AbstractContextManager[None]]:
    """`with sqs_not_taking():` the one SendMessageBatch made inside fails, in each of the two ways it can: SQS
    answers an error (what botocore raises once its retries are spent), or SQS fails the entry as the sender's
    fault (botocore's Stubber answers in its place)."""

    @contextmanager
    def failing() -> Iterator[None]:
        with Stubber(aws_clients.sqs()) as sqs:
            if request.param == "sqs_unreachable":
                sqs.add_client_error("send_message_batch", "ServiceUnavailable", http_status_code=503)
            else:
                failed = {"Id": "0", "SenderFault": True, "Code": "InvalidParameterValue"}
                sqs.add_response("send_message_batch", {"Successful": [], "Failed": [failed]})
            yield
            sqs.assert_no_pending_responses()

    return failing
