"""A running sync as the overview shows it: its worker's heartbeat keeps the claim and publishes progress and what
it waits on; a worker that stops beating loses the client to the next sync; the records each resource holds."""

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.api import Api
from tests.sync_support import (
    Emulated,
    differences,
    drain,
    fast_settings,
    link_client,
    run_to_end,
    sync,
)
from xero_sync.catalogue import CATALOGUE
from xero_sync.models import Client, RunStatus, RunTrigger, SyncRun
from xero_sync.record_store import RecordStore
from xero_sync.run_heartbeat import Heartbeat
from xero_sync.runs import begin_run
from xero_sync.sync_requests import request_sync
from xero_sync.sync_worker import process_sync_message

pytestmark = pytest.mark.slow

# A short lease, renewed often; a beat may take a while on a busy machine (two writes), so the lease holds several.
LEASE_SECONDS = 2.0
FAST_HEARTBEAT = {"WORKER_LEASE_SECONDS": str(LEASE_SECONDS), "RUN_HEARTBEAT_SECONDS": "0.2"}


@pytest.fixture(autouse=True)
def fast_heartbeat(emu: Emulated) -> Iterator[None]:
    """Beats five times a second with a lease of 2 s, so a dead worker's claim lapses within the test."""
    fast_settings(FAST_HEARTBEAT)
    yield
    for name in FAST_HEARTBEAT:
        os.environ.pop(name, None)


def linked(aws, emu: Emulated, api: Api, name: str, size: str = "tiny"):
    tenant = emu.create_org(name, size=size)
    client = link_client(api, emu, tenant, "practice-a")
    return tenant, client


@pytest.fixture
def in_background(aws) -> Iterator[Callable[..., threading.Thread]]:
    """Starts a thread; at teardown waits for every one it started, so a failed test's worker cannot live on into
    the next test (and take its queue's messages)."""
    started: list[threading.Thread] = []

    def start(target: Callable[..., object], *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.join(timeout=120)


def watch_overview(api: Api, client_id: str, until: threading.Thread) -> list[dict]:
    """Every distinct currentRun the overview showed while the thread ran."""
    seen: list[dict] = []
    while until.is_alive():
        current = api.call("GET", f"/clients/{client_id}").body["currentRun"]
        if current and current not in seen:
            seen.append(current)
    return seen


def test_the_overview_shows_a_running_syncs_progress_and_its_wait_on_the_rate_limit(aws, emu, api, in_background):
    # Given a linked small organisation whose first sync is about to run, Xero answering slowly
    tenant, client = linked(aws, emu, api, "Progress Ltd", size="small")
    (message,) = drain(aws.session, aws.queue_url("SyncQueue"))
    emu.admin("POST", "/config", json={"latencyMs": 40})
    emu.fault("429-minute", tenantId=tenant, path="Contacts", retryAfter=2)  # waited out in-line (under 3 s)
    # When the worker runs it while the practice watches the overview
    worker = in_background(run_to_end, aws.session, aws.queue_url("SyncQueue"), message)
    seen = watch_overview(api, client.client_id, worker)
    worker.join()
    # Then the overview showed it running, resources done of all climbing, records so far growing
    progress = [s["progress"] for s in seen if s["status"] == "running" and s["progress"]]
    assert progress, seen
    assert {p["resourcesTotal"] for p in progress} == {len(CATALOGUE)}
    done = [p["resourcesDone"] for p in progress]
    records = [p["recordsSoFar"] for p in progress]
    assert done == sorted(done) and records == sorted(records) and records[-1] > 0
    # And, while the 429 was waited out, what it waited on and until when
    waits = [s["waitingOn"] for s in seen if s.get("waitingOn")]
    assert waits and {w["reason"] for w in waits} == {"rate_limit"}, seen
    # And once finished, no current run, the last successful sync set, and every record counted per resource
    overview = api.call("GET", f"/clients/{client.client_id}").body
    assert overview["currentRun"] is None and overview["lastSuccessfulSyncAt"]
    truth = {spec: len(emu.truth(tenant, spec)) for spec in overview["recordCounts"]}
    assert overview["recordCounts"] == truth and sum(truth.values()) > 500


def test_record_counts_follow_changes_deletes_and_vanished_records(aws, emu, api):
    tenant, client = linked(aws, emu, api, "Counts Ltd")
    run_to_end(aws.session, aws.queue_url("SyncQueue"), drain(aws.session, aws.queue_url("SyncQueue"))[0])
    for round_ in range(2):
        emu.change(tenant, 25, seed=f"counts-{round_}")  # creates, voids, deletes, hard-deleted Items and groups
        assert sync(aws.session, aws.queue_url("SyncQueue"), client).status == "succeeded"
        counts = api.call("GET", f"/clients/{client.client_id}").body["recordCounts"]
        assert counts == {name: len(emu.truth(tenant, name)) for name in counts}, round_
    assert differences(emu, tenant, client.client_id) == {}


@pytest.mark.parametrize("resource", ["Journals", "Invoices"])
def test_record_counts_stay_exact_when_a_worker_dies_between_storing_a_page_and_counting_it(
    aws, emu, api, monkeypatch, resource
):
    # Given a synced client, and new records in Xero
    tenant, client = linked(aws, emu, api, f"Uncounted {resource} Ltd")
    queue_url = aws.queue_url("SyncQueue")
    assert run_to_end(aws.session, queue_url, drain(aws.session, queue_url)[0]).status == "succeeded"
    emu.change(tenant, 30, seed=f"uncounted-{resource}")
    # And a sync that dies just after storing a page of the resource, before counting it (a killed Lambda, or
    # writes that failed half-way), so the next one finds those records already stored
    adjust = RecordStore.adjust_count
    deaths = {"left": 1}

    def dying_adjust(self, name, delta):
        if name == resource and delta > 0 and deaths["left"]:
            deaths["left"] -= 1
            raise RuntimeError("the worker died before counting")
        adjust(self, name, delta)

    monkeypatch.setattr(RecordStore, "adjust_count", dying_adjust)
    assert (sync(aws.session, queue_url, client).status, deaths["left"]) == ("failed", 0)
    # When the next sync runs
    assert sync(aws.session, queue_url, client).status == "succeeded"
    # Then every resource shows the records it holds
    counts = api.call("GET", f"/clients/{client.client_id}").body["recordCounts"]
    truth = {spec.name: len(emu.truth(tenant, spec.name)) for spec in CATALOGUE}
    assert {name: n for name, n in counts.items() if n} == {name: n for name, n in truth.items() if n}
    assert differences(emu, tenant, client.client_id) == {}


def test_a_deferred_run_shows_it_waits_on_the_daily_limit_until_it_resets(aws, emu, api):
    tenant, client = linked(aws, emu, api, "Day Ltd")
    (message,) = drain(aws.session, aws.queue_url("SyncQueue"))
    emu.fault("429-day", tenantId=tenant, retryAfter=7200)
    assert process_sync_message(message) is RunStatus.DEFERRED
    current = api.call("GET", f"/clients/{client.client_id}").body["currentRun"]
    assert (current["status"], current["waitingOn"]["reason"]) == ("deferred", "daily_limit")
    until = datetime.fromisoformat(current["waitingOn"]["until"])
    assert timedelta(hours=1.9) < until - datetime.now(UTC) <= timedelta(hours=2)
    (history,) = api.call("GET", f"/clients/{client.client_id}/syncs").body["items"]
    assert (history["status"], history["waitingReason"]) == ("deferred", "daily_limit")


def test_a_worker_that_stops_renewing_its_claim_loses_the_client_to_the_next_sync(aws, emu, api):
    # Given a sync whose worker took the run and then died (no heartbeat, nothing more written)
    _tenant, client = linked(aws, emu, api, "Crash Ltd")
    (message,) = drain(aws.session, aws.queue_url("SyncQueue"))
    assert begin_run(message) is not None
    claimed = Client.get("practice-a", client.client_id)
    assert claimed.current_run_expires_at <= datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS)  # the worker lease
    # While its claim holds, Sync Now names that run; the overview shows it running
    assert request_sync("practice-a", client.client_id, RunTrigger.MANUAL).run_id == message.run_id
    assert api.call("GET", f"/clients/{client.client_id}").body["currentRun"]["status"] == "running"
    # When the claim lapses, the overview no longer shows it, and Sync Now takes the client over
    threading.Event().wait(LEASE_SECONDS + 0.1)
    assert api.call("GET", f"/clients/{client.client_id}").body["currentRun"] is None
    accepted = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    assert accepted.run_id != message.run_id
    abandoned = SyncRun.get(client.client_id, message.run_id)
    assert (abandoned.status, abandoned.error_code) == ("failed", "worker_lost")
    (takeover,) = drain(aws.session, aws.queue_url("SyncQueue"))
    assert run_to_end(aws.session, aws.queue_url("SyncQueue"), takeover).status == "succeeded"
    # And the dead worker's message, redelivered later, does nothing
    assert process_sync_message(message) is None


def running_slowly(aws, emu: Emulated, api: Api, name: str, in_background: Callable[..., threading.Thread]):
    """A small organisation's first sync under way in the background, Xero slow enough for it to outlast leases."""
    tenant, client = linked(aws, emu, api, name, size="small")
    (message,) = drain(aws.session, aws.queue_url("SyncQueue"))
    emu.admin("POST", "/config", json={"latencyMs": 1000})  # 40-odd calls, 5 at a time: several leases long
    worker = in_background(process_sync_message, message)  # one invocation, as the Lambda would run it
    return tenant, client, message, worker


def test_a_live_worker_keeps_its_claim_past_the_lease_and_stops_when_the_claim_is_lost(aws, emu, api, in_background):
    _tenant, client, message, worker = running_slowly(aws, emu, api, "Long Ltd", in_background)
    threading.Event().wait(LEASE_SECONDS * 2.5)  # more than two leases
    assert worker.is_alive()
    # Its claim was renewed all along: nobody could take the client over
    assert request_sync("practice-a", client.client_id, RunTrigger.MANUAL).run_id == message.run_id
    # When the practice deletes the client mid-run (Xero untouched), the next beat finds the claim gone and the
    # sync stops within a beat or two (and the calls it had in flight)
    assert api.call("DELETE", f"/clients/{client.client_id}").status == 202
    worker.join(timeout=15)
    assert not worker.is_alive()
    run = SyncRun.get(client.client_id, message.run_id)
    assert (run.status, run.error_code) == ("failed", "client_deleted")
    assert drain(aws.session, aws.queue_url("SyncQueue")) == []  # and it did not requeue itself


def test_a_run_closed_by_an_unlink_keeps_that_reason_whatever_its_worker_meets_next(aws, emu, api, in_background):
    _tenant, client, message, worker = running_slowly(aws, emu, api, "Unlinked Ltd", in_background)
    threading.Event().wait(0.5)
    assert api.call("POST", f"/clients/{client.client_id}/unlink").status == 200
    worker.join(timeout=10)
    # The worker then met Xero's 403 (the connection is gone) or its lost claim: the history still says why
    run = SyncRun.get(client.client_id, message.run_id)
    assert (run.status, run.error_code) == ("failed", "client_unlinked")
    assert Client.get("practice-a", client.client_id).link_state == "unlinked"


def test_a_heartbeat_reports_a_lost_claim_once_and_stops():
    # A unit of the heartbeat's contract, against a fake claim that is refused on its third renewal
    beats: list[int] = []
    lost = threading.Event()

    class Refusing(Heartbeat):
        def beat(self) -> bool:
            beats.append(1)
            return len(beats) < 3

    heartbeat = Refusing(
        message=None,  # type: ignore[arg-type]
        progress=lambda: None,  # type: ignore[arg-type,return-value]
        on_lost=lost.set,
        interval=0.01,
    )
    with heartbeat:
        assert lost.wait(2)
        threading.Event().wait(0.1)
    assert heartbeat.lost and len(beats) == 3
