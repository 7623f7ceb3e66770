"""The local engines (local/stack/aws_engines.py) are ready when they say which port they hold, never because
something answers on a port: with four pytest workers starting stacks at once, another process may hold it."""

import socket
import time
from collections.abc import Iterator

import boto3
import pytest

from local.stack.aws_engines import HOST, DynamoDBLocal, ManagedProcess, MotoServer

ENGINES = {"DynamoDB Local": DynamoDBLocal, "moto server": MotoServer}


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another process listens on (a socket of this test: it accepts connections, it answers nothing)."""
    with socket.create_server((HOST, 0)) as listener:
        yield listener.getsockname()[1]


@pytest.mark.parametrize("kind", ENGINES)
def test_an_engine_whose_port_is_held_fails_to_start_and_is_not_taken_for_the_holder(kind: str, held_port: int) -> None:
    engine: ManagedProcess = ENGINES[kind](port=held_port)
    began = time.monotonic()
    with pytest.raises(ChildProcessError, match="exited with code"):
        engine.start()
    assert time.monotonic() - began < 20  # at once, not after the start's timeout
    assert engine.process is not None and engine.process.poll() is not None


@pytest.mark.parametrize("kind", ENGINES)
def test_engines_asked_for_any_port_each_listen_on_one_of_their_own(kind: str) -> None:
    with ENGINES[kind]() as first, ENGINES[kind]() as second:
        assert first.port != second.port and 0 not in (first.port, second.port)
        service = "dynamodb" if kind == "DynamoDB Local" else "sqs"
        clients = [
            boto3.client(
                service,
                endpoint_url=engine.endpoint,
                region_name="eu-west-1",
                aws_access_key_id="x",
                aws_secret_access_key="x",
            )
            for engine in (first, second)
        ]
        if service == "sqs":
            clients[0].create_queue(QueueName="only-in-the-first")
            assert "QueueUrls" not in clients[1].list_queues()
        else:
            clients[0].create_table(
                TableName="only-in-the-first",
                KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            assert clients[1].list_tables()["TableNames"] == []
