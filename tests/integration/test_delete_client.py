"""Deleting a client: DELETE /clients/{id} marks it deleted (a 404 everywhere at once) and the purge removes every
item it owns, slice by slice through the purge queue, whatever is redelivered or duplicated on the way."""

import json
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from local.stack.handler_loader import load_handler
from local.stack.lambda_context import LocalLambdaContext
from local.stack.sqs_poller import sqs_event
from tests.api import Api
from tests.builders import a_client, a_client_sorting_first
from tests.conftest import TEMPLATE
from tests.faults import Killed, killed
from xero_sync import aws_clients, deletion, purge
from xero_sync.catalogue import CATALOGUE
from xero_sync.deletion import PurgeMessage, PurgeQueue, PurgesRequeued, requeue_stalled_purges
from xero_sync.dispatch import dispatch_nightly
from xero_sync.ids import MAX_PRACTICE_ID_BYTES, new_run_id
from xero_sync.models import (
    PURGE_PARTITION,
    Client,
    LinkState,
    PassCheckpoint,
    RunStatus,
    RunTrigger,
    SyncRun,
    TokenSetRef,
    XeroRecord,
)
from xero_sync.observability import metrics
from xero_sync.purge import PurgeNotReady, process_purge_message
from xero_sync.runs import begin_run
from xero_sync.schemas import SyncMessage
from xero_sync.sync_requests import request_sync
from xero_sync.sync_worker import process_sync_message
from xero_sync.unlinking import unlink_client

RESOURCES = ("Invoices", "Contacts", "Journals")


@pytest.fixture(autouse=True)
def continuations_at_once(monkeypatch):
    """Continuations are queued with a short delay (purge.py); these tests read the queue at once."""
    monkeypatch.setattr(purge, "CONTINUATION_DELAY", 0)


# --- helpers --------------------------------------------------------------------------------------------------------
def with_data(client: Client, records: int = 10, runs: int = 3) -> Client:
    """Records under several resources, sync runs and checkpoints, as syncs leave them."""
    now = datetime.now(UTC)
    with XeroRecord.batch_write() as batch:
        for resource in RESOURCES:
            for number in range(records):
                batch.save(
                    XeroRecord(
                        partition=XeroRecord.partition_key(client.client_id, resource),
                        xero_id=f"{number:08d}-0000-4000-8000-000000000000",
                        body=b"x",
                    )
                )
    for number in range(runs):
        SyncRun(
            client_id=client.client_id,
            run_id=new_run_id(now - timedelta(days=number)),
            practice_id=client.practice_id,
            trigger=RunTrigger.NIGHTLY.value,
            status=RunStatus.SUCCEEDED.value,
            queued_at=now,
        ).save()
    for resource in RESOURCES:
        PassCheckpoint(client_id=client.client_id, resource=resource, updated_at=now).save()
    return client


def items_of(client_id: str) -> dict[str, int]:
    """How many items of each kind the client still owns."""
    counts = {
        "records": sum(
            XeroRecord.count(XeroRecord.partition_key(client_id, spec.name), consistent_read=True) for spec in CATALOGUE
        ),
        "runs": SyncRun.count(client_id, consistent_read=True),
        "checkpoints": PassCheckpoint.count(client_id, consistent_read=True),
        "client": len(list(Client.by_client_id.query(client_id))),
    }
    return {kind: count for kind, count in counts.items() if count}


def purge_messages(aws) -> list[PurgeMessage]:
    return [PurgeMessage.model_validate_json(m["Body"]) for m in aws.receive_all("PurgeQueue")]


def run_purge(aws, remaining: float = 60.0, duplicate: bool = False, limit: int = 500) -> list[str]:
    """Processes the purge queue until it is empty (each message twice when `duplicate`); the outcomes, in order."""
    outcomes: list[str] = []
    for _ in range(limit):
        messages = purge_messages(aws)
        if not messages:
            return outcomes
        for message in messages:
            for _copy in range(2 if duplicate else 1):
                outcomes.append(process_purge_message(message, remaining_seconds=lambda: remaining))
    raise AssertionError(f"the purge did not end in {limit} rounds: {outcomes[-5:]}")


def sync_grace_over(client: Client) -> None:
    """The wait for a sync's worker before the purge (`purge_not_before`) has passed."""
    Client.get(client.practice_id, client.client_id).update(
        actions=[Client.purge_not_before.set(datetime.now(UTC) - timedelta(seconds=1))]
    )


class RecordingQueue(PurgeQueue):
    def __init__(self) -> None:
        self.sent: list[tuple[PurgeMessage, int]] = []

    def send(self, message: PurgeMessage, delay_seconds: int = 0) -> None:
        self.sent.append((message, delay_seconds))


# --- DELETE ---------------------------------------------------------------------------------------------------------
def test_delete_answers_202_and_the_client_is_a_404_everywhere_at_once(aws, api):
    # Given a linked client with data
    client = with_data(a_client("practice-a"))
    client_id = client.client_id
    # When the practice deletes it
    response = api.call("DELETE", f"/clients/{client_id}")
    # Then it is accepted, and from now on every route answers 404 for it (before any purge has run)
    assert (response.status, response.body) == (202, {"clientId": client_id, "status": "deleting"})
    for method, path in [
        ("GET", f"/clients/{client_id}"),
        ("GET", f"/clients/{client_id}/syncs"),
        ("POST", f"/clients/{client_id}/sync"),
        ("POST", f"/clients/{client_id}/unlink"),
        ("POST", f"/clients/{client_id}/link"),
    ]:
        answer = api.call(method, path)
        assert (answer.status, answer.body["error"]["code"]) == (404, "client_not_found"), (method, path)
    assert api.call("GET", "/clients").body["items"] == []
    # And it left the nightly fan-out's index; one purge message is queued
    assert client_id not in {c.client_id for state in LinkState for c in Client.by_link_state.query(state.value)}
    assert [(m.client_id, m.step, m.phase) for m in purge_messages(aws)] == [(client_id, 0, None)]


def test_a_delete_whose_purge_sqs_did_not_take_is_purged_by_the_next_nightly_dispatch(aws, api):
    # Given a client with data, deleted while SQS fails the purge message
    client = with_data(a_client("practice-a"))
    with Stubber(aws_clients.sqs()) as sqs:
        sqs.add_client_error("send_message", "ServiceUnavailable", http_status_code=503)
        response = api.call("DELETE", f"/clients/{client.client_id}")
        sqs.assert_no_pending_responses()
    # Then the deletion stands (the client is gone for the practice), though no purge is queued yet
    assert response.status == 202
    assert api.call("GET", f"/clients/{client.client_id}").status == 404
    assert purge_messages(aws) == []
    # When the nightly dispatch runs, it queues the purge again, and the purge removes everything
    assert dispatch_nightly().purges_requeued == 1
    assert run_purge(aws) == ["done"]
    assert items_of(client.client_id) == {}


def test_the_nightly_dispatch_leaves_a_purge_a_slice_is_working_on(aws, api):
    client = with_data(a_client("practice-a"))
    assert api.call("DELETE", f"/clients/{client.client_id}").status == 202
    purge_messages(aws)  # the DELETE's message, lost
    working = Client(practice_id=client.practice_id, client_id=client.client_id)
    working.update(actions=[Client.purge_lease_expires_at.set(datetime.now(UTC) + timedelta(minutes=1))])
    assert requeue_stalled_purges() == PurgesRequeued(queued=0)
    working.update(actions=[Client.purge_lease_expires_at.set(datetime.now(UTC) - timedelta(seconds=1))])
    assert requeue_stalled_purges() == PurgesRequeued(queued=1)
    assert [(m.client_id, m.step) for m in purge_messages(aws)] == [(client.client_id, 0)]


class FailingFor(PurgeQueue):
    """The purge queue, failing one client's message with an error of ours (not SQS's answer)."""

    def __init__(self, client_id: str) -> None:
        super().__init__()
        self.client_id = client_id

    def send(self, message: PurgeMessage, delay_seconds: int = 0) -> None:
        if message.client_id == self.client_id:
            raise RuntimeError("not sent")
        super().send(message, delay_seconds)


@pytest.mark.parametrize("fault", ["practice_id_over_the_limit", "send_fails"])
def test_a_stalled_purge_that_cannot_be_queued_again_is_logged_and_counted_and_the_others_are(
    aws, every_log_line, monkeypatch, fault
):
    # Given deleted clients of two practices whose purge messages were lost
    others = [a_client("practice-a") for _ in range(4)] + [a_client("practice-b") for _ in range(4)]
    for client in others:
        deletion.delete_client(client.practice_id, client.client_id, queue=RecordingQueue())
    # And one more, first in the pending clean-ups' index, whose purge message cannot be made (a practice id no
    # message can carry, stored by a write that is not the API's) or fails as it is sent
    if fault == "practice_id_over_the_limit":
        broken = a_client_sorting_first("p" * (MAX_PRACTICE_ID_BYTES + 1), others)
        with pytest.raises(ValidationError):  # marked deleted as any DELETE marks it; its message cannot be made
            deletion.delete_client(broken.practice_id, broken.client_id, queue=RecordingQueue())
        error = "ValidationError"
    else:
        broken = a_client_sorting_first("practice-a", others)
        deletion.delete_client("practice-a", broken.client_id, queue=RecordingQueue())
        monkeypatch.setattr(deletion, "PurgeQueue", partial(FailingFor, broken.client_id))
        error = "RuntimeError"
    metrics.clear_metrics()
    first_line = len(every_log_line.lines)

    # When the nightly dispatch queues the stalled purges again
    summary = dispatch_nightly()

    # Then every other purge is queued again, and the one that could not be is counted (the answer, its metric) and
    # logged by its client's id, with the error; it stays pending, for the next night
    assert sorted(m.client_id for m in purge_messages(aws)) == sorted(c.client_id for c in others)
    assert (summary.purges_requeued, summary.purges_not_requeued) == (len(others), 1)
    assert sum(metrics.metric_set["PurgesNotRequeued"]["Value"]) == 1
    lines = [json.loads(line) for line in every_log_line.lines[first_line:] if "purge not queued again" in line]
    assert [(line["client_id"], line["error"]) for line in lines] == [(broken.client_id, error)]
    assert Client.get(broken.practice_id, broken.client_id).cleanup_partition == PURGE_PARTITION


def test_the_purge_removes_every_item_of_the_client_and_nothing_else(aws, api):
    # Given two clients of practice A and one of practice B, all with data
    doomed = with_data(a_client("practice-a"))
    kept = with_data(a_client("practice-a", name="Kept Ltd"))
    other = with_data(a_client("practice-b"))
    # When one is deleted and its purge runs
    assert api.call("DELETE", f"/clients/{doomed.client_id}").status == 202
    outcomes = run_purge(aws)
    # Then nothing of it is left, and the others are untouched
    assert outcomes == ["done"]
    assert items_of(doomed.client_id) == {}
    expected = {"records": 30, "runs": 3, "checkpoints": 3, "client": 1}
    assert items_of(kept.client_id) == items_of(other.client_id) == expected
    assert [c["clientId"] for c in api.call("GET", "/clients").body["items"]] == [kept.client_id]
    # And once purged, the client is simply unknown, DELETE included
    assert api.call("DELETE", f"/clients/{doomed.client_id}").status == 404


def test_another_practices_delete_is_a_404_and_deletes_nothing(aws, api):
    client = with_data(a_client("practice-b"))
    response = api.call("DELETE", f"/clients/{client.client_id}", practice="practice-a")
    assert (response.status, response.body["error"]["code"]) == (404, "client_not_found")
    assert purge_messages(aws) == []
    assert items_of(client.client_id) == {"records": 30, "runs": 3, "checkpoints": 3, "client": 1}
    assert api.call("GET", f"/clients/{client.client_id}", practice="practice-b").status == 200


def test_deleting_twice_is_accepted_again_and_purges_once(aws, api):
    client = with_data(a_client("practice-a"))
    assert api.call("DELETE", f"/clients/{client.client_id}").status == 202
    # When the practice deletes it again while the purge has not run yet
    again = api.call("DELETE", f"/clients/{client.client_id}")
    # Then it is accepted again: the same step is queued twice, and only one of them does the work
    assert (again.status, again.body["status"]) == (202, "deleting")
    outcomes = run_purge(aws)
    assert sorted(outcomes) == ["done", "dropped"]
    assert items_of(client.client_id) == {}


def test_a_large_client_is_purged_in_slices_each_redelivered_twice(aws, monkeypatch):
    # Given a client whose purge cannot finish in one invocation (10 keys a page, no time left after one page)
    client = with_data(a_client("practice-a"), records=35, runs=12)
    monkeypatch.setattr(purge, "PAGE_SIZE", 10)
    deletion.delete_client("practice-a", client.client_id)
    # When every slice runs with no time to spare, and every message is delivered twice
    outcomes = run_purge(aws, remaining=0.0, duplicate=True)
    # Then it went on slice after slice, each duplicate was dropped, and nothing is left
    assert outcomes.count("done") == 1
    assert outcomes.count("continued") > len(purge.phases(client.client_id))
    assert outcomes.count("dropped") == outcomes.count("continued") + 1
    assert items_of(client.client_id) == {}


@pytest.fixture
def purging_30_invoices(aws, monkeypatch) -> tuple[Client, PurgeMessage]:
    """A client with 30 invoices, just deleted, purged 10 keys a page; and its purge's first message."""
    client = with_data(a_client("practice-a"), records=30)
    monkeypatch.setattr(purge, "PAGE_SIZE", 10)
    deletion.delete_client("practice-a", client.client_id)
    (message,) = purge_messages(aws)
    return client, message


def test_a_slice_hands_over_when_its_invocation_runs_out_of_time_midway(purging_30_invoices):
    # Given a client with 30 invoices, purged 10 keys a page
    client, message = purging_30_invoices
    queue = RecordingQueue()
    # When the slice's invocation has a minute when it begins and none a few pages later (its time was cut short)
    left = iter([60.0] * 3)
    outcome = process_purge_message(message, remaining_seconds=lambda: next(left, 0.0), queue=queue)
    # Then the slice hands over: the next step is queued, and the client still owns items for it to delete
    assert outcome == "continued"
    assert [m.step for m, _ in queue.sent] == [message.step + 1]
    assert items_of(client.client_id) != {}


def test_a_slice_resumes_after_the_last_key_its_message_names(purging_30_invoices):
    # Given a client with 30 invoices, purged 10 keys a page with no time to spare (one page a slice)
    client, message = purging_30_invoices
    queue = RecordingQueue()
    invoices = XeroRecord.partition_key(client.client_id, "Invoices")
    # When slices run until one stops inside the invoices
    for _ in range(len(purge.phases(client.client_id))):
        assert process_purge_message(message, remaining_seconds=lambda: 0.0, queue=queue) == "continued"
        first = message
        message, delay = queue.sent[-1]
        assert (message.step, delay) == (first.step + 1, purge.CONTINUATION_DELAY)
        if message.phase == "records:Invoices" and message.after is not None:
            break
    # Then its continuation names the last invoice deleted, and the rest are still there
    assert message.after == f"{9:08d}-0000-4000-8000-000000000000"
    assert XeroRecord.count(invoices, consistent_read=True) == 20
    # And a copy of the message just handled (a redelivery) does nothing
    assert process_purge_message(first, remaining_seconds=lambda: 60.0, queue=queue) == "dropped"
    assert XeroRecord.count(invoices, consistent_read=True) == 20
    # While the continuation goes on from there to the end
    assert process_purge_message(message, remaining_seconds=lambda: 60.0, queue=queue) == "done"
    assert items_of(client.client_id) == {}


def test_a_step_that_arrives_before_its_predecessor_handed_over_goes_back_to_the_queue(aws):
    client = a_client("practice-a")
    deletion.delete_client("practice-a", client.client_id)
    early = PurgeMessage(practice_id="practice-a", client_id=client.client_id, step=1)
    with pytest.raises(PurgeNotReady):
        process_purge_message(early, remaining_seconds=lambda: 60.0)


def test_a_message_for_a_step_another_invocation_holds_is_dropped(aws):
    client = a_client("practice-a")
    deletion.delete_client("practice-a", client.client_id)
    (message,) = purge_messages(aws)
    Client.get("practice-a", client.client_id).update(
        actions=[Client.purge_lease_expires_at.set(datetime.now(UTC) + timedelta(seconds=30))]
    )
    assert process_purge_message(message, remaining_seconds=lambda: 60.0) == "dropped"
    assert items_of(client.client_id) == {"client": 1}
    # Once that lease has lapsed (its invocation died), a redelivery takes the step over
    Client.get("practice-a", client.client_id).update(
        actions=[Client.purge_lease_expires_at.set(datetime.now(UTC) - timedelta(seconds=1))]
    )
    assert process_purge_message(message, remaining_seconds=lambda: 60.0) == "done"
    assert items_of(client.client_id) == {}


# --- syncs ----------------------------------------------------------------------------------------------------------
def test_a_queued_sync_is_closed_and_its_message_does_nothing(aws):
    client = a_client("practice-a")
    accepted = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    (queued,) = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    deletion.delete_client("practice-a", client.client_id)
    run = SyncRun.get(client.client_id, accepted.run_id)
    assert (run.status, run.error_code) == ("failed", "client_deleted")
    # The sync message arriving during the purge, and a nightly one after it, do nothing
    assert process_sync_message(queued) is None
    run_purge(aws)
    nightly = SyncMessage(
        practice_id="practice-a",
        client_id=client.client_id,
        run_id=new_run_id(datetime.now(UTC)),
        trigger=RunTrigger.NIGHTLY,
    )
    assert process_sync_message(nightly) is None
    assert begin_run(nightly) is None
    assert items_of(client.client_id) == {}


def test_a_client_deleted_while_a_sync_runs_is_purged_only_once_that_sync_must_have_ended(aws):
    client = a_client("practice-a")
    accepted = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    (message,) = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert begin_run(message) is not None  # the worker is running it
    queue = RecordingQueue()
    deletion.delete_client("practice-a", client.client_id, queue=queue)
    ((first, delay),) = queue.sent
    assert 890 <= delay <= 900
    # Delivered early anyway (a re-sent DELETE's message), it waits again without touching anything
    assert process_purge_message(first, remaining_seconds=lambda: 60.0, queue=queue) == "waiting"
    assert queue.sent[-1][0] == first and queue.sent[-1][1] > 0
    assert SyncRun.get(client.client_id, accepted.run_id).error_code == "client_deleted"
    # When the grace is over, the purge goes ahead
    sync_grace_over(client)
    assert process_purge_message(first, remaining_seconds=lambda: 60.0, queue=queue) == "done"
    assert items_of(client.client_id) == {}


def test_a_client_deleted_just_after_an_unlink_closed_its_running_sync_is_purged_only_once_that_sync_must_have_ended(
    aws,
):
    # Given a sync running, and the client unlinked: its run is closed, but its worker learns so only at its next
    # heartbeat, and may write a page or two before it stops
    client = a_client("practice-a")
    request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    (message,) = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert begin_run(message) is not None
    unlink_client("practice-a", client.client_id)
    assert SyncRun.get(client.client_id, message.run_id).error_code == "client_unlinked"
    # When the client is deleted at once
    queue = RecordingQueue()
    deletion.delete_client("practice-a", client.client_id, queue=queue)
    # Then its purge waits as long as for a sync still running: what that worker writes is purged too
    ((first, delay),) = queue.sent
    assert 890 <= delay <= 900
    assert process_purge_message(first, remaining_seconds=lambda: 60.0, queue=queue) == "waiting"


def test_a_delete_stopped_before_it_closed_the_running_sync_has_the_purge_close_it_and_put_its_event(aws):
    """The purge must not delete a run still running with the client, its Sync Failed event never put."""
    # Given a sync running, and a DELETE stopped (its Lambda's timeout) just after it marked the client
    client = a_client("practice-a")
    request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    (message,) = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert begin_run(message) is not None
    aws.events()
    queue = RecordingQueue()
    with pytest.MonkeyPatch.context() as patched, pytest.raises(Killed):
        patched.setattr(deletion, "close_current_run", killed)
        deletion.delete_client("practice-a", client.client_id, queue=queue)
    assert SyncRun.get(client.client_id, message.run_id).status == "running"
    assert [kind for kind, _detail in aws.events()] == ["Xero Link Changed"]
    # When the nightly dispatch queues its stalled purge, which runs once the sync's grace is over
    assert requeue_stalled_purges(queue) == PurgesRequeued(queued=1)
    sync_grace_over(client)
    first, _delay = queue.sent[-1]
    # Then the purge closes the run first, its event put, and gives the sync's worker its grace again
    assert process_purge_message(first, remaining_seconds=lambda: 60.0, queue=queue) == "waiting"
    run = SyncRun.get(client.client_id, message.run_id)
    assert (run.status, run.error_code) == ("failed", "client_deleted")
    ((kind, detail),) = aws.events()
    assert (kind, detail["runId"], detail["errorCode"]) == ("Xero Sync Failed", message.run_id, "client_deleted")
    assert 890 <= queue.sent[-1][1] <= 900
    # And once that is over, it purges the client
    sync_grace_over(client)
    assert process_purge_message(first, remaining_seconds=lambda: 60.0, queue=queue) == "done"
    assert items_of(client.client_id) == {}


def test_a_client_whose_last_sync_its_worker_ended_is_purged_at_once(aws):
    client = a_client("practice-a")
    request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    (message,) = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert process_sync_message(message) is not None  # ended by its worker (no token set): its last write
    queue = RecordingQueue()
    deletion.delete_client("practice-a", client.client_id, queue=queue)
    assert [delay for _message, delay in queue.sent] == [0]


def test_deleting_through_the_api_a_client_whose_sync_runs_needs_only_the_read_apis_grants(aws, api):
    """The clients function's narrowed role: the mark, the running sync's close (a transaction on SyncRuns and
    Clients), the purge's delay and its message; every call is checked against its policy (tests/conftest.py)."""
    client = a_client("practice-a")
    accepted = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    (message,) = [SyncMessage.model_validate_json(m["Body"]) for m in aws.receive_all("SyncQueue")]
    assert begin_run(message) is not None  # the worker is running it

    assert api.call("DELETE", f"/clients/{client.client_id}").status == 202

    run = SyncRun.get(client.client_id, accepted.run_id)
    assert (run.status, run.error_code) == ("failed", "client_deleted")
    marked = Client.get("practice-a", client.client_id)
    assert marked.current_run_id is None and marked.purge_not_before is not None
    attributes = aws.session.client("sqs").get_queue_attributes(
        QueueUrl=aws.queue_url("PurgeQueue"), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # the purge, once that sync must have ended


# --- the SQS handler ------------------------------------------------------------------------------------------------
def test_the_purge_function_takes_purge_messages_from_its_queue_and_reports_a_message_that_is_early(aws):
    client = with_data(a_client("practice-a"))
    deletion.delete_client("practice-a", client.client_id)
    (queued,) = aws.receive_all("PurgeQueue")
    early = {**queued, "MessageId": "early", "Body": queued["Body"].replace('"step":0', '"step":7')}
    assert '"step":7' in early["Body"]
    event = sqs_event([early, queued], aws.physical["PurgeQueue"].attributes["Arn"], TEMPLATE.region)
    function = TEMPLATE.functions(aws.physical)["PurgeFunction"]
    response = load_handler(function)(event, LocalLambdaContext(function.logical_id, function.timeout))
    assert response == {"batchItemFailures": [{"itemIdentifier": "early"}]}
    assert items_of(client.client_id) == {}


# --- Xero's side ----------------------------------------------------------------------------------------------------
def linked(api: Api, xero, tenant_ids: list[str]) -> list[str]:
    from tests.integration.test_linking import link

    client_ids: list[str] = link(api, xero, tenant_ids)["clientIds"]
    return client_ids


def token_secrets(aws) -> list[str]:
    secrets = aws.session.client("secretsmanager").list_secrets()["SecretList"]
    return [s["Name"] for s in secrets if "/token-sets/" in s["Name"]]


def connections_at_xero(xero) -> set[str]:
    return {c["tenantId"] for c in xero.admin("GET", "/connections").json()["connections"]}


def test_a_linked_client_is_unlinked_at_xero_and_its_secret_removed(aws, xero, api):
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = linked(api, xero, [tenant])
    assert token_secrets(aws) and tenant in connections_at_xero(xero)
    assert api.call("DELETE", f"/clients/{client_id}").status == 202
    assert run_purge(aws) == ["done"]
    assert tenant not in connections_at_xero(xero)
    assert token_secrets(aws) == []
    assert list(TokenSetRef.scan()) == []
    assert items_of(client_id) == {}


def test_a_token_set_shared_with_another_client_stays_until_that_one_goes_too(aws, xero, api):
    alpha, beta = xero.create_org("Alpha Ltd"), xero.create_org("Beta Ltd")
    client_ids = linked(api, xero, [alpha, beta])
    by_tenant = {Client.get("practice-a", c).tenant_id: c for c in client_ids}
    api.call("DELETE", f"/clients/{by_tenant[alpha]}")
    run_purge(aws)
    assert connections_at_xero(xero) == {beta}
    assert len(token_secrets(aws)) == 1
    assert api.call("POST", f"/clients/{by_tenant[beta]}/sync").status == 202
    api.call("DELETE", f"/clients/{by_tenant[beta]}")
    run_purge(aws)
    assert token_secrets(aws) == [] and connections_at_xero(xero) == set()


def test_when_xero_stays_away_the_purge_still_ends_and_the_secret_goes(aws, xero, api):
    tenant = xero.create_org("Alpha Ltd")
    (client_id,) = linked(api, xero, [tenant])
    xero.admin("POST", "/faults", json={"path": "/connections", "kind": "503", "count": 100})
    api.call("DELETE", f"/clients/{client_id}")
    assert run_purge(aws) == ["done"]
    assert token_secrets(aws) == []
    assert items_of(client_id) == {}
    assert list(TokenSetRef.scan()) == []


# --- races the purge must survive ------------------------------------------------------------------------------------
def test_a_slice_that_outlived_its_lease_hands_over_to_the_one_that_took_its_step(aws, monkeypatch):
    client = with_data(a_client("practice-a"), records=30)
    monkeypatch.setattr(purge, "PAGE_SIZE", 10)
    deletion.delete_client("practice-a", client.client_id)
    (message,) = purge_messages(aws)

    class OvertakenQueue(RecordingQueue):
        def send(self, message: PurgeMessage, delay_seconds: int = 0) -> None:
            # This slice has done its work past its lease; meanwhile another invocation took the step and moved the
            # client on, before this one's own move (which comes right after it queues its continuation)
            super().send(message, delay_seconds)
            Client.get("practice-a", client.client_id).update(actions=[Client.purge_step.set(1)])

    queue = OvertakenQueue()
    # Then this slice does not fail (its work stands): it hands over
    assert process_purge_message(message, remaining_seconds=lambda: 0.0, queue=queue) == "dropped"
    # And once the leases have lapsed, a continuation of step 1 finishes the purge
    Client.get("practice-a", client.client_id).update(
        actions=[Client.purge_lease_expires_at.set(datetime.now(UTC) - timedelta(seconds=1))]
    )
    ((continuation, _delay),) = queue.sent
    assert continuation.step == 1
    assert process_purge_message(continuation, remaining_seconds=lambda: 60.0) == "done"
    assert items_of(client.client_id) == {}


def test_the_xero_clean_up_never_brings_back_a_purged_client(aws, xero, api):
    from xero_sync.unlinking import clean_up_remote

    tenant = xero.create_org("Ghost Ltd")
    (client_id,) = linked(api, xero, [tenant])
    stale = Client.get("practice-a", client_id)  # what a slow invocation still holds
    api.call("DELETE", f"/clients/{client_id}")
    assert run_purge(aws) == ["done"]
    # When that invocation now finishes the Xero clean-up with its stale copy of the client
    clean_up_remote(stale)
    # Then nothing of the client comes back (no item without its name, state or deletion mark)
    assert items_of(client_id) == {}
    assert list(TokenSetRef.scan()) == []
