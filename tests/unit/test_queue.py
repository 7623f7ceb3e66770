"""SendMessageBatch reports failures per entry: ours are resent, SQS's refusals are handed back."""

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
