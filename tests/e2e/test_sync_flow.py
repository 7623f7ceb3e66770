"""The nightly fan-out, Sync Now and the queue, end to end: sync_dispatch (fired as the schedule, or through the API)
puts sync messages on the SQS queue, the poller hands them to sync_client as Lambda would, and the runs it records
are visible through the API. A message that keeps failing ends in the dead-letter queue."""

import json
import uuid
from typing import Any

from local.stack.offline_stack import OfflineStack
from tests.e2e.conftest import MAX_RECEIVE_COUNT
from tests.e2e.helpers import Api, eventually

# A client seeded straight into the table has no Xero token set, so its run fails, and says why. A client linked
# through the emulator, which syncs for real, belongs to the link and sync e2e tests.
UNSYNCABLE_SEEDED_CLIENT = {"no_token_set"}


def _take_all(stack: OfflineStack, queue: str, hold_seconds: int = 60) -> list[dict[str, Any]]:
    """Every visible message of a queue, kept invisible for `hold_seconds` (release them with _release)."""
    taken: list[dict[str, Any]] = []
    while True:
        received = stack.sqs.receive_message(
            QueueUrl=stack.queue_url(queue),
            MaxNumberOfMessages=10,
            VisibilityTimeout=hold_seconds,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return taken
        taken.extend(received)


def _release(stack: OfflineStack, queue: str, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        stack.sqs.change_message_visibility(
            QueueUrl=stack.queue_url(queue), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )


def _runs(api: Api, practice: str, client_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/clients/{client_id}/syncs", practice)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _finished(runs: list[dict[str, Any]]) -> bool:
    return bool(runs) and all(run["finishedAt"] is not None for run in runs)


def test_the_nightly_schedule_syncs_every_linked_client_once(
    stack: OfflineStack, api: Api, practice: str, seed_client: Any
) -> None:
    # Given two linked clients and an unlinked one
    linked = [seed_client(practice, "Golf Ltd"), seed_client(practice, "Hotel Ltd")]
    unlinked = seed_client(practice, "India Ltd", linked=False)
    worker = stack.worker_for("SyncQueue")

    with worker.paused():
        # When the nightly schedule fires
        summary = stack.fire_schedule("nightly")

        # Then exactly one sync message per linked client is on the queue, and none for the unlinked client
        messages = _take_all(stack, "SyncQueue")
        _release(stack, "SyncQueue", messages)
    ours = [json.loads(m["Body"]) for m in messages if json.loads(m["Body"]).get("practiceId") == practice]
    assert sorted(m["clientId"] for m in ours) == sorted(c.client_id for c in linked)
    assert all(m["trigger"] == "nightly" for m in ours)
    assert summary["queued"] >= len(linked)
    assert summary["not_queued"] == 0

    # When the queue poller hands them to sync_client
    # Then each linked client has one finished nightly run (a seeded client cannot sync: the run says why)
    for client in linked:
        runs = eventually(lambda c=client: (r := _runs(api, practice, c.client_id)) and _finished(r) and r)
        assert len(runs) == 1, runs
        (run,) = runs
        assert run["trigger"] == "nightly"
        assert run["runId"] == next(m["runId"] for m in ours if m["clientId"] == client.client_id)
        assert run["startedAt"] is not None
        assert run["status"] == "failed"
        assert run["errorCode"] in UNSYNCABLE_SEEDED_CLIENT
        overview = api.get(f"/clients/{client.client_id}", practice).json()
        assert overview["currentRun"] is None
        assert overview["lastError"]
    assert _runs(api, practice, unlinked.client_id) == []


def test_sync_now_twice_returns_the_same_queued_run(
    stack: OfflineStack, api: Api, practice: str, seed_client: Any
) -> None:
    # Given a linked client (and the queue poller busy elsewhere, so the run stays queued)
    client = seed_client(practice, "Juliet Ltd")
    worker = stack.worker_for("SyncQueue")

    with worker.paused():
        # When the user clicks Sync Now twice
        first = api.post(f"/clients/{client.client_id}/sync", practice)
        second = api.post(f"/clients/{client.client_id}/sync", practice)

        # Then both are accepted with the same queued run
        assert first.status_code == 202, first.text
        assert second.status_code == 202, second.text
        assert first.json() == second.json()
        assert first.json()["status"] == "queued"
        overview = api.get(f"/clients/{client.client_id}", practice).json()
        expected = {"runId": first.json()["runId"], "status": "queued", "progress": None, "waitingOn": None}
        assert overview["currentRun"] == expected  # queued: no progress yet, waiting on nothing

    # And once the poller takes it, that one run is the client's only (manual) run, finished
    runs = eventually(lambda: (r := _runs(api, practice, client.client_id)) and _finished(r) and r)
    assert [run["runId"] for run in runs] == [first.json()["runId"]]
    assert runs[0]["trigger"] == "manual"
    assert runs[0]["errorCode"] in UNSYNCABLE_SEEDED_CLIENT


def test_sync_now_on_an_unlinked_client_is_a_conflict(api: Api, practice: str, seed_client: Any) -> None:
    client = seed_client(practice, "Kilo Ltd", linked=False)

    response = api.post(f"/clients/{client.client_id}/sync", practice)

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "client_not_linked"


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(stack: OfflineStack) -> None:
    # Given a message sync_client cannot read
    body = json.dumps({"not": "a sync message", "marker": str(uuid.uuid4())})
    invocations_before = stack.worker_for("SyncQueue").invocations
    sent = stack.sqs.send_message(QueueUrl=stack.queue_url("SyncQueue"), MessageBody=body)

    # When it has been delivered maxReceiveCount times (each delivery fails, and returns after the visibility timeout)
    dead = eventually(lambda: _find(stack, "SyncDeadLetterQueue", sent["MessageId"]), timeout=30)

    # Then it sits in the dead-letter queue, unchanged, and nowhere else
    assert dead["Body"] == body
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= MAX_RECEIVE_COUNT
    assert stack.worker_for("SyncQueue").invocations - invocations_before >= MAX_RECEIVE_COUNT
    assert _find(stack, "SyncQueue", sent["MessageId"]) is None
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=stack.queue_url("SyncQueue"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def _find(stack: OfflineStack, queue: str, message_id: str) -> dict[str, Any] | None:
    """Looks for one message (receiving releases every message at once, so the queue is left as it was)."""
    messages = _take_all(stack, queue, hold_seconds=30)
    _release(stack, queue, messages)
    return next((m for m in messages if m["MessageId"] == message_id), None)


def test_a_nightly_run_over_a_thousand_linked_clients_queues_one_message_each_and_counts_the_others(
    stack: OfflineStack, practice: str
) -> None:
    from datetime import UTC, datetime

    from xero_sync.ids import client_id_for
    from xero_sync.models import Client, LinkState

    # Given a practice with 1,000 linked clients, 40 unlinked and 20 whose Xero authorisation was refused
    states = [LinkState.LINKED] * 1000 + [LinkState.UNLINKED] * 40 + [LinkState.NEEDS_RELINK] * 20
    now = datetime.now(UTC)
    linked: set[str] = set()
    with Client.batch_write() as batch:
        for number, state in enumerate(states):
            tenant = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{practice}/{number}"))
            client = Client(
                practice_id=practice,
                client_id=client_id_for(practice, tenant),
                name=f"Client {number}",
                tenant_id=tenant,
                link_state=state.value,
                link_state_key=state.value,
                created_at=now,
                updated_at=now,
            )
            batch.save(client)
            if state is LinkState.LINKED:
                linked.add(client.client_id)
    worker = stack.worker_for("SyncQueue")
    with worker.paused():
        # When the nightly schedule fires
        summary = stack.fire_schedule("nightly")
        messages = _take_all(stack, "SyncQueue", hold_seconds=120)
        ours = [m for m in messages if json.loads(m["Body"])["practiceId"] == practice]
        # (they are removed: 1,000 seeded clients without token sets would only fail for the same reason)
        for start in range(0, len(ours), 10):
            stack.sqs.delete_message_batch(
                QueueUrl=stack.queue_url("SyncQueue"),
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(ours[start:][:10])],
            )
        _release(stack, "SyncQueue", [m for m in messages if m not in ours])
    # Then exactly one nightly message per linked client, none for the others, all of them counted
    bodies = [json.loads(m["Body"]) for m in ours]
    assert sorted(b["clientId"] for b in bodies) == sorted(linked)
    assert {b["trigger"] for b in bodies} == {"nightly"} and len({b["runId"] for b in bodies}) == 1000
    assert summary["queued"] >= 1000 and summary["not_queued"] == 0
    assert summary["skipped"]["unlinked"] >= 40 and summary["skipped"]["needs_relink"] >= 20
