"""The sync worker's handler with SQS batches as Lambda's event source mapping delivers them."""

import hashlib
import json
import uuid

from local.stack.handler_loader import load_handler
from local.stack.lambda_context import LocalLambdaContext
from tests.builders import a_client
from tests.conftest import TEMPLATE
from xero_sync.models import Client, RunTrigger, SyncRun
from xero_sync.sync_requests import request_sync


def sqs_event(aws, bodies: list[str]) -> dict:
    arn = aws.physical["SyncQueue"].attributes["Arn"]
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1764000000000",
                    "SenderId": "local",
                    "ApproximateFirstReceiveTimestamp": "1764000000000",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "eu-west-1",
            }
            for body in bodies
        ]
    }


def invoke_sync_client(aws, event: dict) -> dict:
    function = TEMPLATE.functions(aws.physical)["SyncClientFunction"]
    return load_handler(function)(event, LocalLambdaContext(function.logical_id, function.timeout))


def test_a_batch_runs_each_good_message_and_returns_only_the_bad_one(aws):
    # Given a queued Sync Now message, and a body that is no sync message at all
    client = a_client("practice-a")
    accepted = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    (queued,) = aws.receive_all("SyncQueue")
    event = sqs_event(aws, [queued["Body"], json.dumps({"hello": "world"})])
    # When the worker receives them in one batch
    response = invoke_sync_client(aws, event)
    # Then only the malformed one goes back to the queue (it will reach the dead-letter queue)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    # And the good one's run is recorded and its client released (this client was never linked to Xero: no token set)
    run = SyncRun.get(client.client_id, accepted.run_id)
    assert (run.status, run.error_code) == ("failed", "no_token_set")
    assert Client.get("practice-a", client.client_id).current_run_id is None


def test_a_duplicate_delivery_in_the_same_batch_runs_once(aws):
    client = a_client("practice-a")
    accepted = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    (queued,) = aws.receive_all("SyncQueue")
    response = invoke_sync_client(aws, sqs_event(aws, [queued["Body"], queued["Body"]]))
    assert response == {"batchItemFailures": []}
    assert [r.run_id for r in SyncRun.query(client.client_id)] == [accepted.run_id]
