"""SendMessageBatch reports failures per entry: ours are resent, SQS's refusals are handed back."""

import threading
import time

import boto3
from botocore.stub import ANY, Stubber

from xero_sync.models import RunTrigger
from xero_sync.queue import SyncQueue
from xero_sync.schemas import SyncMessage

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/sync"


def messages(count: int) -> list[SyncMessage]:
    return [
        SyncMessage(
            practice_id="p",
            client_id=f"{n:08d}-0000-4000-8000-000000000000",
            run_id=f"r{n}",
            trigger=RunTrigger.NIGHTLY,
        )
        for n in range(count)
    ]


def batch_request(count: int) -> dict:
    return {"QueueUrl": QUEUE_URL, "Entries": [ANY] * count}


def test_entries_sqs_failed_on_its_side_are_sent_again_and_refused_ones_are_returned():
    sqs = boto3.client("sqs", region_name="eu-west-1")
    to_send = messages(12)
    with Stubber(sqs) as stub:
        # First batch of ten: two throttled (sent again), one refused as malformed (handed back)
        failed = [
            {"Id": "3", "SenderFault": False, "Code": "ThrottlingException"},
            {"Id": "7", "SenderFault": False, "Code": "InternalError"},
            {"Id": "9", "SenderFault": True, "Code": "InvalidParameterValue"},
        ]
        successful = [
            {"Id": str(n), "MessageId": "m", "MD5OfMessageBody": "x"} for n in range(10) if n not in {3, 7, 9}
        ]
        stub.add_response("send_message_batch", {"Successful": successful, "Failed": failed}, batch_request(10))
        resent = [
            {"Id": "3", "MessageId": "m", "MD5OfMessageBody": "x"},
            {"Id": "7", "MessageId": "m", "MD5OfMessageBody": "x"},
        ]
        stub.add_response("send_message_batch", {"Successful": resent, "Failed": []}, batch_request(2))
        # Second batch: the last two
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [
                    {"Id": "0", "MessageId": "m", "MD5OfMessageBody": "x"},
                    {"Id": "1", "MessageId": "m", "MD5OfMessageBody": "x"},
                ],
                "Failed": [],
            },
            batch_request(2),
        )
        unsent = SyncQueue(QUEUE_URL, sqs).send(to_send)
        stub.assert_no_pending_responses()
    assert unsent == [to_send[9]]


class SlowSqs:
    """SendMessageBatch that takes a while and refuses one message; records how many calls overlapped."""

    def __init__(self, refuse: str) -> None:
        self.refuse = refuse
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0
        self.sent: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.02)
        bodies = {e["Id"]: SyncMessage.model_validate_json(e["MessageBody"]) for e in Entries}
        failed = [
            {"Id": i, "SenderFault": True, "Code": "Invalid"} for i, m in bodies.items() if m.run_id == self.refuse
        ]
        with self.lock:
            self.in_flight -= 1
            self.sent += [m.run_id for i, m in bodies.items() if m.run_id != self.refuse]
        return {"Successful": [], "Failed": failed}


def test_batches_sent_several_at_a_time_still_send_every_message_once_and_hand_back_refusals():
    # Given 95 messages (ten batches) and an SQS that refuses one of them
    sqs = SlowSqs(refuse="r42")
    to_send = messages(95)
    # When they are sent four calls at a time, from a stream read as it goes
    unsent = SyncQueue(QUEUE_URL, sqs).send(iter(to_send), in_flight=4)  # type: ignore[arg-type]
    # Then every other message was sent exactly once, the refused one is handed back, and calls overlapped (<= 4)
    assert sorted(sqs.sent) == sorted(m.run_id for m in to_send if m.run_id != "r42")
    assert unsent == [to_send[42]]
    assert 1 < sqs.most_in_flight <= 4
