"""The local stack's moto server (local/stack/moto_server.py): SQS's clock read quickly and handlers found once, each
the same as moto's."""

from datetime import datetime
from pathlib import Path

import boto3
import moto.core.responses as responses
import moto.sqs.models as sqs_models
import pytest
from moto.core.utils import method_names_from_class, unix_time_millis
from moto.dynamodb.responses import DynamoHandler
from moto.sqs.responses import SQSResponse

from local.stack.aws_engines import MotoServer
from local.stack.moto_server import list_handler_methods_once, read_sqs_clock_quickly


@pytest.fixture
def quick_sqs_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick clock in this process for one test (moto's own is put back after it)."""
    monkeypatch.setattr(sqs_models, "unix_time", sqs_models.unix_time)
    monkeypatch.setattr(sqs_models, "unix_time_millis", sqs_models.unix_time_millis)
    read_sqs_clock_quickly()


@pytest.mark.usefixtures("quick_sqs_clock")
def test_sqs_messages_read_the_time_moto_would_give_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # The clock moto's SQS models read is the one moto's utils give, now and for a given datetime
    assert abs(sqs_models.unix_time_millis() - unix_time_millis()) < 50
    moment = datetime(2026, 12, 6, 11, 30, 15, 250000)
    assert sqs_models.unix_time_millis(moment) == unix_time_millis(moment)
    # And moto's messages read it (a moto that no longer reads the clock through these names fails here)
    monkeypatch.setattr("time.time", lambda: 1_765_000_000.5)
    message = sqs_models.Message("m-1", "body")
    message.mark_sent(delay_seconds=3)
    assert message.sent_timestamp == 1_765_000_000_500
    assert message.delayed


def test_each_response_class_is_listed_once_and_as_moto_lists_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(responses, "method_names_from_class", responses.method_names_from_class)
    list_handler_methods_once()
    for handler in (SQSResponse, DynamoHandler):
        assert responses.method_names_from_class(handler) == method_names_from_class(handler)
    assert {"receive_message", "send_message"} <= set(responses.method_names_from_class(SQSResponse))
    # And the second request's look-up is the first's list, not a new walk of the class
    assert responses.method_names_from_class(SQSResponse) is responses.method_names_from_class(SQSResponse)


def test_the_stacks_moto_server_answers_sqs_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with MotoServer() as moto:
        sqs = boto3.client(
            "sqs", endpoint_url=moto.endpoint, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        queue = sqs.create_queue(QueueName="moto-server-check")["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody="now")
        sqs.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=60)
        received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
        counts = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert [m["Body"] for m in received] == ["now"]
    assert (counts["ApproximateNumberOfMessagesNotVisible"], counts["ApproximateNumberOfMessagesDelayed"]) == ("1", "1")


def test_an_engine_is_one_process_however_it_is_started_and_none_is_left_after_it() -> None:
    with MotoServer().start() as moto:  # started, then entered: one process, not two
        first = moto.process
        with pytest.raises(RuntimeError, match="already running"):
            moto.start()
        assert moto.process is first
    assert first is not None and first.poll() is not None
