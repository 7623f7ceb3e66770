"""One run per client at a time: Sync Now, nightly messages, duplicates and lapsed claims."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from types import SimpleNamespace

import pytest
from pydantic import ValidationError
from pynamodb.exceptions import TransactWriteError

from tests.builders import a_client, nightly_message
from tests.faults import Killed
from xero_sync import aws_clients
from xero_sync.config import get_settings
from xero_sync.errors import ClientNotFound, ClientNotLinked, run_error_message
from xero_sync.ids import MAX_PRACTICE_ID_BYTES
from xero_sync.models import Client, LinkState, RunStatus, RunTrigger, SyncRun
from xero_sync.run_history import list_runs
from xero_sync.runs import begin_run, finish_run, suspend_run
from xero_sync.schemas import SyncMessage
from xero_sync.sync_requests import request_sync
from xero_sync.tables import shared_connection


def lapse_the_claim(client: Client) -> None:
    client.update(actions=[Client.current_run_expires_at.set(datetime.now(UTC) - timedelta(seconds=1))])


def queued_bodies(aws) -> list[SyncMessage]:
    return [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]


def test_sync_now_queues_one_run_and_a_second_press_returns_it(aws):
    # Given a linked client
    client = a_client("practice-a")
    # When Sync Now is pressed twice
    first = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    second = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    # Then both presses name one queued run, and one message is on the queue
    assert first.run_id == second.run_id
    assert first.status is RunStatus.QUEUED
    assert [m.run_id for m in queued_bodies(aws)] == [first.run_id]
    run = SyncRun.get(client.client_id, first.run_id)
    assert (run.status, run.trigger) == ("queued", "manual")


def test_a_sync_whose_message_cannot_be_made_writes_nothing_and_leaves_the_client_free(aws):
    # Given a linked client stored under a practice id no message takes (the API refuses such an id; another writer
    # stored it)
    client = a_client("p" * (MAX_PRACTICE_ID_BYTES + 1))
    # When a sync of it is requested
    with pytest.raises(ValidationError):
        request_sync(client.practice_id, client.client_id, RunTrigger.CONSOLE)
    # Then no run was written and the client holds no claim: nothing waits for a lease to lapse
    assert list(SyncRun.query(client.client_id)) == []
    client.refresh(consistent_read=True)
    assert (client.current_run_id, client.current_run_expires_at) == (None, None)
    assert queued_bodies(aws) == []


@pytest.mark.parametrize("state", [LinkState.UNLINKED, LinkState.NEEDS_RELINK])
def test_sync_now_refuses_a_client_that_is_not_linked(aws, state):
    client = a_client("practice-a", state=state)
    with pytest.raises(ClientNotLinked) as refused:
        request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    assert "relink" in refused.value.message
    assert queued_bodies(aws) == []


def test_sync_now_on_another_practices_client_is_not_found(aws):
    client = a_client("practice-a")
    with pytest.raises(ClientNotFound):
        request_sync("practice-b", client.client_id, RunTrigger.MANUAL)
    assert queued_bodies(aws) == []


def test_a_sync_now_sqs_does_not_take_answers_503_and_leaves_the_client_free(aws, api, sqs_not_taking):
    # Given a linked client, and SQS not taking the message of its Sync Now
    client = a_client("practice-a")
    press = partial(api.call, "POST", f"/clients/{client.client_id}/sync", body='{"mode": "incremental"}')
    with sqs_not_taking():
        refused = press()
    # Then the press is answered that the sync was not queued, and its run shows why
    assert (refused.status, refused.body["error"]["code"]) == (503, "enqueue_failed")
    (failed,) = list_runs("practice-a", client.client_id).items
    assert (failed.status, failed.error_code) == ("failed", "enqueue_failed")
    # And the client is free: the next press queues a new sync
    accepted = press()
    assert (accepted.status, accepted.body["status"]) == (202, "queued")
    assert [m.run_id for m in queued_bodies(aws)] == [accepted.body["runId"]] != [failed.run_id]


def claim_lasts(client: Client) -> timedelta:
    client.refresh(consistent_read=True)
    assert client.current_run_expires_at is not None
    return client.current_run_expires_at - datetime.now(UTC)


def test_a_sync_now_killed_before_its_message_went_out_frees_the_client_within_a_workers_lease(aws):
    # Given a Sync Now whose process is killed as it sends the message (a Lambda timeout, a crash)
    client = a_client("practice-a")
    events = aws_clients.sqs().meta.events

    def kill(**_: object) -> None:
        raise Killed()

    events.register("before-call.sqs.SendMessageBatch", kill)
    try:
        with pytest.raises(Killed):
            request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    finally:
        events.unregister("before-call.sqs.SendMessageBatch", kill)
    # Then the client is held only as long as a worker's lease, not as long as a queued message may wait
    assert claim_lasts(client) <= timedelta(seconds=get_settings().worker_lease_seconds)
    (stuck,) = list_runs("practice-a", client.client_id).items
    # And once that has passed, the next press queues a sync, and the run that never went out ends as lost
    lapse_the_claim(client)
    accepted = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    history = {run.run_id: run for run in list_runs("practice-a", client.client_id).items}
    assert (history[stuck.run_id].status, history[stuck.run_id].error_code) == ("failed", "worker_lost")
    assert history[accepted.run_id].status == "queued"


def test_a_queued_sync_now_run_holds_its_client_as_long_as_its_message_may_wait(aws):
    client = a_client("practice-a")
    request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    assert claim_lasts(client) > timedelta(seconds=get_settings().run_lease_seconds - 60)


def test_a_worker_that_takes_the_run_as_soon_as_it_is_sent_keeps_its_own_lease(aws):
    # Given a worker that takes the Sync Now run the moment its message is on the queue, before the request ends
    client = a_client("practice-a")
    events = aws_clients.sqs().meta.events

    def worker_takes_it(**_: object) -> None:
        (message,) = queued_bodies(aws)
        assert begin_run(message) is not None

    events.register("after-call.sqs.SendMessageBatch", worker_takes_it)
    try:
        request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    finally:
        events.unregister("after-call.sqs.SendMessageBatch", worker_takes_it)
    # Then the client stays running, on the worker's lease (which lapses soon if the worker dies)
    assert claim_lasts(client) <= timedelta(seconds=get_settings().worker_lease_seconds)
    assert client.current_run_status == "running"


def test_a_queued_run_is_taken_by_its_message_and_finished(aws):
    # Given a Sync Now run on the queue
    client = a_client("practice-a")
    accepted = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    (message,) = queued_bodies(aws)
    # When the worker takes it and it succeeds
    begun = begin_run(message)
    assert begun is not None and begun.run.status == "running"
    assert begun.client.current_run_status == "running"
    finish_run(message, RunStatus.SUCCEEDED)
    # Then the run is recorded, the client is free and shows its last successful sync
    run = SyncRun.get(client.client_id, accepted.run_id)
    assert run.status == "succeeded" and run.started_at and run.finished_at
    client.refresh()
    assert client.current_run_id is None and client.last_successful_sync_at == run.finished_at
    # And a duplicate delivery of the same message does nothing
    assert begin_run(message) is None


def test_a_nightly_message_creates_its_run_and_a_duplicate_does_nothing(aws):
    client = a_client("practice-a")
    message = nightly_message(client)
    assert begin_run(message) is not None
    assert begin_run(message) is None  # duplicate while running
    finish_run(message, RunStatus.FAILED, "enqueue_failed")
    assert begin_run(message) is None  # duplicate after it finished
    (run,) = list_runs("practice-a", client.client_id).items
    assert (run.status, run.trigger, run.error_code) == ("failed", "nightly", "enqueue_failed")
    client.refresh()
    assert client.last_error == "The sync could not be queued. Try again." and client.last_successful_sync_at is None


def test_a_nightly_message_during_a_manual_sync_adds_nothing(aws):
    client = a_client("practice-a")
    manual = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    assert begin_run(nightly_message(client)) is None
    client.refresh()
    assert client.current_run_id == manual.run_id
    assert [r.run_id for r in list_runs("practice-a", client.client_id).items] == [manual.run_id]


def test_a_lapsed_claim_is_taken_over_by_the_next_message(aws):
    # Given a run whose worker died: its claim lapsed
    client = a_client("practice-a")
    crashed = nightly_message(client)
    assert begin_run(crashed) is not None
    lapse_the_claim(client)
    # When the next nightly message arrives
    fresh = nightly_message(client)
    # Then it takes the client over, and the old run's late finish does not release the new claim
    assert begin_run(fresh) is not None
    client.refresh()
    assert client.current_run_id == fresh.run_id
    # And history shows the crashed run as lost, not running for ever
    history = {r.run_id: r for r in list_runs("practice-a", client.client_id).items}
    assert (history[crashed.run_id].status, history[crashed.run_id].error_code) == ("failed", "worker_lost")
    assert history[fresh.run_id].status == "running"


def nightly_claim(client: Client) -> object:
    return begin_run(nightly_message(client))


def sync_now_claim(client: Client) -> object:
    return request_sync(client.practice_id, client.client_id, RunTrigger.MANUAL)


def killed_after(calls: int, action: Callable[[], object]) -> bool:
    """Runs `action` in a process killed right after its `calls`-th DynamoDB call; whether it was killed (False: it
    made fewer calls and ended)."""
    made = [0]

    def count(**_: object) -> None:
        made[0] += 1
        if made[0] == calls:
            raise Killed()

    events = shared_connection().client.meta.events
    events.register("after-call.dynamodb", count)
    try:
        action()
    except Killed:
        return True
    finally:
        events.unregister("after-call.dynamodb", count)
    return False


@pytest.mark.parametrize("claim", [nightly_claim, sync_now_claim])
def test_a_claimer_killed_as_it_takes_over_a_lapsed_run_leaves_no_run_running_for_ever(aws, claim):
    for calls in range(1, 10):
        # Given a run whose worker died (its claim lapsed)
        client = a_client("practice-a")
        crashed = nightly_message(client)
        assert begin_run(crashed) is not None
        lapse_the_claim(client)
        # And a claimer (a nightly message's worker, or Sync Now) killed after each of its DynamoDB calls in turn
        killed = killed_after(calls, lambda client=client: claim(client))
        # When its claim lapses too, and the next nightly run takes the client over and ends
        lapse_the_claim(client)
        last = nightly_message(client)
        assert begin_run(last) is not None
        finish_run(last, RunStatus.SUCCEEDED)
        # Then no run is left queued or running in the history: each one taken over ended as lost
        history = {run.run_id: run for run in list_runs("practice-a", client.client_id).items}
        assert {run.status for run in history.values()} <= {"succeeded", "failed"}, (calls, history)
        assert history[crashed.run_id].error_code == "worker_lost"
        if not killed:
            break
    else:
        pytest.fail("the claim was still killed after 9 calls")


def test_a_taken_over_run_that_had_ended_keeps_how_it_ended(aws):
    # Given a client still naming a run, its claim lapsed, whose run item says it ended (no path of ours leaves this;
    # a takeover must not rewrite how a run ended)
    client = a_client("practice-a")
    ended = nightly_message(client)
    assert begin_run(ended) is not None
    SyncRun(client_id=client.client_id, run_id=ended.run_id).update(actions=[SyncRun.status.set("succeeded")])
    lapse_the_claim(client)
    # When the next nightly message arrives
    fresh = nightly_message(client)
    # Then it takes the client over, and the ended run stays as it ended
    assert begin_run(fresh) is not None
    history = {run.run_id: run for run in list_runs("practice-a", client.client_id).items}
    assert (history[ended.run_id].status, history[ended.run_id].error_code) == ("succeeded", None)
    assert history[fresh.run_id].status == "running"


def test_a_duplicate_delivery_of_a_running_sync_now_run_is_dropped_until_its_claim_lapses(aws):
    client = a_client("practice-a")
    request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    (message,) = queued_bodies(aws)
    assert begin_run(message) is not None
    assert begin_run(message) is None  # the first worker is alive
    client.refresh()
    lapse_the_claim(client)
    assert begin_run(message) is not None  # the first worker died: the redelivery resumes the run


def test_an_unlinked_clients_nightly_message_is_dropped(aws):
    client = a_client("practice-a", state=LinkState.UNLINKED)
    assert begin_run(nightly_message(client)) is None
    assert list_runs("practice-a", client.client_id).items == []


@pytest.mark.parametrize("waiting", [RunStatus.QUEUED, RunStatus.DEFERRED])
def test_a_waiting_run_whose_client_was_moved_to_needs_relink_is_ended_by_its_message_and_frees_the_client(
    aws, api, waiting
):
    # Given a client with a Sync Now run queued, or parked on Xero's day limit, moved to needs_relink by a move that
    # could not end the run (its Lambda stopped right after the client's write)
    client = a_client("practice-a")
    accepted = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    (message,) = queued_bodies(aws)
    if waiting is RunStatus.DEFERRED:
        assert begin_run(message) is not None
        assert suspend_run(message, RunStatus.DEFERRED, datetime.now(UTC) + timedelta(hours=20), "daily_limit")
    reason = run_error_message("token_revoked")
    client.update(actions=Client.link_state_actions(LinkState.NEEDS_RELINK, reason))
    aws.events()

    # When the run's message arrives
    assert begin_run(message) is None

    # Then the run has ended, failed as needing a relink, with its one event, and no longer holds the client
    (shown,) = api.call("GET", f"/clients/{client.client_id}/syncs").body["items"]
    assert (shown["runId"], shown["status"], shown["errorCode"]) == (accepted.run_id, "failed", "token_revoked")
    assert [(t, d["runId"]) for t, d in aws.events()] == [("Xero Sync Failed", accepted.run_id)]
    client.refresh()
    assert client.current_run_id is None
    # And a duplicate of the message changes nothing and puts nothing
    assert begin_run(message) is None
    assert aws.events() == []


def test_a_duplicate_message_of_a_running_run_leaves_it_to_its_worker_when_the_client_needs_a_relink(aws):
    # Given a run its worker holds running, its client moved to needs_relink meanwhile
    client = a_client("practice-a")
    request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    (message,) = queued_bodies(aws)
    assert begin_run(message) is not None
    client.update(actions=Client.link_state_actions(LinkState.NEEDS_RELINK, run_error_message("token_revoked")))

    # When a duplicate delivery of its message arrives, it is dropped and the run is left to its worker
    assert begin_run(message) is None
    assert SyncRun.get(client.client_id, message.run_id).status == "running"
    assert finish_run(message, RunStatus.SUCCEEDED) is not None


def test_unlinking_again_closes_a_sync_an_earlier_unlink_could_not_close(aws, api):
    # Given a client unlinked by a request that ended before it could close the client's queued sync (DynamoDB
    # kept cancelling the close: the request answered 500), the sync still holding the client
    client = a_client("practice-a")
    run = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    client.refresh()
    client.update(actions=Client.link_state_actions(LinkState.UNLINKED, "Unlinked by the practice"))

    # When the practice presses Unlink again
    response = api.call("POST", f"/clients/{client.client_id}/unlink")

    # Then the sync is closed as unlinked, and nothing holds the client any more
    assert (response.status, response.body["linkState"]) == (200, "unlinked")
    closed = SyncRun.get(client.client_id, run.run_id)
    assert (closed.status, closed.error_code) == ("failed", "client_unlinked")
    client.refresh()
    assert client.current_run_id is None


def test_history_pages_newest_first(aws):
    client = a_client("practice-a")
    run_ids = []
    for _ in range(5):
        message = nightly_message(client)
        begin_run(message)
        finish_run(message, RunStatus.SUCCEEDED)
        run_ids.append(message.run_id)
    first = list_runs("practice-a", client.client_id, limit=3)
    second = list_runs("practice-a", client.client_id, limit=3, cursor=first.next_cursor)
    assert [r.run_id for r in first.items + second.items] == run_ids[::-1]
    assert second.next_cursor is None


@contextmanager
def transactions_cancelled(times: int, reason: str = "TransactionConflict") -> Iterator[None]:
    """DynamoDB cancels the next `times` TransactWriteItems for a passing reason (another transaction on one of its
    items at that moment, throttling), as it answers them: nothing written, the client item's reason given."""
    left = [times]

    def cancel(**_: object) -> tuple[SimpleNamespace, dict] | None:
        if not left[0]:
            return None
        left[0] -= 1
        error = {"Code": "TransactionCanceledException", "Message": f"Transaction cancelled [{reason}]"}
        return SimpleNamespace(status_code=400, headers={}), {
            "Error": error,
            "CancellationReasons": [{"Code": "None"}, {"Code": reason}],
        }

    events = shared_connection().client.meta.events
    events.register("before-call.dynamodb.TransactWriteItems", cancel)
    try:
        yield
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", cancel)
    assert not left[0], "fewer transactions than expected"


@pytest.mark.parametrize("reason", ["TransactionConflict", "ThrottlingError"])
def test_a_runs_end_dynamodb_cancels_for_a_passing_reason_is_written_again_and_frees_its_client(aws, reason):
    # Given a running sync
    client = a_client("practice-a")
    message = nightly_message(client)
    assert begin_run(message) is not None
    # When its end's transaction is cancelled once for a passing reason
    with transactions_cancelled(1, reason):
        finish_run(message, RunStatus.SUCCEEDED)
    # Then the end is written all the same: the client records the sync and is free, and one event is put
    client.refresh()
    assert (client.current_run_id, client.last_successful_sync_at is not None) == (None, True)
    assert SyncRun.get(client.client_id, message.run_id).status == "succeeded"
    ((kind, detail),) = aws.events()
    assert (kind, detail["lastSuccessfulSyncAt"] is not None) == ("Xero Sync Succeeded", True)


def test_a_continuation_dynamodb_cancels_for_a_passing_reason_is_still_handed_back_to_the_queue(aws):
    client = a_client("practice-a")
    message = nightly_message(client)
    assert begin_run(message) is not None
    with transactions_cancelled(1):
        assert suspend_run(message, RunStatus.QUEUED)
    client.refresh()
    assert (client.current_run_id, client.current_run_status) == (message.run_id, "queued")
    assert begin_run(message) is not None  # the continuation's message takes it


def test_a_runs_end_dynamodb_keeps_cancelling_is_raised_with_nothing_written(aws):
    """The message goes back to the queue (its redelivery takes the run over once the claim lapses); recorded as
    if the client had moved on, the client would keep its claim and the run's worker a success it never recorded."""
    client = a_client("practice-a")
    message = nightly_message(client)
    assert begin_run(message) is not None
    with transactions_cancelled(3), pytest.raises(TransactWriteError):
        finish_run(message, RunStatus.SUCCEEDED)
    assert SyncRun.get(client.client_id, message.run_id).status == "running"
    assert aws.events() == []


def test_sync_now_dynamodb_keeps_cancelling_is_a_503_with_nothing_queued_and_the_next_press_queues(aws, api):
    """It was a 409 `client_not_linked`, of a client linked all along."""
    client = a_client("practice-a")
    with transactions_cancelled(9):  # its three claims, each tried three times
        refused = api.call("POST", f"/clients/{client.client_id}/sync")
    assert (refused.status, refused.body["error"]["code"]) == (503, "sync_contended")
    client.refresh()
    assert (client.current_run_id, queued_bodies(aws)) == (None, [])
    assert api.call("GET", f"/clients/{client.client_id}/syncs").body["items"] == []
    assert api.call("POST", f"/clients/{client.client_id}/sync").status == 202


def test_a_queued_runs_take_dynamodb_cancels_for_a_passing_reason_is_tried_again(aws):
    """Dropped as if another run held the client, the message was gone and the run stayed queued, holding its
    client for the hours a queued claim lasts."""
    client = a_client("practice-a")
    accepted = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    (message,) = queued_bodies(aws)
    with transactions_cancelled(1):
        assert begin_run(message) is not None
    client.refresh()
    assert (client.current_run_id, client.current_run_status) == (accepted.run_id, "running")
