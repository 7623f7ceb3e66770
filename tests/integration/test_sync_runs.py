"""One run per client at a time: Sync Now, nightly messages, duplicates and lapsed claims."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.builders import a_client, nightly_message
from xero_sync.errors import ClientNotFound, ClientNotLinked
from xero_sync.models import Client, LinkState, RunStatus, RunTrigger, SyncRun, shared_connection
from xero_sync.run_history import list_runs
from xero_sync.runs import begin_run, finish_run
from xero_sync.schemas import SyncMessage
from xero_sync.sync_requests import request_sync


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


class Killed(BaseException):
    """The claimer's process ends here (a Lambda timeout, a crash): nothing more of its code runs."""


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
