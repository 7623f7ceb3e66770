"""The practice console (web/) in a real browser, in the states of the API the story on the real stack
(test_browser_console.py) cannot reach in a test's time or reaches only by chance: a run deferred by Xero's daily
limit (hours on the real stack), a sync whose progress changes under a keyboard user on every poll, a request slow
enough for a second press to land, an empty later page, a pager's failed call, a config.json that cannot be read.
So the API is a double: a small scripted server on 127.0.0.1 (port 0) whose answers are shaped by the API's own
schemas (xero_sync.schemas) and carry CORS as template.yaml's (the console's origin, `retry-after` exposed). web/ is
served by the project's own console server (local/stack/console_server.py, the same CSP as deployed), and driven by
Debian's chromium as the other browser tests drive it. One browser and one double per module; each test sets the
double's answers afresh. What is asserted is what a user checks: where focus is, what is open, what is said, how many
requests one gesture sent."""

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from local.stack.console_server import ConsoleServer
from tests.e2e.browser import TOKEN_KEY, chromium, needs_chromium
from xero_sync import schemas

pytestmark = needs_chromium

CLIENT = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
THIRD = "33333333-3333-4333-8333-333333333333"
Answer = Callable[[dict[str, list[str]], Any], tuple[int, Any]]


class ApiDouble:
    """Answers (method, path) with what a test set; logs every request. CORS as the template's HttpApi."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Answer] = {}
        self.log: list[tuple[str, str, str]] = []
        self.origin = ""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> None:
        self.routes.clear()
        self.log.clear()

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.log if (m, p) == (method, path))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _cors(self) -> None:
                self.send_header("Access-Control-Allow-Origin", double.origin)
                self.send_header("Access-Control-Allow-Headers", "authorization,content-type")
                self.send_header("Access-Control-Allow-Methods", "GET,POST,DELETE")
                self.send_header("Access-Control-Expose-Headers", "retry-after")

            def do_OPTIONS(self) -> None:
                self.send_response(204)
                self._cors()
                self.end_headers()

            def _answer(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                double.log.append((self.command, url.path, url.query))
                route = double.routes.get((self.command, url.path))
                if route is None:
                    status, payload = 404, {"error": {"code": "route_not_found", "message": "no such route"}}
                else:
                    status, payload = route(parse_qs(url.query), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self._cors()
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

        return Handler


class Console(ConsoleServer):
    """The project's console server, with a config.json that can be made to fail (a deploy under way)."""

    config_fails = False

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.config_fails and environ.get("PATH_INFO") == "/config.json":
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"unavailable"]
        return super()._app(environ, start_response)


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


def answer(payload: Any, status: int = 200, delay: float = 0) -> Answer:
    def respond(query: dict, body: Any) -> tuple[int, Any]:
        time.sleep(delay)
        return status, payload

    return respond


def jwt() -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"sub": "ana", "practice_id": "console-practice", "exp": int(time.time()) + 3600}
    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


# --- fixtures -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def double() -> Iterator[ApiDouble]:
    api = ApiDouble()
    yield api
    api.server.shutdown()
    api.server.server_close()


@pytest.fixture(scope="module")
def console(double: ApiDouble) -> Iterator[Console]:
    server = Console()
    server.config = {"apiUrl": double.url, "signIn": {"mode": "local", "tokensUrl": double.url + "/_local/tokens"}}
    double.origin = server.url
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def browser(module_browser: Any, double: ApiDouble, console: Console) -> Any:
    double.reset()
    console.config_fails = False
    return module_browser


def open_console(browser: Any, console: Console, hash_: str) -> None:
    browser.get(console.url + "/favicon.svg")
    browser.execute_script("sessionStorage.setItem(arguments[0], arguments[1])", TOKEN_KEY, jwt())
    browser.get(console.url + "/" + hash_)


def until(browser: Any, script: str, what: str, timeout: float = 10) -> Any:
    from selenium.webdriver.support.wait import WebDriverWait

    return WebDriverWait(browser, timeout, 0.05).until(lambda b: b.execute_script(script), what)


def focused(browser: Any) -> str:
    return str(browser.execute_script("const e = document.activeElement; return e.id || e.textContent.trim();"))


def press(browser: Any, css: str) -> None:
    """A keyboard user's Enter on the element (focus on it first, as Tab would have put it)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    element = browser.find_element(By.CSS_SELECTOR, css)
    browser.execute_script("arguments[0].focus()", element)
    element.send_keys(Keys.ENTER)


def by_text(browser: Any, text: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.XPATH, f"//button[normalize-space()='{text}']")


def overview_of(double: ApiDouble, client: Callable[[], dict] | dict, history: Answer | None = None) -> None:
    double.routes[("GET", f"/clients/{CLIENT}")] = lambda q, b: (200, client() if callable(client) else client)
    double.routes[("GET", f"/clients/{CLIENT}/syncs")] = history or answer(run_page(1, None))


# --- the Client Overview --------------------------------------------------------------------------------------------
def test_overview_polled_during_a_sync_keeps_focus_the_open_counts_and_a_quiet_live_region(browser, double, console):
    records = {"n": 100}

    def client() -> dict:
        records["n"] += 5  # the run and the counts move on each poll
        return overview(run=running(records["n"]), recordCounts={"Invoices": records["n"], "Contacts": 40})

    overview_of(double, client)
    open_console(browser, console, f"#/clients/{CLIENT}")
    until(browser, "return document.querySelector('details.counts')", "the record counts")
    browser.execute_script(
        "document.querySelector('details.counts').open = true; document.getElementById('unlink').focus();"
    )
    seen = double.count("GET", f"/clients/{CLIENT}")
    counted = browser.execute_script("return document.querySelector('details.counts summary').textContent")
    time.sleep(2.5)
    assert double.count("GET", f"/clients/{CLIENT}") >= seen + 2, "the overview is polled while the sync runs"
    assert focused(browser) == "unlink", "focus stays on Unlink from Xero"
    assert browser.execute_script("return document.querySelector('details.counts').open"), "the counts stay open"
    assert browser.execute_script("return document.querySelector('details.counts summary').textContent") != counted, (
        "counts updated"
    )


def test_a_deferred_run_is_said_with_its_date_polled_slowly_and_announced_once(browser, double, console):
    until_at = datetime.now(UTC) + timedelta(hours=30)  # Xero's daily limit: tomorrow
    overview_of(double, overview(run=deferred(until_at)))
    double.routes[("GET", "/clients")] = answer(
        shaped(schemas.ClientPage, {"items": [summary(run={"runId": "r2", "status": "deferred"})], "nextCursor": None})
    )
    open_console(browser, console, f"#/clients/{CLIENT}")
    until(browser, "return document.querySelector('.live .progress')", "the progress")
    browser.execute_script(
        "window.shown = document.querySelector('.live').firstChild; document.getElementById('delete').focus();"
    )
    seen = double.count("GET", f"/clients/{CLIENT}")
    time.sleep(3)
    assert double.count("GET", f"/clients/{CLIENT}") == seen, "a run deferred for hours is not read every second"
    assert browser.execute_script("return document.querySelector('.live').firstChild === window.shown"), (
        "nothing re-announced"
    )
    assert focused(browser) == "delete"
    said = browser.execute_script("return document.querySelector('.live').textContent")
    assert "Waiting on Xero's daily limit until" in said
    assert str(until_at.astimezone().year) in said, f"the resume time names its day: {said!r}"

    open_console(browser, console, "#/clients")
    until(browser, "return document.querySelector('li.card .progress')", "the card's progress")
    seen = double.count("GET", "/clients")
    time.sleep(3)
    assert double.count("GET", "/clients") == seen, "the Client List does not reload every 1.5 s for a deferred run"


def test_sync_now_pressed_twice_sends_one_request(browser, double, console):
    state: dict[str, Any] = {"run": None}
    overview_of(double, lambda: overview(run=state["run"]))

    def sync(query: dict, body: Any) -> tuple[int, Any]:
        time.sleep(0.8)  # a cold Lambda, a slow network
        state["run"] = {"runId": "r1", "status": "queued"}
        return 202, shaped(schemas.SyncAccepted, {"runId": "r1", "status": "queued"})

    double.routes[("POST", f"/clients/{CLIENT}/sync")] = sync
    open_console(browser, console, f"#/clients/{CLIENT}")
    until(
        browser,
        "return document.getElementById('sync-now') && !document.getElementById('sync-now').disabled",
        "Sync Now",
    )
    from selenium.webdriver import ActionChains

    ActionChains(browser).double_click(browser.find_element("id", "sync-now")).perform()
    until(browser, "return document.querySelector('.live').textContent.includes('Sync queued')", "the queued run")
    assert double.count("POST", f"/clients/{CLIENT}/sync") == 1


def test_add_client_and_link_to_xero_pressed_twice_send_one_request(browser, double, console):
    double.routes[("GET", "/clients")] = answer(
        shaped(schemas.ClientPage, {"items": [summary(link_state="unlinked")], "nextCursor": None})
    )
    # The authorize URL leads nowhere the test leaves: the console's own favicon.
    started = {"authorizeUrl": console.url + "/favicon.svg", "state": "s"}
    double.routes[("POST", "/clients/link")] = answer(started, 201, delay=0.8)
    double.routes[("POST", f"/clients/{CLIENT}/link")] = answer(started, 201, delay=0.8)
    from selenium.webdriver import ActionChains

    for button, path in (
        ("#add-client", "/clients/link"),
        ("li.card .card-actions > button.primary", f"/clients/{CLIENT}/link"),
    ):
        open_console(browser, console, "#/clients")
        until(browser, "return document.querySelector('li.card')", "the card")
        ActionChains(browser).double_click(browser.find_element("css selector", button)).perform()
        until(browser, "return location.pathname === '/favicon.svg'", "Xero's consent (here: the favicon)")
        assert double.count("POST", path) == 1, button


# --- the Client List ------------------------------------------------------------------------------------------------
def test_an_open_options_menu_stays_open_with_focus_while_the_cards_sync_runs(browser, double, console):
    run = {"runId": "r1", "status": "running"}
    double.routes[("GET", "/clients")] = answer(
        shaped(schemas.ClientPage, {"items": [summary(run=run)], "nextCursor": None})
    )
    records = iter(range(100, 10**6, 7))
    double.routes[("GET", f"/clients/{CLIENT}")] = lambda q, b: (200, overview(run=running(next(records))))
    open_console(browser, console, "#/clients")
    until(browser, "return document.querySelector('li.card .progress')", "the card's progress")
    press(browser, "button.options")  # focus on Sync with Xero
    from selenium.webdriver.common.keys import Keys

    browser.switch_to.active_element.send_keys(Keys.TAB)
    assert focused(browser) == "Unlink from Xero"
    seen = double.count("GET", f"/clients/{CLIENT}")
    time.sleep(3.5)
    assert double.count("GET", f"/clients/{CLIENT}") >= seen + 2, "the card was refreshed meanwhile"
    assert browser.execute_script("return !document.querySelector('.menu').hidden"), "the menu stays open"
    assert focused(browser) == "Unlink from Xero"


def test_the_options_offered_follow_the_link_state(browser, double, console):
    items = [
        summary(CLIENT, "Linked Ltd"),
        summary(OTHER, "Unlinked Ltd", "unlinked"),
        summary(THIRD, "Relink Ltd", "needs_relink"),
    ]
    double.routes[("GET", "/clients")] = answer(shaped(schemas.ClientPage, {"items": items, "nextCursor": None}))
    double.routes[("GET", f"/clients/{THIRD}")] = answer(
        overview(THIRD, "Relink Ltd", "needs_relink", linkStateReason="Xero no longer lets us read it.")
    )
    open_console(browser, console, "#/clients")
    until(browser, "return document.querySelectorAll('li.card').length === 3", "three cards")
    menus = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('li.card')].map((card) => [card.dataset.linkState,"
        " [...card.querySelectorAll('.menu button')].map((b) => b.textContent)]));"
    )
    assert menus == {
        "linked": ["Sync with Xero", "Unlink from Xero", "Delete client"],
        "unlinked": ["Link to Xero", "Delete client"],
        "needs_relink": ["Link to Xero", "Unlink from Xero", "Delete client"],
    }

    double.routes[("GET", f"/clients/{CLIENT}")] = answer(
        overview(link_state="needs_relink", linkStateReason="Xero no longer lets us read it.")
    )
    double.routes[("GET", f"/clients/{CLIENT}/syncs")] = answer(run_page(0, None))
    open_console(browser, console, f"#/clients/{CLIENT}")
    until(browser, "return document.getElementById('link')", "Link to Xero")
    buttons = browser.execute_script(
        "return [...document.querySelectorAll('.overview-actions > *')].map((b) => b.textContent)"
    )
    assert buttons == ["Sync Now", "Link to Xero", "Unlink from Xero", "Xero Organisation", "Delete client"]


def test_an_empty_later_page_and_the_pagers_keep_the_keyboard_user_in_place(browser, double, console):
    first = [summary(f"{i:08d}-0000-4000-8000-000000000000", f"Client {i:02}") for i in range(12)]

    def clients(query: dict, body: Any) -> tuple[int, Any]:
        page = {"items": [], "nextCursor": None} if query.get("cursor") else {"items": first, "nextCursor": "bmV4dA"}
        return 200, shaped(schemas.ClientPage, page)

    double.routes[("GET", "/clients")] = clients
    open_console(browser, console, "#/clients")
    until(browser, "return document.querySelectorAll('li.card').length === 12", "the first page")
    press(browser, "nav.pager button")
    until(browser, "return document.querySelector('li.empty')", "the second page")
    assert browser.execute_script("return document.activeElement.tagName") == "H1", "focus on the list's heading"
    assert (
        browser.execute_script("return document.querySelector('ul.cards').textContent")
        == "No more clients. Previous page goes back."
    )

    overview_of(double, overview(), lambda q, b: (200, run_page(2, None if q.get("cursor") else "b2xkZXI")))
    open_console(browser, console, f"#/clients/{CLIENT}")
    until(browser, "return document.querySelectorAll('#sync-history tbody tr').length === 2", "the history")
    press(browser, "section[aria-labelledby='history-heading'] button")
    until(
        browser,
        "return [...document.querySelectorAll('button')].some((b) => b.textContent === 'Newest syncs')",
        "older syncs",
    )
    assert focused(browser) == "history-heading"

    double.routes[("GET", f"/clients/{CLIENT}/xero")] = answer(
        shaped(schemas.XeroOrganisationView, {"clientId": CLIENT, "organisation": {"Name": "Acme Ltd"},
               "resources": [{"resource": "Invoices", "records": 30, "lastImportedAt": None, "lastChangedAt": None}]})
    )  # fmt: skip
    double.routes[("GET", f"/clients/{CLIENT}/xero/Invoices")] = lambda q, b: (
        200,
        shaped(schemas.XeroRecordPage, {"resource": "Invoices", "items": [{"InvoiceNumber": "INV-1"}],
               "nextCursor": None if q.get("cursor") else "cmVj"}),
    )  # fmt: skip
    open_console(browser, console, f"#/clients/{CLIENT}/xero/Invoices")
    until(browser, "return document.getElementById('records-next')", "the records' Next page")
    press(browser, "#records-next")
    until(browser, "return document.getElementById('records-previous')", "the second page of records")
    assert focused(browser) == "records-heading"


def test_a_failed_older_syncs_is_said_and_a_401_opens_the_sign_in(browser, double, console):
    def history(query: dict, body: Any) -> tuple[int, Any]:
        if query.get("cursor"):
            return error(400, "invalid_cursor", "the paging cursor is not one this API gave out")
        return 200, run_page(2, "b2xkZXI")

    overview_of(double, overview(), history)
    open_console(browser, console, f"#/clients/{CLIENT}")
    until(browser, "return document.querySelectorAll('#sync-history tbody tr').length === 2", "the history")
    by_text(browser, "Older syncs").click()
    until(browser, "return document.getElementById('notice').textContent.includes('paging cursor')", "the failure said")

    double.routes[("GET", f"/clients/{CLIENT}/syncs")] = lambda q, b: (
        error(401, "unauthorized", "Unauthorized") if q.get("cursor") else (200, run_page(2, "b2xkZXI"))
    )
    open_console(browser, console, f"#/clients/{CLIENT}")
    until(browser, "return document.querySelectorAll('#sync-history tbody tr').length === 2", "the history")
    by_text(browser, "Older syncs").click()
    until(browser, "return location.hash === '#/sign-in'", "the sign-in")


# --- the shell ------------------------------------------------------------------------------------------------------
def test_the_tab_title_names_a_client_only_on_its_screens(browser, double, console):
    overview_of(double, overview(name="Beta & Co"))
    double.routes[("GET", "/clients")] = answer(
        shaped(schemas.ClientPage, {"items": [summary(name="Beta & Co")], "nextCursor": None})
    )
    open_console(browser, console, f"#/clients/{CLIENT}")
    until(browser, "return document.title === 'Beta & Co · Practice console'", "the client's title")
    browser.find_element("link text", "← Client List").click()
    until(browser, "return document.querySelector('li.card')", "the Client List")
    assert browser.title == "Practice console"


def test_a_config_json_that_cannot_be_read_is_said_to_a_signed_in_user(browser, double, console):
    console.config_fails = True
    open_console(browser, console, "#/clients")
    until(browser, "return document.getElementById('notice').textContent", "a message")
    assert (
        browser.execute_script("return document.getElementById('notice').textContent")
        == "The console is not configured."
    )
    assert "Loading" not in browser.execute_script("return document.getElementById('screen').textContent")
