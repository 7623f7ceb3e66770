"""Limits per practice (xero_sync/limits.py) on the mutating routes, and a full Sync Now once per client per period
(sync_requests.request_sync): in-process handlers against moto, small limits set through the settings' environment
and the window's clock moved by the limits module's seam (no sleeping)."""

import json
import os
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from tests.api import Api
from tests.builders import a_client
from tests.conftest import AWS_CALLS, TEMPLATE
from xero_sync import limits, sync_requests
from xero_sync.config import get_settings
from xero_sync.errors import FullSyncLimited, RateLimited, SyncNotQueued
from xero_sync.models import Client, RequestWindow, RunStatus, RunTrigger
from xero_sync.runs import RunKey, finish_run
from xero_sync.sync_requests import request_sync

MUTATING_ROUTES = [r for r in TEMPLATE.routes() if r.authorized and r.method in {"POST", "DELETE"}]
LIMIT_SETTINGS = ("PRACTICE_REQUEST_LIMIT", "PRACTICE_REQUEST_WINDOW_SECONDS", "FULL_SYNC_PERIOD_SECONDS")


@pytest.fixture
def limited() -> Iterator[Callable[..., None]]:
    """Sets the limits as the template's parameters would (the functions' environment); restored afterwards."""
    saved = {name: os.environ.get(name) for name in LIMIT_SETTINGS}

    def apply(**values: int) -> None:
        os.environ.update({name.upper(): str(value) for name, value in values.items()})
        get_settings.cache_clear()

    yield apply
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """The limit's clock, set by the test: [epoch seconds]."""
    now = [1_800_000_010.5]  # 10.5 s into a 60 s window (1_800_000_000 is a multiple of 60)
    monkeypatch.setattr(limits, "clock", lambda: now[0])
    return now


def sync_now(api: Api, client: Client, mode: str = "incremental", practice: str | None = None):
    body = f'{{"mode": "{mode}"}}'
    return api.call("POST", f"/clients/{client.client_id}/sync", practice=practice or client.practice_id, body=body)


def end_run(client: Client, run_id: str) -> None:
    finish_run(RunKey(client.practice_id, client.client_id, run_id), RunStatus.SUCCEEDED)


# --- the window per practice ----------------------------------------------------------------------------------------
def test_a_practice_over_its_limit_gets_429_with_retry_after_and_another_practice_does_not(api, limited, clock):
    limited(practice_request_limit=3, practice_request_window_seconds=60)
    mine, theirs = a_client("practice-a"), a_client("practice-b")

    # Three presses fit the window (the first queues, the others find it queued); the fourth is refused
    answers = [sync_now(api, mine) for _ in range(4)]

    assert [a.status for a in answers] == [202, 202, 202, 429]
    refused = answers[-1]
    assert refused.headers["Retry-After"] == "50"  # 10.5 s into the window: 49.5 s left, rounded up
    assert refused.body == {
        "error": {"code": "rate_limited", "message": "this practice made 3 such requests in 60 s; try again in 50 s"}
    }
    # And another practice, in the same window, is served
    assert sync_now(api, theirs).status == 202
    # And reads are not limited
    assert api.call("GET", f"/clients/{mine.client_id}").status == 200


@pytest.mark.parametrize("route", MUTATING_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_mutating_route_refuses_a_practice_over_its_limit_before_any_other_work(api, limited, clock, route):
    limited(practice_request_limit=2)
    client = a_client("practice-a")
    for _ in range(2):
        limits.take_request("practice-a")

    first = len(AWS_CALLS.calls)
    # A body the route's validation accepts (validation comes first: an invalid request is never counted)
    body = json.dumps({"state": "s" * 43, "code": "c"}) if route.path == "/xero/link-completions" else None
    response = api.call(
        route.method,
        route.path.replace("{clientId}", client.client_id),
        practice="practice-a",
        route_path=route.path,
        body=body,
    )

    assert response.status == 429, response.body
    assert response.body["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    # The count of the practice's window is the only AWS call: the client was not even read
    assert [c.signature for c in AWS_CALLS.since(first)] == [
        ("dynamodb", "UpdateItem", '["xero-sync-local-RateLimitsTable"]')
    ]
    assert Client.get("practice-a", client.client_id).current_run_id is None
    # And a token naming no practice is a 401 before anything is counted
    first = len(AWS_CALLS.calls)
    path = route.path.replace("{clientId}", client.client_id)
    assert api.call(route.method, path, practice=None, route_path=route.path, body=body).status == 401
    assert AWS_CALLS.since(first) == []


def test_the_window_resets_when_it_ends(api, limited, clock):
    limited(practice_request_limit=2, practice_request_window_seconds=60)
    client = a_client("practice-a")
    assert [sync_now(api, client).status for _ in range(3)] == [202, 202, 429]

    clock[0] += 49.4  # 0.1 s before the window ends: still refused, and told to wait 1 s, never 0
    late = sync_now(api, client)
    assert (late.status, late.headers["Retry-After"]) == (429, "1")

    clock[0] += 0.1  # the next window
    assert [sync_now(api, client).status for _ in range(3)] == [202, 202, 429]


def test_concurrent_requests_never_exceed_the_limit(aws, limited, clock):
    limited(practice_request_limit=5)
    taken, refused = [], []
    start = threading.Barrier(20)

    def request() -> None:
        start.wait()
        try:
            limits.take_request("practice-a")
            taken.append(1)
        except RateLimited:
            refused.append(1)

    threads = [threading.Thread(target=request) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert (len(taken), len(refused)) == (5, 15)
    (window,) = list(RequestWindow.scan())
    assert (window.window_key, window.requests) == ("practice-a#1800000000", 5)
    # It expires by TTL a window after it ends
    assert window.expires_at.timestamp() == 1_800_000_000 + 2 * 60


# --- a full Sync Now once per client per period ---------------------------------------------------------------------
def test_a_second_full_sync_within_the_period_is_refused_and_after_it_accepted(api, limited, monkeypatch):
    limited(full_sync_period_seconds=3600)
    client = a_client("practice-a")
    first = sync_now(api, client, "full")
    assert first.status == 202
    end_run(client, first.body["runId"])

    # Within the period: refused, with the seconds until the next is allowed
    second = sync_now(api, client, "full")
    assert second.status == 429
    assert second.body["error"]["code"] == "full_sync_limited"
    assert 3590 <= int(second.headers["Retry-After"]) <= 3600
    assert Client.get("practice-a", client.client_id).current_run_id is None  # nothing was queued

    # After it: accepted, a full run
    later = sync_requests.now_utc() + timedelta(seconds=3601)
    monkeypatch.setattr(sync_requests, "now_utc", lambda: later)
    third = sync_now(api, client, "full")
    assert (third.status, third.body["status"]) == (202, "queued")
    (newest, *_) = api.call("GET", f"/clients/{client.client_id}/syncs").body["items"]
    assert (newest["runId"], newest["mode"], newest["trigger"]) == (third.body["runId"], "full", "manual")


def test_an_incremental_sync_is_not_limited_by_the_full_sync_period(api, limited):
    limited(full_sync_period_seconds=3600)
    client = a_client("practice-a")
    full = sync_now(api, client, "full")
    end_run(client, full.body["runId"])
    assert sync_now(api, client, "full").status == 429

    incremental = sync_now(api, client)

    assert (incremental.status, incremental.body["status"]) == (202, "queued")


def test_a_full_press_answered_with_the_run_already_queued_does_not_use_the_period(api, limited):
    limited(full_sync_period_seconds=3600)
    client = a_client("practice-a")
    queued = sync_now(api, client)

    # A full press while a sync is queued gets that run, and the period is not used up
    pressed = sync_now(api, client, "full")
    assert (pressed.status, pressed.body["runId"]) == (202, queued.body["runId"])
    assert Client.get("practice-a", client.client_id).last_full_sync_requested_at is None

    end_run(client, queued.body["runId"])
    taken = sync_now(api, client, "full")
    assert (taken.status, taken.body["status"]) == (202, "queued")
    end_run(client, taken.body["runId"])
    assert sync_now(api, client, "full").status == 429  # that one used it


def test_a_full_sync_the_queue_did_not_take_gives_the_period_back(aws, limited, sqs_not_taking):
    limited(full_sync_period_seconds=3600)
    client = a_client("practice-a")

    with sqs_not_taking(), pytest.raises(SyncNotQueued):
        request_sync("practice-a", client.client_id, RunTrigger.MANUAL, "full")

    after = Client.get("practice-a", client.client_id)
    assert (after.current_run_id, after.last_full_sync_requested_at) == (None, None)
    taken = request_sync("practice-a", client.client_id, RunTrigger.MANUAL, "full")  # not refused
    end_run(client, taken.run_id)
    with pytest.raises(FullSyncLimited):  # that one used it
        request_sync("practice-a", client.client_id, RunTrigger.MANUAL, "full")


def test_console_reruns_and_the_nightly_run_are_exempt(aws, api, limited):
    from tests.integration.test_dispatch import invoke_dispatch

    limited(full_sync_period_seconds=3600)
    client = a_client("practice-a")
    full = sync_now(api, client, "full")
    end_run(client, full.body["runId"])
    assert sync_now(api, client, "full").status == 429

    # A console rerun of the sync function (full, as an operator asks for it) is taken, and does not move the period
    before = Client.get("practice-a", client.client_id).last_full_sync_requested_at
    rerun = request_sync("practice-a", client.client_id, RunTrigger.CONSOLE, "full")
    assert rerun.status is RunStatus.QUEUED
    end_run(client, rerun.run_id)
    assert Client.get("practice-a", client.client_id).last_full_sync_requested_at == before
    # And so are the dispatch function's console invoke naming the client, and the nightly run
    assert invoke_dispatch(aws, {"clientIds": [client.client_id]})["queued"] == 1
    end_run(client, Client.get("practice-a", client.client_id).current_run_id)
    assert invoke_dispatch(aws, {"trigger": "nightly"})["queued"] == 1
