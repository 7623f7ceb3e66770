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


def invoke_dispatch(aws, payload: dict) -> dict:
    from local.handlers import load_handler
    from local.lambda_context import LocalLambdaContext
    from tests.conftest import TEMPLATE

    function = TEMPLATE.functions(aws.physical)["SyncDispatchFunction"]
    return load_handler(function)(payload, LocalLambdaContext(function.logical_id, function.timeout))


def test_the_schedules_input_dispatches_nightly_runs_and_an_empty_console_invoke_console_runs(aws):
    client = a_client("practice-a")
    assert invoke_dispatch(aws, {"trigger": "nightly"})["queued"] == 1
    (nightly,) = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert (nightly.client_id, nightly.trigger) == (client.client_id, RunTrigger.NIGHTLY)
    assert invoke_dispatch(aws, {})["queued"] == 1
    (console,) = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert console.trigger == RunTrigger.CONSOLE


def test_a_console_invoke_naming_clients_queues_just_those_and_says_why_it_skipped_others(aws):
    # Given clients of two practices, an unlinked one, and an id nobody has
    mine, theirs = a_client("practice-a"), a_client("practice-b")
    a_client("practice-a")  # not named: not queued
    unlinked = a_client("practice-a", state=LinkState.UNLINKED)
    unknown = "abcdef00-0000-4000-8000-000000000000"
    # When the operator reruns them by id
    summary = invoke_dispatch(aws, {"clientIds": [mine.client_id, theirs.client_id, unlinked.client_id, unknown]})
    # Then the two linked ones are queued as console runs, and the others are counted by reason
    assert summary["queued"] == 2
    assert summary["skipped"] == {"not_found": 1, "not_linked": 1}
    messages = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert sorted((m.client_id, m.trigger) for m in messages) == sorted(
        [(mine.client_id, RunTrigger.CONSOLE), (theirs.client_id, RunTrigger.CONSOLE)]
    )


def test_a_malformed_console_invoke_is_refused_with_the_reason(aws):
    answer = invoke_dispatch(aws, {"clientIds": ["not-an-id"], "extra": 1})
    assert answer["error"] == "bad_request"
    assert {tuple(e["loc"]) for e in answer["message"]} == {("clientIds", 0), ("extra",)}
    assert aws.receive_all("SyncQueue") == []
