"""The nightly fan-out: one message per linked client, read from the index, sent ten at a time."""

from collections import Counter

from tests.builders import a_client
from xero_sync.dispatch import dispatch_nightly
from xero_sync.models import Client, LinkState, RunTrigger
from xero_sync.queue import SyncQueue
from xero_sync.runs import request_sync
from xero_sync.schemas import SyncMessage


def record_calls(botocore_client) -> Counter:
    calls: Counter = Counter()
    botocore_client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
    return calls


def test_nightly_queues_one_message_per_linked_client_in_batches_of_ten_without_a_scan(aws):
    # Given 23 linked clients across two practices, and clients that must be skipped
    linked = [a_client("practice-a") for _ in range(15)] + [a_client("practice-b") for _ in range(8)]
    a_client("practice-a", state=LinkState.UNLINKED)
    a_client("practice-b", state=LinkState.NEEDS_RELINK)
    busy = a_client("practice-a")
    request_sync("practice-a", busy.client_id, RunTrigger.MANUAL)
    aws.receive_all("SyncQueue")  # the Sync Now message is not the dispatcher's
    sqs = aws.session.client("sqs")
    sqs_calls = record_calls(sqs)
    dynamodb_calls = record_calls(Client._get_connection().connection.client)

    # When the nightly dispatch runs
    summary = dispatch_nightly(SyncQueue(aws.queue_url("SyncQueue"), sqs))

    # Then exactly one message per idle linked client is queued, as nightly runs
    messages = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert sorted(m.client_id for m in messages) == sorted(c.client_id for c in linked)
    assert {m.trigger for m in messages} == {RunTrigger.NIGHTLY}
    assert len({m.run_id for m in messages}) == len(messages)
    assert (summary.queued, summary.skipped["already_active"], summary.not_queued) == (23, 1, 0)
    # And it took three SendMessageBatch calls (10 + 10 + 3), only index queries, and no scan
    assert sqs_calls == Counter({"SendMessageBatch": 3})
    assert set(dynamodb_calls) == {"Query"}


def test_nightly_with_no_linked_clients_sends_nothing(aws):
    a_client("practice-a", state=LinkState.UNLINKED)
    sqs = aws.session.client("sqs")
    calls = record_calls(sqs)
    summary = dispatch_nightly(SyncQueue(aws.queue_url("SyncQueue"), sqs))
    assert summary.queued == 0 and calls == Counter()
