"""Contract tier: the code against the real DynamoDB engine (DynamoDB Local) and a moto server for SQS, with the
resources created from template.yaml. One set of engines per test session; tests keep apart by practice id."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from local.stack.aws_engines import DynamoDBLocal, MotoServer
from local.stack.function_environment import apply_function_environment
from local.stack.provision import provision
from local.stack.template import PhysicalResource
from tests.conftest import FUNCTION_ENVIRONMENT, TEMPLATE
from tests.xero import Xero, running_xero


@dataclass
class Engines:
    physical: dict[str, PhysicalResource]
    session: boto3.Session
    endpoints: dict[str, str]

    def point_here(self) -> None:
        apply_function_environment(TEMPLATE.functions(self.physical)["SyncClientFunction"].environment, self.endpoints)


def pytest_itemcollected(item: pytest.Item) -> None:
    """`make test` hands this tier's files to one worker (an xdist_group: tests/scheduling.py): its engines start
    once in a run."""
    item.add_marker(pytest.mark.xdist_group("contract-engines"))


@pytest.fixture(scope="session")
def started_engines() -> Iterator[Engines]:
    with DynamoDBLocal() as dynamodb, MotoServer() as moto:
        endpoints = {"AWS_ENDPOINT_URL": moto.endpoint, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint}
        apply_function_environment(FUNCTION_ENVIRONMENT, endpoints)
        session = boto3.Session(region_name=TEMPLATE.region)
        yield Engines(physical=provision(TEMPLATE, session), session=session, endpoints=endpoints)


@pytest.fixture
def engines(started_engines: Engines) -> Iterator[Engines]:
    """Points this process at the engines for one test (other tiers in the same process point elsewhere)."""
    started_engines.point_here()
    yield started_engines
    apply_function_environment(FUNCTION_ENVIRONMENT)


@pytest.fixture
def practice(engines: Engines) -> str:
    """A practice of this test's own, so tests sharing the engines never see each other's clients."""
    return f"practice-{uuid.uuid4()}"


@pytest.fixture
def xero(engines: Engines) -> Iterator[Xero]:
    environment = TEMPLATE.functions(engines.physical)["SyncClientFunction"].environment
    with running_xero(environment, engines.endpoints) as xero:
        yield xero
