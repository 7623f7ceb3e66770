"""The accounting client's retry, rate-limit and pacing rules, and the catalogue against the emulator's resources."""

import json
import threading
import time

import pytest
import requests
import responses

from local.xero_emulator.resources import RESOURCES
from xero_sync import xero_pacing
from xero_sync.catalogue import CATALOGUE, Deletes, Paging
from xero_sync.config import Settings, get_settings
from xero_sync.xero_api import (
    Forbidden,
    OrganisationOffline,
    RateLimited,
    TransientFailure,
    Unauthorized,
    XeroApi,
)
from xero_sync.xero_dates import parse_ms_date
from xero_sync.xero_pacing import Pacer, Stopped

BASE = "https://api.example.test"
URL = f"{BASE}/api.xro/2.0/Invoices"


def api(**settings) -> tuple[XeroApi, list[str | None]]:
    """The client on the test's settings, with `settings` (Settings fields, e.g. xero_attempts=2) changed."""
    asked: list[str | None] = []  # the token Xero refused, at each ask (None: any valid one)

    def token(refused: str | None) -> str:
        asked.append(refused)
        return "token"

    assert set(settings) <= set(Settings.model_fields), set(settings) - set(Settings.model_fields)
    # Every wait (the retries' back-off, the pacer's) sleeps through `sleep`: here it returns at once.
    changed = get_settings().model_copy(update=settings)
    return XeroApi(BASE, "tenant", token, changed, session=requests.Session(), sleep=lambda s: None), asked


def test_every_resource_the_emulator_serves_is_in_the_catalogue_once_with_its_id():
    assert [s.name for s in CATALOGUE] == list(RESOURCES)
    for spec in CATALOGUE:
        emulated = RESOURCES[spec.name]
        assert spec.id_field == emulated.id_field and spec.key == emulated.key
        assert (spec.paging is Paging.PAGE_SIZE) == emulated.page_size
        assert (spec.paging in (Paging.PAGE_SIZE, Paging.PAGE)) == emulated.paged
        if spec.ims:
            assert emulated.ims, spec.name  # never an If-Modified-Since Xero ignores
    assert {s.name for s in CATALOGUE if s.deletes is Deletes.VANISH} == {"Items", "ContactGroups"}
    assert {s.name for s in CATALOGUE if not s.incremental} >= {"Items", "ContactGroups", "TaxRates", "Organisation"}


def test_xero_dates_are_read_as_milliseconds():
    assert parse_ms_date("/Date(1439434356790+0000)/") == 1439434356790
    assert parse_ms_date("/Date(1439434356790)/") == 1439434356790
    assert parse_ms_date("2015-08-13") is None and parse_ms_date(None) is None


@responses.activate
def test_transient_failures_are_retried_then_the_answer_is_returned():
    responses.get(URL, status=500, json={})
    responses.get(URL, body="The Xero API is temporarily unavailable", status=503)
    responses.get(URL, body='{"Invoices": [', status=200)  # malformed
    responses.get(URL, body=requests.ConnectionError("reset"))
    responses.get(URL, json={"Invoices": [{"InvoiceID": "a"}], "DateTimeUTC": "/Date(1000)/"})
    client, _ = api()
    page = client.list("Invoices", "Invoices", {"page": "1"}, modified_since="2026-01-01T00:00:00")
    assert page.records == [{"InvoiceID": "a"}] and page.read_after_ms is not None and page.read_after_ms <= 1000
    assert client.stats.calls == 5
    assert responses.calls[0].request.headers["If-Modified-Since"] == "2026-01-01T00:00:00"
    assert responses.calls[0].request.headers["xero-tenant-id"] == "tenant"


@responses.activate
def test_a_page_was_read_no_earlier_than_its_envelope_time_less_the_round_trip():
    # Given Xero stamping its answer 250 ms after the call went out (a page built slowly, a change landing meanwhile)
    def slow_answer(_request):
        time.sleep(0.25)
        return 200, {}, json.dumps({"Invoices": [], "DateTimeUTC": "/Date(100000)/"})

    responses.add_callback(responses.GET, URL, callback=slow_answer)
    client, _ = api()
    # When the page is read
    page = client.list("Invoices", "Invoices", {"page": "1"})
    # Then its read is placed when the call went out, not when Xero stamped the answer
    assert page.read_after_ms is not None and 100000 - 400 < page.read_after_ms <= 100000 - 250


@responses.activate
def test_a_failure_that_persists_is_raised_with_its_reason():
    responses.get(URL, status=500, json={})
    with pytest.raises(TransientFailure, match="500 from Invoices"):
        api(xero_attempts=3)[0].get("Invoices", {})
    responses.replace(responses.GET, URL, status=503, body="offline")
    with pytest.raises(OrganisationOffline):
        api(xero_attempts=2)[0].get("Invoices", {})


@responses.activate
def test_a_short_minute_429_is_waited_out_and_a_long_one_or_a_day_one_goes_back_to_the_engine():
    responses.get(URL, status=429, headers={"X-Rate-Limit-Problem": "minute", "Retry-After": "1"})
    responses.get(URL, json={"Invoices": []})
    client, _ = api()
    assert client.get("Invoices", {}) == {"Invoices": []}
    assert client.stats.rate_limited == 1
    responses.get(URL, status=429, headers={"X-Rate-Limit-Problem": "minute", "Retry-After": "50"})
    with pytest.raises(RateLimited) as minute:
        api(xero_max_inline_wait_seconds=20)[0].get("Invoices", {})
    assert (minute.value.problem, minute.value.retry_after) == ("minute", 50)
    responses.replace(responses.GET, URL, status=429, headers={"X-Rate-Limit-Problem": "day", "Retry-After": "7"})
    with pytest.raises(RateLimited) as day:
        api()[0].get("Invoices", {})
    assert (day.value.problem, day.value.retry_after) == ("day", 7)


@responses.activate
def test_a_401_refreshes_the_token_once_and_a_second_is_raised_and_403_is_raised_at_once():
    responses.get(URL, status=401, json={"Detail": "AuthorizationUnsuccessful"})
    client, asked = api()
    with pytest.raises(Unauthorized, match="AuthorizationUnsuccessful"):
        client.get("Invoices", {})
    assert asked.count("token") == 1  # the refused token was named, once
    responses.replace(responses.GET, URL, status=403, json={"Detail": "AuthenticationUnsuccessful"})
    client, _ = api()
    with pytest.raises(Forbidden):
        client.get("Invoices", {})
    assert client.stats.calls == 1


def test_the_pacer_starts_no_call_once_xero_says_the_minute_is_spent():
    stop = threading.Event()
    pacer = Pacer(5, 60, 60, stop, sleep=lambda s: stop.set())
    _, sent_at = pacer.acquire()
    pacer.release()
    pacer.observe(sent_at, "0")
    with pytest.raises(Stopped):  # it waits for the window to end (stopped here instead of sleeping a minute)
        pacer.acquire()
    stop.clear()
    fresh = Pacer(5, 60, 60, stop, sleep=lambda s: stop.set())
    _, sent_at = fresh.acquire()
    fresh.observe(sent_at, "3")
    fresh.acquire()  # one in flight, three left: goes
    assert fresh.in_flight == 2


@pytest.fixture
def clocked(monkeypatch) -> tuple[Pacer, list[float]]:
    """A pacer of one-minute windows on a clock of the test's own (at 1000 s), which its waits move on."""
    clock = [1000.0]
    monkeypatch.setattr(xero_pacing.time, "monotonic", lambda: clock[0])
    pacer = Pacer(5, 60, 60, threading.Event(), sleep=lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    return pacer, clock


def test_the_pacer_resumes_a_spent_minute_a_minute_after_its_first_answer(clocked):
    pacer, clock = clocked
    # Given a pacer whose first call was answered 0.3 s after it went, and whose minute Xero then says is spent
    # (Xero's window began when that call arrived: after it went, before the answer)
    _, sent_at = pacer.acquire()
    clock[0] += 0.3
    pacer.release()
    pacer.observe(sent_at, "0")
    # When the next call asks to go
    _, resumed_at = pacer.acquire()
    # Then it goes a minute after the answer: not before Xero's window can have ended, and not later
    assert resumed_at - 1000.0 == pytest.approx(60.3)


def test_an_answer_to_a_call_of_the_window_before_does_not_place_the_new_one(clocked):
    pacer, clock = clocked
    # Given a pacer whose window ended while a call of it was still on its way
    _, first = pacer.acquire()
    pacer.observe(first, "59")
    clock[0] = 1059.9
    _, late = pacer.acquire()
    clock[0] = 1060.0
    _, opening = pacer.acquire()  # the new window's first call
    # When the late call's answer comes before the new window's first answer, and that answer says it is spent
    clock[0] = 1060.2
    pacer.observe(late, "58")
    clock[0] = 1060.5
    pacer.observe(opening, "0")
    # Then the new window is placed by its own call's answer, not by the earlier one's
    for _ in range(3):
        pacer.release()
    _, resumed_at = pacer.acquire()
    assert resumed_at == pytest.approx(1120.5)


def test_the_pacer_never_lets_more_than_the_allowed_calls_be_in_flight():
    stop = threading.Event()
    pacer = Pacer(2, 60, 60, stop, sleep=lambda s: None)
    pacer.acquire()
    pacer.acquire()
    assert not pacer.slots.acquire(blocking=False)
    pacer.release()
    assert pacer.slots.acquire(blocking=False)


def test_calls_waiting_side_by_side_count_once_in_what_the_run_waited():
    """A run's "waited" is wall-clock time: five threads each waiting 0.3 s at once waited 0.3 s, not 1.5 s."""
    api = XeroApi("http://127.0.0.1:9", "tenant", lambda _: "token", get_settings())

    def wait() -> None:
        with api.pacer.waits.on("rate_limit", 0.3):
            time.sleep(0.3)

    threads = [threading.Thread(target=wait) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with api.pacer.waits.on("backoff", 0.1):
        time.sleep(0.1)

    assert 0.4 <= api.stats.waited_seconds < 0.8


@responses.activate
def test_a_minute_429_without_a_usable_retry_after_waits_the_minute_out_before_sending_again():
    # Given Xero refusing a call for its minute limit without saying when to come back, then answering
    responses.get(URL, status=429, headers={"X-Rate-Limit-Problem": "minute"})
    responses.get(URL, status=429, headers={"X-Rate-Limit-Problem": "minute", "Retry-After": "soon"})
    responses.get(URL, json={"Invoices": []})
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    changed = get_settings().model_copy(update={"xero_minute_seconds": 0.2, "xero_max_inline_wait_seconds": 5})
    client = XeroApi(BASE, "tenant", lambda _: "token", changed, session=requests.Session(), sleep=sleep)
    # When the call is made
    assert client.get("Invoices", {}) == {"Invoices": []}
    # Then each refusal was waited out for a minute's window (not sent again at once, 429 after 429)
    assert client.stats.rate_limited == 2 and sum(slept) >= 0.35  # two windows, less the time the calls took


@pytest.mark.parametrize("header", ["inf", "nan", "1e12", "-5", "", "tomorrow"])
@pytest.mark.parametrize("problem", ["day", "minute"])
@responses.activate
def test_a_429_whose_retry_after_is_no_usable_wait_defers_the_run_at_most_a_day(problem, header):
    from datetime import UTC, datetime, timedelta

    from xero_sync.engine.outcomes import run_outcome

    responses.get(URL, status=429, headers={"X-Rate-Limit-Problem": problem, "Retry-After": header})
    responses.get(URL, json={"Invoices": []})  # what a call sent again at once would get
    with pytest.raises(RateLimited) as refused:
        api(xero_minute_seconds=60, xero_max_inline_wait_seconds=20)[0].get("Invoices", {})
    # Then the wait is a real one, no longer than Xero's longest window (a day)
    assert 0 < refused.value.retry_after <= 86_400
    now = datetime(2026, 7, 1, tzinfo=UTC)
    outcome = run_outcome([refused.value], now, 300)
    assert outcome is not None and outcome.resumes_at is not None
    assert now < outcome.resumes_at <= now + timedelta(days=1)


@responses.activate
def test_a_304_fails_the_one_call_with_its_status_and_is_never_read_as_an_empty_list():
    from xero_sync.engine.outcomes import OnResource, rule_for
    from xero_sync.xero_api import XeroApiError

    # Given Xero answering 304 Not Modified (an endpoint that does not honour If-Modified-Since: no body to read)
    responses.get(URL, status=304)
    with pytest.raises(XeroApiError) as answered:
        api()[0].list("Invoices", "Invoices", {"page": "1"}, modified_since="2026-01-01T00:00:00")
    # Then the resource fails this run (the run ends partial, its records and checkpoint kept), never "nothing"
    assert answered.value.status == 304 and rule_for(answered.value).on_resource is OnResource.FAILED


@responses.activate
def test_a_cookie_xero_sets_for_one_tenant_is_never_sent_with_another_tenants_call():
    # The client's session is shared by every tenant a warm Lambda syncs
    responses.get(URL, json={"Invoices": []}, headers={"Set-Cookie": "affinity=tenant-a-node; Path=/"})
    settings = get_settings()
    for tenant in ("tenant-a", "tenant-b"):
        XeroApi(BASE, tenant, lambda _: "token", settings, sleep=lambda s: None).list("Invoices", "Invoices", {})
    first, second = (call.request for call in responses.calls)
    assert first.headers["Xero-Tenant-Id"] == "tenant-a" and second.headers["Xero-Tenant-Id"] == "tenant-b"
    assert "Cookie" not in second.headers
