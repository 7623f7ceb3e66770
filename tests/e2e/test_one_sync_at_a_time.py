"""Never two syncs of one client at once, end to end on the local stack with the Xero emulator: Sync Now pressed
during a running sync, the nightly dispatch overlapping it, a duplicate SQS delivery, and a worker process killed
while it holds the client's lease; the overview and the history show each state as it happens."""

import json
import os
import subprocess
from typing import Any

import pytest

from local.stack.offline_stack import OfflineStack
from local.stack.template import REPO_ROOT
from tests.e2e.helpers import Api, eventually, local_command
from tests.e2e.test_linking_e2e import SYNC_TIMEOUT, a_synced_client, finished_runs, overview, runs
from tests.sync_support import Emulated, differences
from tests.xero import Xero
from xero_sync.catalogue import CATALOGUE

pytestmark = pytest.mark.slow

CHILD_LEASE = {"WORKER_LEASE_SECONDS": "6", "RUN_HEARTBEAT_SECONDS": "1"}  # the killed worker's claim lapses fast


@pytest.fixture
def stack(xero_stack: OfflineStack) -> OfflineStack:
    return xero_stack


def truth_of(xero: Xero) -> Emulated:
    return Emulated(xero.base_url, xero.session)


def sync_now(api: Api, practice: str, client_id: str) -> dict[str, Any]:
    response = api.post(f"/clients/{client_id}/sync", practice)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def worker_process(stack: OfflineStack, *options: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A sync worker in a process of its own on this stack (`python -m local worker`)."""
    return subprocess.Popen(  # noqa: S603 - our own command line
        local_command(stack.state_dir, "worker", *options),
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def a_client_with_changes(
    api: Api, stack: OfflineStack, xero: Xero, practice: str, name: str, changes: int, latency_ms: int = 0
) -> tuple[str, str]:
    """A linked client whose first sync ran, with `changes` made in Xero since, and Xero answering that slowly."""
    tenant, client_id, _ = a_synced_client(api, stack, xero, practice, name)
    xero.admin("POST", f"/orgs/{tenant}/changes", json={"count": changes, "seed": name})
    xero.admin("POST", "/config", json={"latencyMs": latency_ms})
    return tenant, client_id


def queued_for(stack: OfflineStack, client_id: str) -> list[dict[str, Any]]:
    """The sync messages waiting for this client (left where they are: visible again at once)."""
    held = []
    while batch := stack.sqs.receive_message(
        QueueUrl=stack.queue_url("SyncQueue"), MaxNumberOfMessages=10, VisibilityTimeout=30
    ).get("Messages", []):
        held.extend(batch)
    for message in held:
        stack.sqs.change_message_visibility(
            QueueUrl=stack.queue_url("SyncQueue"), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return [m for m in held if json.loads(m["Body"])["clientId"] == client_id]


def test_sync_now_and_the_nightly_dispatch_during_a_running_sync_add_nothing(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    # Given a synced client whose next sync runs slowly (Xero answers in 150 ms, many changes to read), taken by a
    # worker process of its own (the stack's poller paused, so what is queued meanwhile stays visible)
    tenant, client_id = a_client_with_changes(api, stack, xero, practice, "Busy Ltd", 60, 150)
    with stack.worker_for("SyncQueue").paused():
        first = sync_now(api, practice, client_id)
        worker = worker_process(stack, "--exit-when-idle", "5")
        running = eventually(
            lambda: (
                (o := overview(api, practice, client_id))["currentRun"] and o["currentRun"]["status"] == "running" and o
            ),
            timeout=30,
        )
        assert running["currentRun"]["runId"] == first["runId"]
        # When the user presses Sync Now twice more, and the nightly dispatch fires, while it runs
        again = [sync_now(api, practice, client_id), sync_now(api, practice, client_id)]
        summary = stack.fire_schedule("nightly")
        overlapping = queued_for(stack, client_id)
        still = overview(api, practice, client_id)["currentRun"]
        # Then the presses named the running run, and the nightly dispatch queued nothing for this client
        assert again == [{"runId": first["runId"], "status": "running"}] * 2
        assert still["status"] == "running", "the sync ended too soon to overlap: slow the emulator down"
        assert overlapping == [] and summary["skipped"]["running"] >= 1
        # And the history shows it running, with its progress on the overview
        assert runs(api, practice, client_id)[0]["status"] == "running"
        assert still["progress"] is None or still["progress"]["resourcesTotal"] == len(CATALOGUE)
        assert worker.wait(timeout=SYNC_TIMEOUT) == 0, worker.stderr.read() if worker.stderr else ""
    # And then succeeded, the only run after the link's
    latest, linked = finished_runs(api, practice, client_id, 2)
    assert (latest["runId"], latest["trigger"], latest["status"]) == (first["runId"], "manual", "succeeded")
    assert linked["trigger"] == "link"
    after = overview(api, practice, client_id)
    assert after["currentRun"] is None and after["lastSuccessfulSyncAt"] >= latest["startedAt"]
    assert differences(truth_of(xero), tenant, client_id) == {}


def test_a_duplicate_delivery_of_one_message_imports_once(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    tenant, client_id = a_client_with_changes(api, stack, xero, practice, "Twice Ltd", 30)
    worker = stack.worker_for("SyncQueue")
    with worker.paused():
        accepted = sync_now(api, practice, client_id)
        (message,) = [
            m
            for m in stack.sqs.receive_message(QueueUrl=stack.queue_url("SyncQueue"), MaxNumberOfMessages=10)[
                "Messages"
            ]
            if json.loads(m["Body"])["runId"] == accepted["runId"]
        ]
        # SQS delivers at least once: the same body arrives a second time
        stack.sqs.send_message(QueueUrl=stack.queue_url("SyncQueue"), MessageBody=message["Body"])
        stack.sqs.change_message_visibility(
            QueueUrl=stack.queue_url("SyncQueue"), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    latest, _linked = finished_runs(api, practice, client_id, 2)
    eventually(
        lambda: (
            stack.sqs.get_queue_attributes(
                QueueUrl=stack.queue_url("SyncQueue"), AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
            == "0"
        ),
        timeout=SYNC_TIMEOUT,
    )
    # One run imported the changes once; the copy found it finished (or running) and did nothing
    assert latest["runId"] == accepted["runId"] and latest["status"] == "succeeded"
    assert len(runs(api, practice, client_id)) == 2
    fetched = sum(c["fetched"] for c in latest["counts"].values())
    changed = sum(c["inserted"] + c["updated"] + c["deleted"] for c in latest["counts"].values())
    assert 0 < changed <= fetched
    assert differences(truth_of(xero), tenant, client_id) == {}


def test_a_worker_killed_holding_the_lease_is_taken_over_once_the_lease_lapses(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    # Given a synced client with changes to import, and its sync taken by a worker in a process of its own
    tenant, client_id = a_client_with_changes(api, stack, xero, practice, "Crash Ltd", 40, 30)
    worker = stack.worker_for("SyncQueue")
    with worker.paused():
        killed = sync_now(api, practice, client_id)
        # When that process is killed (SIGKILL) in the middle of the sync, between two network sends
        child = worker_process(stack, "--kill-at-io", "45", "--exit-when-idle", "30", env=CHILD_LEASE)
        child.wait(timeout=120)
        assert child.returncode == -9, child.stderr.read() if child.stderr else ""
        # Then the run shows as running while the dead worker's lease holds, and Sync Now names it
        held = overview(api, practice, client_id)["currentRun"]
        assert (held["runId"], held["status"]) == (killed["runId"], "running"), held
        assert sync_now(api, practice, client_id)["runId"] == killed["runId"]
        # And once the lease lapses, the overview no longer claims it runs, and Sync Now takes the client over
        eventually(lambda: overview(api, practice, client_id)["currentRun"] is None, timeout=30)
        takeover = sync_now(api, practice, client_id)
        assert takeover["runId"] != killed["runId"]
    latest, lost = finished_runs(api, practice, client_id, 3)[:2]
    assert (lost["runId"], lost["status"], lost["errorCode"]) == (killed["runId"], "failed", "worker_lost")
    assert (latest["runId"], latest["status"]) == (takeover["runId"], "succeeded")
    # Nothing lost, nothing duplicated: the store equals Xero
    assert differences(truth_of(xero), tenant, client_id) == {}
