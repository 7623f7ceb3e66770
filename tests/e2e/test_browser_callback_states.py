"""The console's answers to the API states a user meets between calls, in a real browser: headless Chromium (Debian's
chromium + chromium-driver) on web/ as the project's console server serves it (local/stack/console_server.py, the
same strict CSP), calling a small scripted double of the API on another origin, with CORS as template.yaml sets it
(exposing retry-after), answers shaped as the API's (schemas.py, limits.py, docs/link-flow.md), and a 401 without
CORS headers, as API Gateway's JWT authorizer sends it.

Why a double and not the local stack: the gateway refusing a token whose exp is still ahead (revoked, another
audience, a browser clock behind), and a practice going over its request limit in the middle of a consent (between
Xero's redirect and the callback page's POST), are races the real stack does not reach on demand. One browser, one
double and one console server serve the module; each test sets the double's answers afresh."""

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from werkzeug.wrappers import Response

from local.stack.console_server import ConsoleServer
from tests.e2e.browser import TOKEN_KEY, chromium, needs_chromium

pytestmark = needs_chromium

CLIENT_ID = "6f1d8f3e-5b1c-4d55-9a4e-2f0a7c1b9e01"
STATE, CODE = "c3RhdGUtb2YtYS1saW5rLXN0YXJ0ZWQtYnktYW5h", "xero-authorization-code-1"
LINKED = {"outcome": "linked", "code": "linked", "message": "1 organisation(s) linked.", "clientIds": [CLIENT_ID]}
# limits.py's 429: its message and Retry-After
RATE_LIMITED = (
    429,
    {"error": {"code": "rate_limited", "message": "this practice made 60 such requests in 60 s; try again in 12 s"}},
    {"Retry-After": "12"},
)
REFUSED = (401, {"message": "Unauthorized"}, {})  # API Gateway's JWT authorizer: no CORS headers on it

Answer = tuple[int, Any, dict[str, str]]


@dataclass
class ApiDouble:
    """Answers what a test scripts, per route (the last answer of a route repeats), with the template's CORS. What
    the gateway does itself: a preflight answered, a request without a token (or with one it refuses) a 401 with no
    CORS headers. Offline, it closes every connection without an answer."""

    console_origin: str = ""
    answers: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)  # what reached the API behind the gateway
    refuse_tokens: bool = False
    offline: bool = False

    def reset(self) -> None:
        self.answers, self.requests, self.refuse_tokens, self.offline = {}, [], False, False

    def answer(self, method: str, path: str, *answers: Answer) -> None:
        self.answers[(method, path)] = list(answers)

    def posts(self, path: str) -> list[Any]:
        return [body for method, at, body in self.requests if (method, at) == ("POST", path)]

    def start(self) -> str:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="api-double", daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str], cors: bool) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if cors:  # template.yaml's CorsConfiguration
                    self.send_header("Access-Control-Allow-Origin", double.console_origin)
                    self.send_header("Access-Control-Allow-Headers", "authorization,content-type")
                    self.send_header("Access-Control-Allow-Methods", "GET,POST,DELETE")
                    self.send_header("Access-Control-Expose-Headers", "retry-after")
                    self.send_header("Access-Control-Max-Age", "600")
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _answer(self) -> None:
                if double.offline:
                    self.close_connection = True
                    return
                if self.command == "OPTIONS":
                    self._send(204, None, {}, cors=True)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if not self.headers.get("Authorization") or double.refuse_tokens:
                    self._send(*REFUSED, cors=False)
                    return
                path = self.path.split("?")[0]
                double.requests.append((self.command, path, body))
                scripted = double.answers.get((self.command, path))
                if not scripted:
                    self._send(404, {"error": {"code": "route_not_found", "message": "no such route"}}, {}, cors=True)
                    return
                status, payload, headers = scripted.pop(0) if len(scripted) > 1 else scripted[0]
                self._send(status, payload, headers, cors=True)

            do_GET = do_POST = do_DELETE = do_OPTIONS = _answer

        return Handler


class Console(ConsoleServer):
    """The project's console server, whose config.json can fail for a while (a deploy in progress, a 5xx)."""

    config_fails = False
    config_asked = 0

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == "/config.json":
            self.config_asked += 1
        if self.config_fails and environ.get("PATH_INFO") == "/config.json":
            return Response("Service Unavailable", status=503)(environ, start_response)
        return super()._app(environ, start_response)


@dataclass
class Page:
    browser: Any
    console: Console
    api: ApiDouble

    def open(self, path: str, expires_in: int = 3600) -> None:
        """Signed in (the user's JWT in the console origin's session storage, nothing else), then at `path`."""
        self.browser.get(f"{self.console.url}/favicon.svg")
        self.browser.execute_script(
            "sessionStorage.clear(); sessionStorage.setItem(arguments[0], arguments[1])", TOKEN_KEY, jwt(expires_in)
        )
        self.browser.get(f"{self.console.url}{path}")

    def until(self, condition: Callable[[Any], Any], what: str, timeout: float = 15) -> Any:
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.wait import WebDriverWait

        try:
            return WebDriverWait(self.browser, timeout, 0.1).until(condition)
        except TimeoutException:
            page = self.browser.find_element("tag name", "body").text[:1500]
            raise AssertionError(f"waited {timeout} s for {what}; at {self.browser.current_url}:\n{page}") from None

    def text(self, css: str) -> str:
        return str(self.browser.execute_script("return document.querySelector(arguments[0])?.innerText ?? ''", css))

    def outcome(self) -> tuple[str, str]:
        """The callback page's outcome once it is no longer working: (its state, what it says)."""
        state = self.until(
            lambda b: (s := b.find_element("id", "outcome").get_attribute("data-state")) != "working" and s,
            "the callback page's outcome",
        )
        return state, self.text("#outcome")

    def stored(self, key: str) -> Any:
        return self.browser.execute_script("return sessionStorage.getItem(arguments[0])", key)


def jwt(expires_in: int) -> str:
    """A JWT as the console reads it (the API verifies signatures, the console never does)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"sub": "ana", "practice_id": "callback-practice", "exp": int(time.time()) + expires_in}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Any, Console, ApiDouble]]:
    api = ApiDouble()
    api_url = api.start()
    console = Console()
    console.config = {"apiUrl": api_url, "signIn": {"mode": "local", "tokensUrl": f"{api_url}/_local/tokens"}}
    api.console_origin = console.url
    console.start()
    try:
        with chromium() as browser:
            yield browser, console, api
    finally:
        console.stop()
        api.stop()


@pytest.fixture
def page(served: tuple[Any, Console, ApiDouble]) -> Page:
    browser, console, api = served
    api.reset()
    console.config_fails, console.config_asked = False, 0
    return Page(browser, console, api)


def callback_query() -> str:
    return f"/xero/callback?code={CODE}&state={STATE}"


def test_a_completion_refused_by_the_practice_limit_is_kept_and_try_again_finishes_the_link(page: Page) -> None:
    # Given a practice over its request limit when Xero sends the user back (the 429 comes before the state is read)
    page.api.answer("POST", "/xero/link-completions", RATE_LIMITED, (200, LINKED, {}))
    page.open(callback_query())

    # Then the page says when to try again, once, in the console's words, and keeps the link
    state, said = page.outcome()
    assert state == "waiting"
    assert said.startswith("Too many requests from your practice right now. Try again in 12 seconds (at ")
    assert said.count("ry again") == 1
    assert page.text("#next") == "The link is kept: press Try again to finish it."
    assert page.browser.current_url == f"{page.console.url}/xero/callback"  # the code left the address bar

    # When the user presses Try again, the link is finished with one more POST of the same code and state
    page.browser.find_element("id", "retry").click()
    assert page.outcome() == ("linked", "1 organisation(s) linked.")
    assert page.api.posts("/xero/link-completions") == [{"state": STATE, "code": CODE}] * 2
    assert not page.browser.find_element("id", "retry").is_displayed()


def test_a_completion_that_could_not_reach_the_api_is_kept_and_try_again_finishes_the_link(page: Page) -> None:
    page.api.answer("POST", "/xero/link-completions", (200, LINKED, {}))
    page.api.offline = True
    page.open(callback_query())

    state, said = page.outcome()
    assert (state, said) == ("waiting", "The API could not be reached. Check your connection and try again.")
    assert page.browser.find_element("id", "retry").is_displayed()

    page.api.offline = False
    page.browser.find_element("id", "retry").click()
    assert page.outcome() == ("linked", "1 organisation(s) linked.")
    assert page.api.posts("/xero/link-completions") == [{"state": STATE, "code": CODE}]


def test_a_completion_whose_token_the_gateway_refuses_is_kept_for_after_signing_in(page: Page) -> None:
    # Given a token whose exp is an hour ahead, but that the gateway refuses (a 401 the browser cannot read)
    page.api.refuse_tokens = True
    page.open(callback_query())

    state, said = page.outcome()
    assert (state, said) == ("failed", "Your session has ended. Sign in again to finish linking.")
    assert page.text("#next") == "Sign in"
    assert json.loads(page.stored("xero-sync.pending-link")) == {"state": STATE, "code": CODE}


def test_a_reload_after_the_link_finished_does_not_say_it_failed(page: Page) -> None:
    page.api.answer("POST", "/xero/link-completions", (200, LINKED, {}))
    page.open(callback_query())
    assert page.outcome() == ("linked", "1 organisation(s) linked.")

    page.browser.refresh()

    state, said = page.outcome()
    assert (state, said) == ("done", "Nothing left to finish here.")
    assert "again" not in page.text("#next")
    assert len(page.api.posts("/xero/link-completions")) == 1


def test_a_token_the_gateway_refuses_before_its_exp_leads_to_the_sign_in(page: Page) -> None:
    page.api.answer("GET", "/clients", (200, {"items": [], "nextCursor": None}, {}))
    page.api.refuse_tokens = True
    page.open("/#/clients")

    page.until(lambda b: b.execute_script("return location.hash") == "#/sign-in", "the sign-in")
    assert page.text("#notice") == "The API no longer accepts your session. Sign in again."
    assert page.stored(TOKEN_KEY) is None


def test_a_token_a_minute_from_its_exp_is_not_sent_and_leads_to_the_sign_in(page: Page) -> None:
    # The browser's clock may be behind the gateway's: a token 30 s from its exp may already be refused there
    page.api.answer("GET", "/clients", (200, {"items": [], "nextCursor": None}, {}))
    page.open("/#/clients", expires_in=30)

    page.until(lambda b: b.execute_script("return location.hash") == "#/sign-in", "the sign-in")
    assert page.text("#notice") == "Your session has ended. Sign in again."
    assert page.api.requests == []


def test_a_429_on_the_client_list_says_when_to_retry_once(page: Page) -> None:
    page.api.answer("GET", "/clients", (200, {"items": [], "nextCursor": None}, {}))
    page.api.answer("POST", "/clients/link", RATE_LIMITED)
    page.open("/#/clients")

    page.until(lambda b: "No clients yet" in b.find_element("id", "screen").text, "the Client List")
    page.browser.find_element("id", "add-client").click()

    said = page.until(lambda b: b.find_element("css selector", "main .error").text, "the 429 said")
    assert said.startswith("Too many requests from your practice right now. Try again in 12 seconds (at ")
    assert said.count("ry again") == 1


def test_config_json_failing_once_does_not_stick_for_the_next_screen(page: Page) -> None:
    page.api.answer("GET", "/clients", (200, {"items": [], "nextCursor": None}, {}))
    page.console.config_fails = True
    page.open("/#/clients")
    page.until(lambda _: page.console.config_asked, "config.json asked for")

    # When config.json is back and the user moves to another screen
    page.console.config_fails = False
    page.browser.execute_script("location.hash = '#/'")

    page.until(lambda b: "No clients yet" in b.find_element("id", "screen").text, "the Client List")
    assert ("GET", "/clients", None) in page.api.requests
