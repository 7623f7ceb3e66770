"""The events the rest of the product subscribes to (docs/events.md): one per run that ends, one per change of a
client's link, read from a queue a rule on the stack's bus sends every event to
(local.stack.provision.observe_events)."""

import json
from datetime import UTC, datetime, timedelta

from tests.api import Api
from tests.builders import a_client, nightly_message
from tests.sync_support import counts_of, run_to_end
from xero_sync.config import get_settings
from xero_sync.errors import run_error_message
from xero_sync.models import Client, RunStatus, RunTrigger, SyncRun
from xero_sync.runs import begin_run, finish_run
from xero_sync.schemas import SyncMessage
from xero_sync.sync_requests import request_sync
from xero_sync.sync_worker import process_sync_message
from xero_sync.unlinking import mark_needs_relink

SUCCEEDED, FAILED, LINK_CHANGED = "Xero Sync Succeeded", "Xero Sync Failed", "Xero Link Changed"


def link(api: Api, xero, tenant_ids: list[str], client_id: str | None = None) -> list[str]:
    """Links (or relinks client_id) through the API and the emulator's consent; returns the client ids."""
    path = f"/clients/{client_id}/link" if client_id else "/clients/link"
    started = api.call("POST", path)
    assert started.status == 201, started.body
    params = xero.consent(started.body["authorizeUrl"], tenant_ids)
    completed = api.call("POST", "/xero/link-completions", body=json.dumps(params))
    assert completed.status == 200, completed.body
    client_ids: list[str] = completed.body["clientIds"]
    return client_ids


def queued_message(aws) -> SyncMessage:
    (message,) = aws.receive_all("SyncQueue")
    return SyncMessage.model_validate_json(message["Body"])


def link_changes(events) -> list[tuple[str, str]]:
    return [(detail["clientId"], detail["change"]) for kind, detail in events if kind == LINK_CHANGED]


def test_a_run_that_succeeds_puts_one_succeeded_event_with_its_counts(aws, xero, emu, api):
    # Given a linked organisation (its link said so on the bus) and its first sync queued
    tenant = xero.create_org("Events Ltd")
    (client_id,) = link(api, xero, [tenant])
    assert aws.events() == [
        (
            LINK_CHANGED,
            {
                "practiceId": "practice-a",
                "clientId": client_id,
                "tenantId": tenant,
                "change": "linked",
                "linkState": "linked",
                "reasonCode": None,
            },
        )
    ]
    message = queued_message(aws)
    # When the worker runs it to the end
    run = run_to_end(aws.session, aws.queue_url("SyncQueue"), message)
    # Then one Succeeded event says so, with the run's counts and the client's new last successful sync
    assert run.status == "succeeded"
    ((kind, detail),) = aws.events()
    assert kind == SUCCEEDED
    counts = {name: {k: c[k] for k in ("inserted", "updated", "deleted")} for name, c in counts_of(run).items()}
    assert sum(c["inserted"] for c in counts.values()) > 0
    last_success = Client.get("practice-a", client_id).last_successful_sync_at
    assert last_success is not None
    assert detail == {
        "practiceId": "practice-a",
        "clientId": client_id,
        "runId": message.run_id,
        "trigger": "link",
        "mode": "initial",
        "status": "succeeded",
        "counts": counts,
        "lastSuccessfulSyncAt": last_success.isoformat().replace("+00:00", "Z"),
    }


def test_a_failed_run_puts_one_failed_event_with_its_code_and_fixed_message_and_a_duplicate_puts_none(aws):
    # Given a Sync Now of a client that has no Xero token set (its run cannot sync)
    client = a_client("practice-a")
    accepted = request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    message = queued_message(aws)
    # When the worker takes it
    assert process_sync_message(message) is not None
    # Then one Failed event carries the run's code and that code's fixed message
    ((kind, detail),) = aws.events()
    assert kind == FAILED
    assert detail == {
        "practiceId": "practice-a",
        "clientId": client.client_id,
        "runId": accepted.run_id,
        "trigger": "manual",
        "mode": "incremental",
        "status": "failed",
        "counts": {},
        "lastSuccessfulSyncAt": None,
        "failedResources": [],
        "errorCode": "no_token_set",
        "errorMessage": run_error_message("no_token_set"),
    }
    # And a duplicate delivery of its message is dropped and puts nothing
    assert process_sync_message(message) is None
    assert aws.events() == []


def test_a_failure_to_put_an_event_neither_fails_nor_redoes_the_run_and_is_logged(aws, monkeypatch, every_log_line):
    # Given a bus that is gone
    client = a_client("practice-a")
    request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    message = queued_message(aws)
    first_line = len(every_log_line.lines)
    monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")
    get_settings.cache_clear()
    try:
        # When the run ends
        status = process_sync_message(message)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    # Then it ended as it would have, once, and its client is free
    assert status is not None and status.value == "failed"
    run = SyncRun.get(client.client_id, message.run_id)
    assert (run.status, run.error_code) == ("failed", "no_token_set")
    assert Client.get("practice-a", client.client_id).current_run_id is None
    # And the lost event (at most once) is logged, by its kind and EventBridge's error, never put elsewhere
    lost = [json.loads(line) for line in every_log_line.lines[first_line:] if "event not published" in line]
    assert [(entry["detail_type"], entry["error"]) for entry in lost] == [(FAILED, "ResourceNotFoundException")]
    assert aws.events() == []


def test_a_run_whose_worker_was_lost_ends_failed_once_when_the_next_message_takes_over(aws):
    # Given a nightly run whose worker died: its claim lapsed an hour ago
    client = a_client("practice-a")
    crashed = nightly_message(client)
    assert begin_run(crashed) is not None
    client.update(actions=[Client.current_run_expires_at.set(datetime.now(UTC) - timedelta(hours=1))])
    # When the next nightly message takes the client over
    assert begin_run(nightly_message(client)) is not None
    # Then the lost run ends Failed, once, and the late finish of its worker puts nothing more
    ((kind, detail),) = aws.events()
    assert (kind, detail["runId"], detail["errorCode"], detail["trigger"]) == (
        FAILED,
        crashed.run_id,
        "worker_lost",
        "nightly",
    )
    finish_run(crashed, RunStatus.SUCCEEDED)
    assert aws.events() == []


def test_relink_and_unlink_each_put_one_link_changed_with_the_state_after_it_and_unlinking_twice_one(aws, xero, api):
    tenant = xero.create_org("Relink Ltd")
    (client_id,) = link(api, xero, [tenant])
    aws.receive_all("SyncQueue")
    assert link_changes(aws.events()) == [(client_id, "linked")]

    # Relinking puts one `relinked` (its queued sync is kept: no run ends)
    assert link(api, xero, [tenant], client_id=client_id) == [client_id]
    assert aws.events() == [
        (
            LINK_CHANGED,
            {
                "practiceId": "practice-a",
                "clientId": client_id,
                "tenantId": tenant,
                "change": "relinked",
                "linkState": "linked",
                "reasonCode": None,
            },
        )
    ]

    # Unlinking puts one `unlinked`, and the sync it closes ends Failed with its code
    assert api.call("POST", f"/clients/{client_id}/unlink").status == 200
    events = aws.events()
    assert link_changes(events) == [(client_id, "unlinked")]
    assert events[0][1]["linkState"] == "unlinked"
    (failed,) = [detail for kind, detail in events if kind == FAILED]
    assert (failed["errorCode"], failed["trigger"]) == ("client_unlinked", "link")

    # Unlinking again changes nothing and puts nothing
    assert api.call("POST", f"/clients/{client_id}/unlink").status == 200
    assert aws.events() == []

    # Relinking the unlinked client puts one `relinked`, with the state it is in after it
    assert link(api, xero, [tenant], client_id=client_id) == [client_id]
    changes = [(detail["change"], detail["linkState"]) for kind, detail in aws.events() if kind == LINK_CHANGED]
    assert changes == [("relinked", "linked")]


def test_needs_relink_puts_one_link_changed_per_client_moved(aws, xero, api):
    # Given two clients of one consent (one token set)
    client_ids = link(api, xero, [xero.create_org("Alpha Ltd"), xero.create_org("Beta Ltd")])
    aws.events()
    token_set_id = Client.get("practice-a", client_ids[0]).token_set_id
    # When Xero refuses the token set
    mark_needs_relink(token_set_id, "token_revoked")
    # Then each client moved says so once, with the reason's code
    events = aws.events()
    assert sorted(link_changes(events)) == sorted((c, "needs_relink") for c in client_ids)
    assert {(d["linkState"], d["reasonCode"]) for t, d in events if t == "Xero Link Changed"} == {
        ("needs_relink", "token_revoked")
    }
    # And each client's first sync, still queued, ends failed as needing a relink, once
    ended = sorted((d["clientId"], d["errorCode"]) for t, d in events if t == "Xero Sync Failed")
    assert ended == sorted((c, "token_revoked") for c in client_ids)
    # And marking them again moves none and puts nothing
    assert mark_needs_relink(token_set_id, "token_revoked").client_ids == []
    assert aws.events() == []


def test_delete_puts_one_link_changed_and_deleting_again_puts_none(aws, api):
    client = a_client("practice-a")
    assert api.call("DELETE", f"/clients/{client.client_id}").status == 202
    assert aws.events() == [
        (
            LINK_CHANGED,
            {
                "practiceId": "practice-a",
                "clientId": client.client_id,
                "tenantId": client.tenant_id,
                "change": "deleted",
                "linkState": "unlinked",
                "reasonCode": None,
            },
        )
    ]
    assert api.call("DELETE", f"/clients/{client.client_id}").status == 202
    assert aws.events() == []
