"""The practice console (web/) in a real browser, in the states of the API the story on the real stack
(test_browser_console.py) cannot reach in a test's time or reaches only by chance: a run deferred by Xero's daily
limit (hours on the real stack), a sync whose progress changes under a keyboard user on every poll, a request slow
enough for a second press to land, an empty later page, a pager's failed call, a config.json that cannot be read.
The API is the double (api_double.py), its answers shaped by the API's own schemas (xero_sync.schemas). What is
asserted is what a user checks: where focus is, what is open, what is said, how many requests one gesture sent."""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.api_double import TIMED_OUT, Answer, ApiDouble, Page
from tests.e2e.browser import TOKEN_KEY, needs_chromium
from xero_sync import schemas

pytestmark = needs_chromium

CLIENT = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
THIRD = "33333333-3333-4333-8333-333333333333"


# --- answers shaped by the API's schemas ----------------------------------------------------------------------------
def shaped(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    return model.model_validate(data).model_dump(mode="json")


def summary(client_id: str = CLIENT, name: str = "Acme Ltd", link_state: str = "linked", run: Any = None) -> dict:
    return shaped(
        schemas.ClientSummary,
        {
            "clientId": client_id,
            "name": name,
            "tenantId": "t-" + client_id,
            "linkState": link_state,
            "lastSuccessfulSyncAt": "2026-12-01T10:00:00Z",
            "currentRun": run,
        },
    )


def overview(
    client_id: str = CLIENT, name: str = "Acme Ltd", link_state: str = "linked", run: Any = None, **more: Any
) -> dict:
    return shaped(
        schemas.ClientOverview,
        {
            **summary(client_id, name, link_state),
            "currentRun": run,
            "linkStateReason": None,
            "lastError": None,
            "recordCounts": {"Invoices": 120, "Contacts": 40},
            "lastImportedAt": {},
            "unavailableResources": {},
            **more,
        },
    )


def running(records: int = 100) -> dict:
    progress = {"resourcesDone": 3, "resourcesTotal": 24, "recordsSoFar": records, "waitingOn": None,
                "publishedAt": datetime.now(UTC).isoformat()}  # fmt: skip
    return {"runId": "r1", "status": "running", "progress": progress, "waitingOn": None}


def deferred(until: datetime) -> dict:
    return {
        "runId": "r2",
        "status": "deferred",
        "progress": None,
        "waitingOn": {"reason": "daily_limit", "until": until.isoformat()},
    }


def run_page(count: int, next_cursor: str | None) -> dict:
    items = [
        {"runId": f"run-{i}", "trigger": "manual", "mode": "incremental", "status": "succeeded",
         "queuedAt": "2026-12-01T10:00:00Z", "startedAt": None, "finishedAt": None, "resumesAt": None, "counts": {},
         "apiCalls": 3, "rateLimited": 0, "waitedSeconds": 0, "errorCode": None, "errorMessage": None}
        for i in range(count)
    ]  # fmt: skip
    return shaped(schemas.SyncRunPage, {"items": items, "nextCursor": next_cursor})


def error(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, {"error": {"code": code, "message": message}}


def client_page(*items: dict) -> tuple[int, dict]:
    return 200, shaped(schemas.ClientPage, {"items": list(items), "nextCursor": None})


# Sync Now as a user can press it (never `disabled`, which would drop a keyboard user's focus: aria-disabled says when)
SYNC_NOW_READY = "return document.getElementById('sync-now')?.getAttribute('aria-disabled') === 'false'"


def focused(page: Page) -> str:
    return str(page.js("const e = document.activeElement; return e.id || e.textContent.trim();"))


def press(page: Page, css: str) -> None:
    """A keyboard user's Enter on the element (focus on it first, as Tab would have put it)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    element = page.browser.find_element(By.CSS_SELECTOR, css)
    page.js("arguments[0].focus()", element)
    element.send_keys(Keys.ENTER)


def by_text(page: Page, text: str) -> Any:
    from selenium.webdriver.common.by import By

    return page.browser.find_element(By.XPATH, f"//button[normalize-space()='{text}']")


def overview_of(api: ApiDouble, client: Callable[[], dict] | dict, history: Answer | None = None) -> None:
    api.answer("GET", f"/clients/{CLIENT}", lambda q, b: (200, client() if callable(client) else client))
    api.answer("GET", f"/clients/{CLIENT}/syncs", history or (200, run_page(1, None)))


def overview_whose_sync_queues(api: ApiDouble) -> Callable[[dict, Any], tuple[int, Any]]:
    """The client's overview, with no run until a Sync Now queues run r1: returns that Sync Now's answer."""
    state: dict[str, Any] = {"run": None}
    overview_of(api, lambda: overview(run=state["run"]))

    def sync(query: dict, body: Any) -> tuple[int, Any]:
        state["run"] = {"runId": "r1", "status": "queued"}
        return 202, shaped(schemas.SyncAccepted, {"runId": "r1", "status": "queued"})

    return sync


def list_whose_card_syncs(api: ApiDouble, link_state: str = "linked") -> None:
    """The Client List of one card whose sync runs, its records counted up on each read (the card is rebuilt on each
    reload of the list)."""
    api.answer("GET", "/clients", client_page(summary(link_state=link_state, run={"runId": "r1", "status": "running"})))
    records = iter(range(100, 10**6, 7))
    api.answer(
        "GET", f"/clients/{CLIENT}", lambda q, b: (200, overview(link_state=link_state, run=running(next(records))))
    )


def choose(page: Page, action: str, again: bool = False) -> None:
    """The card's options menu opened and its `action` pressed, in one script (the card may be rebuilt between two
    clicks), then the confirmation confirmed: pressed `again`, only if one opens."""
    page.js(
        "const card = document.querySelector('li.card'); card.querySelector('button.options').click();"
        " card.querySelector(`.menu [data-action=${arguments[0]}]`).click();",
        action,
    )
    if action in ("unlink", "delete"):
        if not again:
            page.until("return document.querySelector('dialog[open]')", "the confirmation")
        page.js("document.querySelector('dialog[open] button[value=confirm]')?.click()")


# --- the Client Overview --------------------------------------------------------------------------------------------
def test_overview_polled_during_a_sync_keeps_focus_the_open_counts_and_a_quiet_live_region(page: Page) -> None:
    records = {"n": 100}

    def client() -> dict:
        records["n"] += 5  # the run and the counts move on each poll
        return overview(run=running(records["n"]), recordCounts={"Invoices": records["n"], "Contacts": 40})

    overview_of(page.api, client)
    page.open(f"/#/clients/{CLIENT}")
    page.until("return document.querySelector('details.counts')", "the record counts")
    page.js("document.querySelector('details.counts').open = true; document.getElementById('unlink').focus();")
    seen = page.api.count("GET", f"/clients/{CLIENT}")
    counted = page.js("return document.querySelector('details.counts summary').textContent")
    time.sleep(2.5)
    assert page.api.count("GET", f"/clients/{CLIENT}") >= seen + 2, "the overview is polled while the sync runs"
    assert focused(page) == "unlink", "focus stays on Unlink from Xero"
    assert page.js("return document.querySelector('details.counts').open"), "the counts stay open"
    assert page.js("return document.querySelector('details.counts summary').textContent") != counted, "counts updated"


def test_focus_moved_into_the_overview_while_its_history_loads_stays_there(page: Page) -> None:
    overview_of(page.api, overview())
    page.api.answer("GET", f"/clients/{CLIENT}/syncs", (200, run_page(1, None)), delay=1.5)  # a slow network
    page.open(f"/#/clients/{CLIENT}")
    page.until("return document.getElementById('unlink')", "Unlink from Xero")
    page.js("document.getElementById('unlink').focus();")  # a keyboard user's Tab, before the history came
    page.until("return document.querySelectorAll('#sync-history tbody tr').length === 1", "the history")
    assert focused(page) == "unlink", "the heading does not take the focus back once the screen has loaded"


def test_a_first_imports_record_counts_appear_while_it_runs(page: Page) -> None:
    # A client never synced: no counts at first, then the import stores records (its last sync stays none)
    polls = {"n": 0}

    def client() -> dict:
        polls["n"] += 1
        counts = {} if polls["n"] < 3 else {"Invoices": 10 * polls["n"], "Contacts": 4}
        return overview(run=running(polls["n"]), recordCounts=counts, lastSuccessfulSyncAt=None)

    overview_of(page.api, client)
    page.open(f"/#/clients/{CLIENT}")
    page.until("return document.body.innerText.includes('No Xero records imported yet.')", "no counts yet")
    page.until("return document.querySelector('details.counts summary')", "the counts, during the import")
    assert "No Xero records imported yet." not in page.js("return document.body.innerText")


def test_a_deferred_run_is_said_with_its_date_polled_slowly_and_announced_once(page: Page) -> None:
    until_at = datetime.now(UTC) + timedelta(hours=30)  # Xero's daily limit: tomorrow
    overview_of(page.api, overview(run=deferred(until_at)))
    page.api.answer("GET", "/clients", client_page(summary(run={"runId": "r2", "status": "deferred"})))
    page.open(f"/#/clients/{CLIENT}")
    page.until("return document.querySelector('.live .progress')", "the progress")
    page.js("window.shown = document.querySelector('.live').firstChild; document.getElementById('delete').focus();")
    seen = page.api.count("GET", f"/clients/{CLIENT}")
    time.sleep(3)
    assert page.api.count("GET", f"/clients/{CLIENT}") == seen, "a run deferred for hours is not read every second"
    assert page.js("return document.querySelector('.live').firstChild === window.shown"), "nothing re-announced"
    assert focused(page) == "delete"
    said = page.js("return document.querySelector('.live').textContent")
    assert "Waiting on Xero's daily limit until" in said
    assert str(until_at.astimezone().year) in said, f"the resume time names its day: {said!r}"

    page.open("/#/clients")
    page.until("return document.querySelector('li.card .progress')", "the card's progress")
    seen = page.api.count("GET", "/clients")
    time.sleep(3)
    assert page.api.count("GET", "/clients") == seen, "the Client List does not reload every 1.5 s for a deferred run"


def test_a_failed_poll_during_a_sync_is_tried_again_and_the_screen_comes_back(page: Page) -> None:
    # One poll the gateway answers with its own 503 (a function that did not answer in time), then the run has ended
    page.api.answer("GET", f"/clients/{CLIENT}", (200, overview(run=running())), TIMED_OUT, (200, overview()))
    page.api.answer("GET", f"/clients/{CLIENT}/syncs", (200, run_page(1, None)))
    page.open(f"/#/clients/{CLIENT}")
    page.until("return document.querySelector('[role=alert]')?.textContent.includes('did not answer')", "the failure")
    page.until(
        f"{SYNC_NOW_READY} && document.getElementById('sync-now').textContent === 'Sync Now'"
        " && document.querySelector('.live').textContent === 'No sync is running.'",
        "the overview polled again, the run ended, Sync Now back",
    )
    assert page.text("[role=alert]") == "", "the failure is no longer said once the API answers"

    # The Client List's refresh while a card's sync runs: one failed, then the sync has ended
    page.api.answer(
        "GET",
        "/clients",
        client_page(summary(run={"runId": "r1", "status": "running"})),
        error(500, "internal_error", "something went wrong on our side"),
        client_page(summary()),
    )
    page.api.answer("GET", f"/clients/{CLIENT}", (200, overview(run=running())))
    page.open("/#/clients")
    page.until("return document.querySelector('[role=alert]')?.textContent.includes('our side')", "the failure")
    page.until(
        "const card = document.querySelector('li.card');"
        " return card && card.dataset.runStatus === '' && !card.querySelector('.progress')",
        "the list refreshed again, the card's sync ended",
    )
    assert page.text("[role=alert]") == ""


def test_the_overviews_alert_goes_when_an_action_succeeds_and_stays_through_the_polls(page: Page) -> None:
    sync = overview_whose_sync_queues(page.api)
    too_many = error(429, "rate_limited", "too many requests")
    page.api.answer("POST", f"/clients/{CLIENT}/sync", (*too_many, {"Retry-After": "12"}), sync)
    page.open(f"/#/clients/{CLIENT}")
    page.until(SYNC_NOW_READY, "Sync Now")
    page.browser.find_element("id", "sync-now").click()
    page.until("return document.querySelector('[role=alert]').textContent.includes('Try again in 12')", "the 429")
    page.browser.find_element("id", "sync-now").click()  # later, and this time it works
    page.until("return document.querySelector('.live').textContent.includes('Sync queued')", "the queued run")
    assert page.text("[role=alert]") == "", "the 429 is no longer said"

    # An action that fails while the run is polled is still said after the polls that follow it
    page.api.answer("POST", f"/clients/{CLIENT}/unlink", error(502, "xero_unavailable", "Xero did not answer."))
    page.browser.find_element("id", "unlink").click()
    page.js("document.querySelector('dialog[open] button[value=confirm]').click()")
    page.until("return document.querySelector('[role=alert]').textContent === 'Xero did not answer.'", "the failure")
    seen = page.api.count("GET", f"/clients/{CLIENT}")
    page.until(lambda b: page.api.count("GET", f"/clients/{CLIENT}") >= seen + 2, "two more polls")
    assert page.text("[role=alert]") == "Xero did not answer."


def test_sync_now_pressed_twice_sends_one_request(page: Page) -> None:
    sync = overview_whose_sync_queues(page.api)
    page.api.answer("POST", f"/clients/{CLIENT}/sync", sync, delay=0.8)  # a cold Lambda, a slow network
    page.open(f"/#/clients/{CLIENT}")
    page.until(SYNC_NOW_READY, "Sync Now")
    from selenium.webdriver import ActionChains

    ActionChains(page.browser).double_click(page.browser.find_element("id", "sync-now")).perform()
    page.until("return document.querySelector('.live').textContent.includes('Sync queued')", "the queued run")
    assert page.api.count("POST", f"/clients/{CLIENT}/sync") == 1


def test_a_keyboard_users_sync_now_keeps_the_focus_while_its_request_and_the_sync_are_under_way(page: Page) -> None:
    from selenium.webdriver.common.keys import Keys

    sync = overview_whose_sync_queues(page.api)
    page.api.answer("POST", f"/clients/{CLIENT}/sync", sync, delay=1)  # a cold Lambda, a slow network
    page.open(f"/#/clients/{CLIENT}")
    page.until(SYNC_NOW_READY, "Sync Now")
    press(page, "#sync-now")
    assert focused(page) == "sync-now", "the focus stays on Sync Now while its request is under way"
    assert page.js("return document.getElementById('sync-now').getAttribute('aria-disabled')") == "true", "said busy"
    page.browser.switch_to.active_element.send_keys(Keys.ENTER)  # pressed again meanwhile
    page.until("return document.querySelector('.live').textContent.includes('Sync queued')", "the queued run")
    assert focused(page) == "sync-now", "and while the sync it started is under way"
    assert page.text("#sync-now") == "Sync in progress…"
    assert page.api.count("POST", f"/clients/{CLIENT}/sync") == 1


def test_add_client_and_link_to_xero_pressed_twice_send_one_request(page: Page) -> None:
    page.api.answer("GET", "/clients", client_page(summary(link_state="unlinked")))
    # The authorize URL leads nowhere the test leaves: the console's own favicon.
    started = {"authorizeUrl": page.console.url + "/favicon.svg", "state": "s"}
    page.api.answer("POST", "/clients/link", (201, started), delay=0.8)
    page.api.answer("POST", f"/clients/{CLIENT}/link", (201, started), delay=0.8)
    from selenium.webdriver import ActionChains

    for button, path in (
        ("#add-client", "/clients/link"),
        ("li.card .card-actions > button.primary", f"/clients/{CLIENT}/link"),
    ):
        page.open("/#/clients")
        page.until("return document.querySelector('li.card')", "the card")
        ActionChains(page.browser).double_click(page.browser.find_element("css selector", button)).perform()
        page.until("return location.pathname === '/favicon.svg'", "Xero's consent (here: the favicon)")
        assert page.api.count("POST", path) == 1, button


def test_a_keyboard_users_unlink_leaves_the_focus_on_link_to_xero_in_its_place(page: Page) -> None:
    state = {"link": "linked"}
    overview_of(page.api, lambda: overview(link_state=state["link"]))

    def unlink(query: dict, body: Any) -> tuple[int, Any]:
        state["link"] = "unlinked"
        return 200, {"clientId": CLIENT, "linkState": "unlinked", "remoteCleanup": "not_needed"}

    page.api.answer("POST", f"/clients/{CLIENT}/unlink", unlink)
    page.open(f"/#/clients/{CLIENT}")
    page.until("return document.getElementById('unlink')", "Unlink from Xero")
    press(page, "#unlink")
    page.until("return document.querySelector('dialog[open]')", "the confirmation")
    from selenium.webdriver.common.keys import Keys

    page.browser.switch_to.active_element.send_keys(Keys.TAB)  # from Cancel to Unlink from Xero
    page.browser.switch_to.active_element.send_keys(Keys.ENTER)
    page.until("return document.getElementById('link')", "Link to Xero, the client unlinked")
    assert focused(page) == "link"


def test_unlink_and_delete_pressed_again_while_their_request_is_under_way_send_one_request(page: Page) -> None:
    from selenium.webdriver.common.keys import Keys

    unlinked = {"clientId": CLIENT, "linkState": "unlinked", "remoteCleanup": "not_needed"}
    page.api.answer("POST", f"/clients/{CLIENT}/unlink", (200, unlinked), delay=1)  # Xero answering slowly
    page.api.answer("DELETE", f"/clients/{CLIENT}", (202, {"clientId": CLIENT}), delay=1)
    page.api.answer("GET", "/clients", client_page(summary()))
    overview_of(page.api, overview())

    def press_confirm_and_press_again(*css: str) -> None:
        """Each of `css` clicked in turn (an options menu, then its item), the confirmation confirmed, and the same
        again while the request is under way (confirming a second confirmation, if one opens)."""
        for again in (False, True):
            for selector in css:
                page.browser.find_element("css selector", selector).click()
            if not again:
                page.until("return document.querySelector('dialog[open]')", "the confirmation")
            page.js("document.querySelector('dialog[open] button[value=confirm]')?.click()")

    for screen, css, method, path, done in (
        (f"/#/clients/{CLIENT}", ["#unlink"], "POST", f"/clients/{CLIENT}/unlink", "is unlinked"),
        (f"/#/clients/{CLIENT}", ["#delete"], "DELETE", f"/clients/{CLIENT}", "is being deleted"),
        ("/#/clients", ["button.options", "[data-action=unlink]"], "POST", f"/clients/{CLIENT}/unlink", "is unlinked"),
        ("/#/clients", ["button.options", "[data-action=delete]"], "DELETE", f"/clients/{CLIENT}", "is being deleted"),
    ):
        page.open(screen)
        page.until(f"return document.querySelector('{css[0]}')", css[0])
        if css[0].startswith("#"):  # the overview's button: a confirmation cancelled gives it back the focus
            press(page, css[0])
            page.browser.switch_to.active_element.send_keys(Keys.ESCAPE)
            page.until("return !document.querySelector('dialog[open]')", "the confirmation closed")
            assert focused(page) == css[0][1:]
        sent = page.api.count(method, path)
        press_confirm_and_press_again(*css)
        page.until(f"return document.getElementById('notice').textContent.includes('{done}')", done)
        assert page.api.count(method, path) == sent + 1, (screen, css)


# --- the Client List ------------------------------------------------------------------------------------------------
def test_an_open_options_menu_stays_open_with_focus_while_the_cards_sync_runs(page: Page) -> None:
    list_whose_card_syncs(page.api)
    page.open("/#/clients")
    page.until("return document.querySelector('li.card .progress')", "the card's progress")
    press(page, "button.options")  # focus on Sync with Xero
    from selenium.webdriver.common.keys import Keys

    page.browser.switch_to.active_element.send_keys(Keys.TAB)
    assert focused(page) == "Unlink from Xero"
    seen = page.api.count("GET", f"/clients/{CLIENT}")
    time.sleep(3.5)
    assert page.api.count("GET", f"/clients/{CLIENT}") >= seen + 2, "the card was refreshed meanwhile"
    assert page.js("return !document.querySelector('.menu').hidden"), "the menu stays open"
    assert focused(page) == "Unlink from Xero"


def test_the_lists_alert_of_a_failed_action_stays_through_its_reloads_until_an_action_succeeds(page: Page) -> None:
    list_whose_card_syncs(page.api)
    page.api.answer("POST", f"/clients/{CLIENT}/unlink", error(502, "xero_unavailable", "Xero did not answer."))
    page.api.answer(
        "POST", f"/clients/{CLIENT}/sync", (202, shaped(schemas.SyncAccepted, {"runId": "r1", "status": "queued"}))
    )
    page.open("/#/clients")
    page.until("return document.querySelector('li.card .progress')", "the card's progress")
    choose(page, "unlink")
    page.until("return document.querySelector('[role=alert]').textContent === 'Xero did not answer.'", "the failure")
    seen = page.api.count("GET", "/clients")
    page.until(lambda b: page.api.count("GET", "/clients") >= seen + 2, "two more reloads of the list")
    assert page.text("[role=alert]") == "Xero did not answer.", "the failure is still said"

    choose(page, "sync")
    page.until("return document.getElementById('notice').textContent === 'Sync of Acme Ltd started.'", "the sync")
    assert page.text("[role=alert]") == "", "an action that succeeds takes the failure away"


def test_a_cards_action_pressed_again_on_the_card_a_reload_rebuilt_sends_one_request(page: Page) -> None:
    unlinked = {"clientId": CLIENT, "linkState": "unlinked", "remoteCleanup": "not_needed"}
    started = {"authorizeUrl": page.console.url + "/favicon.svg", "state": "s"}  # leads to the console's favicon
    said = "return document.getElementById('notice').textContent.includes"
    for link_state, action, method, path, answer, done in (
        ("linked", "unlink", "POST", f"/clients/{CLIENT}/unlink", (200, unlinked), f"{said}('is unlinked')"),
        ("linked", "delete", "DELETE", f"/clients/{CLIENT}", (202, {"clientId": CLIENT}), f"{said}('being deleted')"),
        ("needs_relink", "link", "POST", f"/clients/{CLIENT}/link", (201, started), "return location.pathname !== '/'"),
    ):
        list_whose_card_syncs(page.api, link_state)
        page.api.answer(method, path, answer, delay=3)  # Xero answering slowly: the list reloads meanwhile
        page.open("/#/clients")
        page.until("return document.querySelector('li.card .progress')", "the card's progress")
        sent = page.api.count(method, path)
        choose(page, action)
        page.js("window.pressed = document.querySelector('li.card')")
        page.until("return document.querySelector('li.card') !== window.pressed", "the card rebuilt by a reload")
        choose(page, action, again=True)
        page.until(done, f"{action} done")
        assert page.api.count(method, path) == sent + 1, action


def test_a_list_left_open_says_its_last_sync_times_again_and_a_time_ahead_of_the_browser_is_just_now(
    page: Page,
) -> None:
    now = datetime.now(UTC)

    def synced(client_id: str, name: str, at: datetime) -> dict:
        return shaped(schemas.ClientSummary, {**summary(client_id, name), "lastSuccessfulSyncAt": at.isoformat()})

    # The second synced "in 20 seconds" by the browser's clock, which is behind the API's
    page.api.answer(
        "GET",
        "/clients",
        client_page(
            synced(CLIENT, "Acme Ltd", now - timedelta(seconds=5)),
            synced(OTHER, "Ahead Ltd", now + timedelta(seconds=20)),
        ),
    )
    page.open("/#/clients")
    page.until("return document.querySelectorAll('li.card').length === 2", "the cards")
    last_sync = "return document.querySelector(`li.card[data-client-id='${arguments[0]}'] .last-sync time`).textContent"
    assert page.js(last_sync, OTHER) == "just now"
    assert page.js(last_sync, CLIENT) == "just now"
    loaded = page.api.count("GET", "/clients")
    page.until(lambda b: page.js(last_sync, CLIENT).endswith("seconds ago"), "the time said again", timeout=20)
    assert page.api.count("GET", "/clients") == loaded, "said again in place, the list not read again"


def test_the_options_offered_follow_the_link_state(page: Page) -> None:
    items = [
        summary(CLIENT, "Linked Ltd"),
        summary(OTHER, "Unlinked Ltd", "unlinked"),
        summary(THIRD, "Relink Ltd", "needs_relink"),
    ]
    page.api.answer("GET", "/clients", client_page(*items))
    page.api.answer(
        "GET",
        f"/clients/{THIRD}",
        (200, overview(THIRD, "Relink Ltd", "needs_relink", linkStateReason="Xero no longer lets us read it.")),
    )
    page.open("/#/clients")
    page.until("return document.querySelectorAll('li.card').length === 3", "three cards")
    menus = page.js(
        "return Object.fromEntries([...document.querySelectorAll('li.card')].map((card) => [card.dataset.linkState,"
        " [...card.querySelectorAll('.menu button')].map((b) => b.textContent)]));"
    )
    assert menus == {
        "linked": ["Sync with Xero", "Unlink from Xero", "Delete client"],
        "unlinked": ["Link to Xero", "Delete client"],
        "needs_relink": ["Link to Xero", "Unlink from Xero", "Delete client"],
    }

    overview_of(
        page.api,
        overview(link_state="needs_relink", linkStateReason="Xero no longer lets us read it."),
        (200, run_page(0, None)),
    )
    page.open(f"/#/clients/{CLIENT}")
    page.until("return document.getElementById('link')", "Link to Xero")
    buttons = page.js("return [...document.querySelectorAll('.overview-actions > *')].map((b) => b.textContent)")
    assert buttons == ["Sync Now", "Link to Xero", "Unlink from Xero", "Xero Organisation", "Delete client"]


def test_an_empty_later_page_and_the_pagers_keep_the_keyboard_user_in_place(page: Page) -> None:
    first = [summary(f"{i:08d}-0000-4000-8000-000000000000", f"Client {i:02}") for i in range(12)]

    def clients(query: dict, body: Any) -> tuple[int, Any]:
        listed = {"items": [], "nextCursor": None} if query.get("cursor") else {"items": first, "nextCursor": "bmV4dA"}
        return 200, shaped(schemas.ClientPage, listed)

    page.api.answer("GET", "/clients", clients)
    page.open("/#/clients")
    page.until("return document.querySelectorAll('li.card').length === 12", "the first page")
    press(page, "nav.pager button")
    page.until("return document.querySelector('li.empty')", "the second page")
    assert page.js("return document.activeElement.tagName") == "H1", "focus on the list's heading"
    assert (
        page.js("return document.querySelector('ul.cards').textContent") == "No more clients. Previous page goes back."
    )

    overview_of(page.api, overview(), lambda q, b: (200, run_page(2, None if q.get("cursor") else "b2xkZXI")))
    page.open(f"/#/clients/{CLIENT}")
    page.until("return document.querySelectorAll('#sync-history tbody tr').length === 2", "the history")
    press(page, "section[aria-labelledby='history-heading'] button")
    page.until(
        "return [...document.querySelectorAll('button')].some((b) => b.textContent === 'Newest syncs')",
        "older syncs",
    )
    assert focused(page) == "history-heading"

    organisation = shaped(
        schemas.XeroOrganisationView,
        {
            "clientId": CLIENT,
            "organisation": {"Name": "Acme Ltd"},
            "resources": [{"resource": "Invoices", "records": 30, "lastImportedAt": None, "lastChangedAt": None}],
        },
    )
    page.api.answer("GET", f"/clients/{CLIENT}/xero", (200, organisation))
    page.api.answer("GET", f"/clients/{CLIENT}/xero/Invoices", lambda q, b: (
        200,
        shaped(schemas.XeroRecordPage, {"resource": "Invoices", "items": [{"InvoiceNumber": "INV-1"}],
               "nextCursor": None if q.get("cursor") else "cmVj"}),
    ))  # fmt: skip
    page.open(f"/#/clients/{CLIENT}/xero/Invoices")
    page.until("return document.getElementById('records-next')", "the records' Next page")
    press(page, "#records-next")
    page.until("return document.getElementById('records-previous')", "the second page of records")
    assert focused(page) == "records-heading"


def test_a_failed_older_syncs_is_said_and_a_401_opens_the_sign_in(page: Page) -> None:
    def history(query: dict, body: Any) -> tuple[int, Any]:
        if query.get("cursor"):
            return error(400, "invalid_cursor", "the paging cursor is not one this API gave out")
        return 200, run_page(2, "b2xkZXI")

    overview_of(page.api, overview(), history)
    page.open(f"/#/clients/{CLIENT}")
    page.until("return document.querySelectorAll('#sync-history tbody tr').length === 2", "the history")
    by_text(page, "Older syncs").click()
    page.until("return document.getElementById('notice').textContent.includes('paging cursor')", "the failure said")

    page.api.answer(
        "GET",
        f"/clients/{CLIENT}/syncs",
        lambda q, b: error(401, "unauthorized", "Unauthorized") if q.get("cursor") else (200, run_page(2, "b2xkZXI")),
    )
    page.open(f"/#/clients/{CLIENT}")
    page.until("return document.querySelectorAll('#sync-history tbody tr').length === 2", "the history")
    by_text(page, "Older syncs").click()
    page.until("return location.hash === '#/sign-in'", "the sign-in")


# --- the shell ------------------------------------------------------------------------------------------------------
def test_the_tab_title_names_a_client_only_on_its_screens(page: Page) -> None:
    overview_of(page.api, overview(name="Beta & Co"))
    page.api.answer("GET", "/clients", client_page(summary(name="Beta & Co")))
    page.open(f"/#/clients/{CLIENT}")
    page.until("return document.title === 'Beta & Co · Practice console'", "the client's title")
    page.browser.find_element("link text", "← Client List").click()
    page.until("return document.querySelector('li.card')", "the Client List")
    assert page.browser.title == "Practice console"


def test_a_request_the_gateway_answers_itself_with_a_5xx_is_said_and_keeps_the_session(page: Page) -> None:
    # The gateway's own 503 (a function that did not answer in time) carries no CORS headers, as its 401 to a refused
    # token does: the browser cannot read either, and this one must not sign the user out
    overview_of(page.api, overview())
    page.api.answer("POST", f"/clients/{CLIENT}/sync", TIMED_OUT)
    page.open(f"/#/clients/{CLIENT}")
    page.until(SYNC_NOW_READY, "Sync Now")
    page.browser.find_element("id", "sync-now").click()

    page.until("return document.querySelector('[role=alert]').textContent", "the overview's alert")
    assert page.text("[role=alert]") == "The API did not answer this request. Try again."
    assert page.js("return location.hash") == f"#/clients/{CLIENT}"
    assert page.stored(TOKEN_KEY) is not None
    assert page.js(SYNC_NOW_READY), "Sync Now can be pressed again"


def test_a_config_json_that_cannot_be_read_is_said_to_a_signed_in_user(page: Page) -> None:
    page.console.config_fails = True
    page.open("/#/clients")
    page.until("return document.getElementById('notice').textContent", "a message")
    assert page.js("return document.getElementById('notice').textContent") == "The console is not configured."
    assert "Loading" not in page.js("return document.getElementById('screen').textContent")
