"""The nightly fan-out: one message per linked client, read from the index, sent ten at a time."""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from unittest.mock import Mock

import pytest
from botocore.exceptions import ClientError

from local.stack.scheduler import target_input
from tests.builders import a_client, a_client_sorting_first
from tests.conftest import TEMPLATE
from tests.integration.test_delete_client import purge_messages
from tests.sync_support import drain
from xero_sync import deletion, dispatch, ids
from xero_sync.dispatch import dispatch_nightly
from xero_sync.ids import MAX_PRACTICE_ID_BYTES
from xero_sync.models import CLEANUP_PARTITION, Client, LinkState, RunStatus, RunTrigger, SyncRun, TokenSetRef
from xero_sync.observability import metrics
from xero_sync.queue import SyncQueue
from xero_sync.runs import begin_run, suspend_run
from xero_sync.schemas import SyncMessage
from xero_sync.sync_requests import request_sync
from xero_sync.sync_worker import process_sync_message


def record_calls(botocore_client) -> Counter:
    calls: Counter = Counter()
    botocore_client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
    return calls


def record_queries(botocore_client) -> list[dict]:
    """The parameters of every Query the client sends."""
    queries: list[dict] = []

    def remember(params, **_):
        queries.append(dict(params))

    botocore_client.meta.events.register("provide-client-params.dynamodb.Query", remember)
    return queries


def busy_clients() -> dict[str, Client]:
    """Linked clients that already have a run: queued (Sync Now), running (a worker on it), deferred (day limit)."""
    queued, running, deferred = a_client("practice-a"), a_client("practice-a"), a_client("practice-b")
    request_sync("practice-a", queued.client_id, RunTrigger.MANUAL)
    for client in (running, deferred):
        accepted = request_sync(client.practice_id, client.client_id, RunTrigger.MANUAL)
        begun = begin_run(
            SyncMessage(
                practice_id=client.practice_id,
                client_id=client.client_id,
                run_id=accepted.run_id,
                trigger=RunTrigger.MANUAL,
            )
        )
        assert begun is not None
    message = SyncMessage(
        practice_id=deferred.practice_id,
        client_id=deferred.client_id,
        run_id=Client.get(deferred.practice_id, deferred.client_id).current_run_id,
        trigger=RunTrigger.MANUAL,
    )
    assert suspend_run(message, RunStatus.DEFERRED, datetime.now(UTC) + timedelta(hours=3), "daily_limit")
    return {"queued": queued, "running": running, "deferred": deferred}


def test_nightly_queues_one_message_per_linked_client_in_batches_of_ten_from_index_pages(aws, monkeypatch):
    # Given 23 idle linked clients across two practices, 3 busy ones, 2 unlinked and 1 needing a relink
    linked = [a_client("practice-a") for _ in range(15)] + [a_client("practice-b") for _ in range(8)]
    busy = busy_clients()
    a_client("practice-a", state=LinkState.UNLINKED)
    a_client("practice-b", state=LinkState.UNLINKED)
    a_client("practice-b", state=LinkState.NEEDS_RELINK)
    aws.receive_all("SyncQueue")  # the Sync Now messages are not the dispatcher's
    monkeypatch.setattr(dispatch, "INDEX_PAGE_SIZE", 10)
    sqs = aws.session.client("sqs")
    sqs_calls = record_calls(sqs)
    dynamodb = Client._get_connection().connection.client
    dynamodb_calls = record_calls(dynamodb)
    queries = record_queries(dynamodb)

    # When the nightly dispatch runs
    summary = dispatch_nightly(SyncQueue(aws.queue_url("SyncQueue"), sqs))

    # Then exactly one message per idle linked client is queued, as nightly runs
    messages = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert sorted(m.client_id for m in messages) == sorted(c.client_id for c in linked)
    assert {m.trigger for m in messages} == {RunTrigger.NIGHTLY}
    assert len({m.run_id for m in messages}) == len(messages)
    # And every other client is skipped, counted by reason
    assert (summary.queued, summary.not_queued) == (23, 0)
    assert summary.skipped == {"queued": 1, "running": 1, "deferred": 1, "unlinked": 2, "needs_relink": 1}
    assert all(c.client_id not in {m.client_id for m in messages} for c in busy.values())
    # And it took three SendMessageBatch calls (10 + 10 + 3), pages of the index, and no scan of the clients: the
    # one scan is of the token sets (none here, so no client is read for them)
    assert sqs_calls == Counter({"SendMessageBatch": 3})
    assert set(dynamodb_calls) == {"Query", "Scan"} and dynamodb_calls["Scan"] == 1
    by_state = [q for q in queries if q["IndexName"] == "clients-by-link-state"]
    linked_pages = [q for q in by_state if q.get("Select") != "COUNT"]
    assert len(linked_pages) == 3 and all(q["Limit"] == 10 for q in linked_pages)  # 26 linked, 10 a page
    counted = sorted(q["ExpressionAttributeValues"][":0"]["S"] for q in by_state if q.get("Select") == "COUNT")
    assert counted == ["needs_relink", "unlinked"]
    # (and one query of the clients whose Xero clean-up is pending)
    assert {q["IndexName"] for q in queries} - {"clients-by-link-state"} == {"pending-cleanups"}


def test_nightly_with_no_linked_clients_sends_nothing(aws):
    a_client("practice-a", state=LinkState.UNLINKED)
    sqs = aws.session.client("sqs")
    calls = record_calls(sqs)
    summary = dispatch_nightly(SyncQueue(aws.queue_url("SyncQueue"), sqs))
    assert summary.queued == 0 and calls == Counter()


def invoke_dispatch(aws, payload: dict) -> dict:
    from local.stack.handler_loader import load_handler
    from local.stack.lambda_context import LocalLambdaContext

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


def test_a_nightly_invocation_retried_after_its_messages_went_out_syncs_each_client_once(aws, monkeypatch):
    # Given three linked clients, and a nightly invocation that fails after its fan-out (here the token-set sweep)
    clients = [a_client("practice-a") for _ in range(3)]
    monkeypatch.setattr(dispatch, "forget_orphaned_token_sets", Mock(side_effect=[RuntimeError("throttled"), 0]))
    (nightly,) = TEMPLATE.schedules()
    event = target_input(nightly.input, "nightly", datetime(2026, 12, 8, 2, tzinfo=UTC))  # as Scheduler gives it
    with pytest.raises(RuntimeError):
        invoke_dispatch(aws, event)
    for message in drain(aws.session, aws.queue_url("SyncQueue")):  # tonight's runs, to their end
        process_sync_message(message)
    aws.events()
    # When Lambda retries the same event
    assert invoke_dispatch(aws, event)["queued"] == 3
    for message in drain(aws.session, aws.queue_url("SyncQueue")):
        process_sync_message(message)
    # Then each client was synced once that night: one run each, and no second run's events
    assert [len(list(SyncRun.query(c.client_id))) for c in clients] == [1, 1, 1]
    assert [t for t, _ in aws.events() if t.startswith("Xero Sync")] == []


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
    assert summary["skipped"] == {"not_found": 1, "not_linked": 1, "active": 0}
    messages = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert sorted((m.client_id, m.trigger) for m in messages) == sorted(
        [(mine.client_id, RunTrigger.CONSOLE), (theirs.client_id, RunTrigger.CONSOLE)]
    )


def test_a_console_rerun_of_a_client_already_syncing_counts_it_active_not_queued(aws):
    # Given a client whose Sync Now is queued, and another that is idle
    busy, idle = a_client("practice-a"), a_client("practice-a")
    pressed = request_sync("practice-a", busy.client_id, RunTrigger.MANUAL)
    aws.receive_all("SyncQueue")
    # When the operator reruns both
    summary = invoke_dispatch(aws, {"clientIds": [busy.client_id, idle.client_id]})
    # Then only the idle one is queued; the busy one keeps its run and is said to be active
    assert (summary["queued"], summary["skipped"]["active"]) == (1, 1)
    (message,) = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert message.client_id == idle.client_id
    assert Client.get("practice-a", busy.client_id).current_run_id == pressed.run_id


def test_a_console_rerun_sqs_does_not_take_is_counted_as_not_queued(aws, sqs_not_taking):
    client = a_client("practice-a")
    with sqs_not_taking():
        summary = dispatch.dispatch_clients([client.client_id])
    assert (summary.queued, summary.not_queued) == (0, 1)
    assert Client.get("practice-a", client.client_id).current_run_id is None
    assert aws.receive_all("SyncQueue") == []


def test_a_malformed_console_invoke_is_refused_with_the_reason(aws):
    answer = invoke_dispatch(aws, {"clientIds": ["not-an-id"], "extra": 1})
    assert answer["error"] == "bad_request"
    assert {tuple(e["loc"]) for e in answer["message"]} == {("clientIds", 0), ("extra",)}
    assert aws.receive_all("SyncQueue") == []


def test_a_clean_up_that_fails_unexpectedly_is_logged_and_counted_and_the_nightly_goes_on(aws, every_log_line):
    # Given an unlinked client whose token set's ref names a secret that is gone (a deletion that removed the secret
    # and was stopped before the ref), another waiting for Xero, and a deleted client whose purge message was lost
    now = datetime.now(UTC)
    broken, later = a_client("practice-a", state=LinkState.UNLINKED), a_client("practice-b", state=LinkState.UNLINKED)
    TokenSetRef(
        token_set_id="ts-secret-gone", practice_id="practice-a", secret_name="xero-sync/gone", created_at=now
    ).save()
    broken.update(actions=[Client.cleanup_partition.set(CLEANUP_PARTITION), Client.token_set_id.set("ts-secret-gone")])
    later.update(actions=[Client.cleanup_partition.set(CLEANUP_PARTITION)])
    deleted = a_client("practice-a")
    deletion.delete_client("practice-a", deleted.client_id, queue=LostPurges())
    first_line = len(every_log_line.lines)
    # When the nightly dispatch runs, every night
    summary = dispatch_nightly()
    # Then the broken clean-up is logged (its error's type) and counted pending; the other clean-up is done, and
    # the lost purge is queued again
    assert (summary.cleanups_pending, summary.purges_requeued) == (1, 1)
    assert Client.get("practice-b", later.client_id).cleanup_partition is None
    lines = [json.loads(line) for line in every_log_line.lines[first_line:] if "clean-up after unlink failed" in line]
    assert [(line["client_id"], line["error"]) for line in lines] == [(broken.client_id, "ResourceNotFoundException")]


class LostPurges(deletion.PurgeQueue):
    def __init__(self) -> None:
        pass

    def send(self, message: deletion.PurgeMessage, delay_seconds: int = 0) -> None:
        raise ClientError({"Error": {"Code": "ServiceUnavailable"}}, "SendMessage")


# Ways one linked client's nightly message cannot be made: a practice id no message can carry (stored by a write that
# is not the API's), and any error of our own while making it (here its run id's).
MESSAGE_FAULTS = ["practice_id_over_the_limit", "run_id_fails"]


def a_client_without_a_message(fault: str, others: list[Client], monkeypatch) -> tuple[Client, str]:
    """A linked client sorting before `others` in the index (the fan-out reaches it first) whose message cannot be
    made, and the type of the error that says so."""
    if fault == "practice_id_over_the_limit":
        return a_client_sorting_first("p" * (MAX_PRACTICE_ID_BYTES + 1), others), "ValidationError"
    broken = a_client_sorting_first("practice-a", others)

    def run_id(scheduled: datetime, client_id: str) -> str:
        if client_id == broken.client_id:
            raise RuntimeError("no run id")
        return ids.scheduled_run_id(scheduled, client_id)

    monkeypatch.setattr(dispatch, "scheduled_run_id", run_id)
    return broken, "RuntimeError"


@pytest.mark.parametrize("fault", MESSAGE_FAULTS)
def test_a_client_whose_message_cannot_be_made_is_logged_and_counted_and_the_nightly_goes_on(
    aws, every_log_line, monkeypatch, fault
):
    # Given linked clients of two practices, and one more, first in the index, whose sync message cannot be made
    others = [a_client("practice-a") for _ in range(12)] + [a_client("practice-b") for _ in range(12)]
    broken, error = a_client_without_a_message(fault, others, monkeypatch)
    # And the clean-ups after the fan-out have work: an unlinked client's Xero clean-up, a deleted client's lost purge
    unlinked = a_client("practice-b", state=LinkState.UNLINKED)
    unlinked.update(actions=[Client.cleanup_partition.set(CLEANUP_PARTITION)])
    deleted = a_client("practice-a")
    deletion.delete_client("practice-a", deleted.client_id, queue=LostPurges())
    sweep = Mock(wraps=dispatch.forget_orphaned_token_sets)
    monkeypatch.setattr(dispatch, "forget_orphaned_token_sets", sweep)
    monkeypatch.setattr(dispatch, "INDEX_PAGE_SIZE", 10)  # the fan-out goes on over pages too
    metrics.clear_metrics()
    first_line = len(every_log_line.lines)

    # When the nightly dispatch runs
    summary = dispatch_nightly(scheduled=datetime(2026, 12, 8, 2, tzinfo=UTC))

    # Then every other linked client's sync is queued, of either practice
    messages = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert sorted(m.client_id for m in messages) == sorted(c.client_id for c in others)
    # And the one without a message is counted failed (the answer, its metric) and logged by its id, with the error
    assert (summary.queued, summary.failed, summary.not_queued) == (len(others), 1, 0)
    assert sum(metrics.metric_set["ClientsFailed"]["Value"]) == 1
    lines = [json.loads(line) for line in every_log_line.lines[first_line:] if "sync message not made" in line]
    assert [(line["client_id"], line["error"]) for line in lines] == [(broken.client_id, error)]
    # And the clean-ups after the fan-out ran: the Xero clean-up is done, the purge queued again, the sweep run
    assert (summary.cleanups_pending, summary.purges_requeued) == (0, 1)
    assert Client.get("practice-b", unlinked.client_id).cleanup_partition is None
    assert [m.client_id for m in purge_messages(aws)] == [deleted.client_id]
    sweep.assert_called_once_with()


def test_a_client_whose_console_rerun_raises_is_logged_and_counted_and_the_others_are_queued(
    aws, every_log_line, monkeypatch
):
    # Given three linked clients named in a console dispatch, the middle one's sync message cannot be made (a
    # practice id no message can carry, stored by a write that is not the API's)
    first, last = a_client("practice-a"), a_client("practice-b")
    broken, error = a_client_without_a_message("practice_id_over_the_limit", [first, last], monkeypatch)
    first_line = len(every_log_line.lines)

    # When the operator dispatches the three
    summary = invoke_dispatch(aws, {"clientIds": [first.client_id, broken.client_id, last.client_id]})

    # Then the other two are queued as console runs, the one after the failing client too
    messages = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert sorted((m.client_id, m.trigger) for m in messages) == sorted(
        [(first.client_id, RunTrigger.CONSOLE), (last.client_id, RunTrigger.CONSOLE)]
    )
    # And the answer counts the failing one failed, and the log names it and the error's type (not its text)
    assert (summary["queued"], summary["failed"], summary["not_queued"]) == (2, 1, 0)
    lines = [json.loads(line) for line in every_log_line.lines[first_line:] if "console sync request failed" in line]
    assert [(line["client_id"], line["error"]) for line in lines] == [(broken.client_id, error)]
    done = [json.loads(line) for line in every_log_line.lines[first_line:] if "console dispatch done" in line]
    assert [line["failed"] for line in done] == [1]
