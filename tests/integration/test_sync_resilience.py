"""The sync engine under Xero's limits and failures, and interrupted runs, on moto with the emulator."""

import itertools
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.sync_support import (
    TIMEOUT_FAULT_HOLD,
    counts_of,
    differences,
    drain,
    fast_settings,
    floor_calls,
    run_to_end,
    sync,
)
from xero_sync.config import get_settings
from xero_sync.engine import EngineHooks
from xero_sync.models import Client, PassCheckpoint, RunStatus, RunTrigger, SyncRun, XeroRecord
from xero_sync.record_store import RecordStore
from xero_sync.sync_requests import request_sync
from xero_sync.sync_worker import process_sync_message

pytestmark = pytest.mark.slow


def test_an_initial_sync_stays_within_5_percent_of_the_call_floor_and_5_in_flight(aws, emu, queue_url, link):
    tenant, _client, message = link("Floor Ltd", size="small")
    emu.admin("POST", "/config", json={"latencyMs": 150})  # calls take long enough to overlap
    fast_settings({"XERO_READ_TIMEOUT_SECONDS": "15"})  # a busy machine's slow answer is not a retry here
    emu.admin("DELETE", "/stats")
    run = run_to_end(aws.session, queue_url, message)
    assert run.status == "succeeded"
    stats = emu.stats(tenant)
    floor = floor_calls(emu, tenant)
    print(f"calls {stats['totalCalls']} floor {floor} max in flight {stats['maxInFlight']}")
    assert floor <= stats["totalCalls"] <= floor * 1.05
    assert 2 <= stats["maxInFlight"] <= 5
    assert run.api_calls == stats["totalCalls"]


def test_faults_of_every_kind_are_ridden_out_and_the_data_stays_exact(aws, emu, queue_url, link):
    tenant, client, message = link("Faulty Ltd", size="tiny")
    for kind, extra in [
        ("500", {"path": "Invoices"}),
        ("503", {"path": "Journals"}),
        ("timeout", {"path": "Contacts", "holdSeconds": TIMEOUT_FAULT_HOLD}),
        ("reset", {"path": "Payments"}),
        ("malformed", {"path": "BankTransactions"}),
        ("429-minute", {"path": "Accounts", "retryAfter": 1}),
        ("429-minute", {"path": "Items", "retryAfter": 4}),  # longer than the engine waits in-line: requeued
    ]:
        emu.fault(kind, tenantId=tenant, **extra)
    run = run_to_end(aws.session, queue_url, message)
    assert (run.status, run.error_message) == ("succeeded", None)
    assert run.rate_limited == 2 and run.waited_seconds > 0
    assert differences(emu, tenant, client.client_id) == {}
    for round_, (kind, extra) in enumerate(
        [("timeout", {"holdSeconds": TIMEOUT_FAULT_HOLD}), ("reset", {}), ("429-minute", {"retryAfter": 1})]
    ):
        emu.change(tenant, 20, seed=f"faults-{round_}")
        emu.fault("500", count=2, tenantId=tenant)
        emu.fault("malformed", tenantId=tenant, path="Journals")
        emu.fault("503", tenantId=tenant, path="Contacts")
        emu.fault(kind, tenantId=tenant, **extra)
        run = sync(aws.session, queue_url, client)
        assert (run.status, run.error_message) == ("succeeded", None)
        assert differences(emu, tenant, client.client_id) == {}


def test_a_day_limit_parks_the_client_until_it_resets_then_the_run_resumes(aws, emu, queue_url, link):
    tenant, client, message = link("Daily Ltd", size="tiny")
    emu.fault("429-day", tenantId=tenant, path="Invoices", retryAfter=2)
    status = process_sync_message(message)
    assert status == "deferred"
    run = SyncRun.get(client.client_id, message.run_id)
    assert run.status == "deferred" and run.resumes_at is not None and run.rate_limited == 1
    assert Client.get("practice-a", client.client_id).current_run_status == "deferred"
    run = run_to_end(aws.session, queue_url, drain_one(aws, queue_url, wait=5))
    assert run.status == "succeeded"
    assert differences(emu, tenant, client.client_id) == {}


def test_short_429s_that_outlast_the_invocations_time_hand_the_run_back_to_wait_for_the_limit(
    aws, emu, queue_url, link
):
    # Given an imported client whose organisation Xero then refuses call after call (minute 429s, Retry-After 1 s)
    tenant, client, message = link("Refusing Ltd", size="tiny")
    assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    emu.change(tenant, 20, seed="refusing")
    emu.fault("429-minute", count=40, tenantId=tenant, retryAfter=1)
    # When its next sync is taken by an invocation with 3 s left before its safety margin
    margin = get_settings().sync_time_margin_seconds
    ends = time.monotonic() + margin + 3
    request_sync(client.practice_id, client.client_id, RunTrigger.MANUAL)
    (next_run,) = drain(aws.session, queue_url)
    status = process_sync_message(next_run, remaining_seconds=lambda: ends - time.monotonic())
    # Then it stops waiting before that time is spent (in Lambda, waiting on would end in its timeout and the run
    # closed as worker_lost): the run is queued again, waiting on the rate limit for about one Retry-After
    overrun = margin - (ends - time.monotonic())
    assert overrun < 1, f"the invocation returned {overrun:.1f} s into its safety margin"
    assert status is RunStatus.QUEUED
    run = SyncRun.get(client.client_id, next_run.run_id, consistent_read=True)
    assert (run.status, run.waiting_reason, run.error_code) == ("queued", "rate_limit", None)
    assert run.resumes_at is not None and run.resumes_at <= datetime.now(UTC) + timedelta(seconds=2)
    assert 0 < run.rate_limited < 40
    # And once Xero answers again, the requeued run resumes from its checkpoints and stores the changes exactly
    emu.admin("DELETE", "/faults")
    run = run_to_end(aws.session, queue_url, drain_one(aws, queue_url, wait=5))
    assert (run.status, run.run_id) == ("succeeded", next_run.run_id)
    assert differences(emu, tenant, client.client_id) == {}


def drain_one(aws, queue_url: str, wait: int):
    sqs = aws.session.client("sqs")
    raw = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=wait)["Messages"][0]
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=raw["ReceiptHandle"])
    from xero_sync.schemas import SyncMessage

    return SyncMessage.model_validate_json(raw["Body"])


def test_a_persistent_failure_of_one_resource_leaves_the_run_partial_and_keeps_the_checkpoints(
    aws, emu, queue_url, link
):
    tenant, client, message = link("Broken Ltd", size="tiny")
    emu.fault("500", count=50, tenantId=tenant, path="Invoices")
    run = run_to_end(aws.session, queue_url, message)
    assert (run.status, run.error_code, run.failed_resources) == ("partial", "xero_transient_failure", {"Invoices"})
    assert run.error_message == "Xero kept failing. The next sync will try again. Not imported this time: Invoices."
    journals = PassCheckpoint.get(client.client_id, "Journals")
    assert journals.journal_offset == len(emu.truth(tenant, "Journals"))
    emu.admin("DELETE", "/faults")
    emu.admin("DELETE", "/stats")
    run = sync(aws.session, queue_url, client)
    assert run.status == "succeeded"
    assert differences(emu, tenant, client.client_id) == {}
    assert emu.stats(tenant)["calls"].get("GET /Journals") == 1  # Journals were not read again


def test_a_run_that_runs_out_of_time_continues_in_the_next_invocation(aws, emu, queue_url, link):
    tenant, client, message = link("Hasty Ltd", size="tiny")
    ticks = itertools.count()

    def remaining() -> float:
        return 0.0 if next(ticks) % 7 == 6 else 800.0  # every seventh look at the clock finds it nearly out

    run = run_to_end(aws.session, queue_url, message, remaining_seconds=remaining)
    assert run.status == "succeeded"
    assert differences(emu, tenant, client.client_id) == {}
    emu.change(tenant, 20, seed="hasty")
    run = sync(aws.session, queue_url, client, remaining_seconds=remaining)
    assert run.status == "succeeded"
    assert differences(emu, tenant, client.client_id) == {}


def dies_at_first_journals_checkpoint(after_saving: bool) -> EngineHooks:
    """The worker dies once, at the first Journals checkpoint between two pages: right after saving it, or before."""
    kills = {"left": 1}

    def die(checkpoint: PassCheckpoint) -> None:
        if checkpoint.resource == "Journals" and checkpoint.next_page and kills["left"]:
            kills["left"] -= 1
            raise RuntimeError("killed after saving the checkpoint" if after_saving else "killed before saving it")

    return EngineHooks(after_save=die) if after_saving else EngineHooks(before_save=die)


def test_a_run_killed_between_two_pages_resumes_without_losing_or_duplicating(aws, emu, queue_url, link):
    tenant, client, message = link("Killed Ltd", size="small")
    run = run_to_end(aws.session, queue_url, message, hooks=dies_at_first_journals_checkpoint(after_saving=True))
    assert (run.status, run.error_code) == ("failed", "sync_error")
    run = sync(aws.session, queue_url, client)
    assert run.status == "succeeded"
    assert differences(emu, tenant, client.client_id) == {}
    journals = counts_of(run)["Journals"]
    assert journals["fetched"] < len(emu.truth(tenant, "Journals"))  # resumed, not started again


def test_a_first_import_reads_no_stored_versions_and_counts_every_record_once(
    aws, emu, queue_url, every_aws_call, link
):
    # Given a client linked to an organisation, nothing of it imported
    tenant, client, message = link("First Import Ltd", size="small")
    first_call = len(every_aws_call.calls)
    # When its first sync imports it
    run = run_to_end(aws.session, queue_url, message)
    # Then no stored version of a record was read: there was none to compare with
    records_reads = [
        call
        for call in every_aws_call.since(first_call)
        if call.operation == "BatchGetItem" and XeroRecord.Meta.table_name in call.params["RequestItems"]
    ]
    assert run.status == "succeeded"
    assert records_reads == []
    # And every record was inserted once, counted once and stored as Xero has it
    assert differences(emu, tenant, client.client_id) == {}
    counts = counts_of(run)
    in_xero = {name: len(emu.truth(tenant, name)) for name in counts}
    assert {name: counts[name]["inserted"] for name in counts} == in_xero
    assert RecordStore(client.client_id).counts() == in_xero


def test_a_first_import_begun_again_after_its_writer_died_finds_the_records_it_had_written(aws, emu, queue_url, link):
    # Given a first import whose worker died after storing the first page of journals, before checkpointing it
    tenant, client, message = link("Begun Again Ltd", size="small")
    hooks = dies_at_first_journals_checkpoint(after_saving=False)
    assert run_to_end(aws.session, queue_url, message, hooks=hooks).status == "failed"
    # When the next sync imports the journals from the start again
    run = sync(aws.session, queue_url, client)
    # Then the journals stored before are found unchanged, not inserted twice
    assert run.status == "succeeded"
    assert differences(emu, tenant, client.client_id) == {}
    journals = counts_of(run)["Journals"]
    truth = len(emu.truth(tenant, "Journals"))
    assert (journals["fetched"], journals["unchanged"], journals["inserted"]) == (truth, 100, truth - 100)
    assert RecordStore(client.client_id).counts()["Journals"] == truth


def test_the_minute_budget_xero_reports_is_respected_before_any_429(aws, emu, queue_url, link):
    tenant, client, message = link("Budget Ltd", size="tiny")
    # Xero allows this app only 12 calls a (scaled) minute here; the engine learns it from X-MinLimit-Remaining.
    # A 3-second minute (not 1): a busy machine's jitter must not blur which window a call falls in.
    emu.admin("POST", "/config", json={"rateLimits": {"tenantPerMinute": 12, "timeScale": 20}, "latencyMs": 30})
    fast_settings({"XERO_MINUTE_SECONDS": "3"})
    emu.admin("DELETE", "/stats")
    run = run_to_end(aws.session, queue_url, message)
    assert run.status == "succeeded"
    stats = emu.stats(tenant)
    assert stats["total429"] == 0 and run.rate_limited == 0
    assert stats["totalCalls"] > 12 and run.waited_seconds > 0
    assert differences(emu, tenant, client.client_id) == {}


def test_a_run_whose_organisation_stays_offline_for_a_day_ends_failed_and_the_next_sync_starts_afresh(
    aws, api, emu, queue_url, link
):
    # Given a synced client whose organisation Xero keeps answering 503 for (offline, under maintenance for days)
    tenant, client, message = link("Offline For Days Ltd", size="tiny")
    assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    emu.fault("503", count=100000, tenantId=tenant)
    fast_settings({"XERO_RETRY_LATER_SECONDS": "1"})
    accepted = request_sync(client.practice_id, client.client_id, RunTrigger.MANUAL)
    (offline,) = drain(aws.session, queue_url)
    # And a run that was first deferred on Xero's day limit for longer than a run may go on (its age restarts then)
    SyncRun(client_id=client.client_id, run_id=accepted.run_id).update(
        actions=[
            SyncRun.queued_at.set(datetime.now(UTC) - timedelta(hours=30)),
            SyncRun.ages_from.set(datetime.now(UTC) - timedelta(minutes=5)),
        ]
    )
    aws.events()

    # When it is delivered: a young run (counting from its deferral's end) is retried later
    assert process_sync_message(offline) == "queued"
    run = SyncRun.get(client.client_id, accepted.run_id)
    assert (run.status, run.waiting_reason, run.error_code) == ("queued", "organisation_offline", None)
    # And when it is delivered again once it has gone on longer than a run may (a day), still offline
    SyncRun(client_id=client.client_id, run_id=accepted.run_id).update(
        actions=[SyncRun.ages_from.set(datetime.now(UTC) - timedelta(hours=25))]
    )
    again = drain_one(aws, queue_url, wait=5)
    assert process_sync_message(again) == "failed"

    # Then the practice sees it failed, with why, one event is put, and nothing is requeued
    (shown, *_) = api.call("GET", f"/clients/{client.client_id}/syncs").body["items"]
    assert (shown["runId"], shown["status"], shown["errorCode"]) == (accepted.run_id, "failed", "xero_unavailable")
    assert [(t, d["errorCode"]) for t, d in aws.events()] == [("Xero Sync Failed", "xero_unavailable")]
    time.sleep(1.5)
    assert drain(aws.session, queue_url) == []
    # And the next Sync Now starts a fresh run
    assert request_sync(client.practice_id, client.client_id, RunTrigger.MANUAL).run_id != accepted.run_id
