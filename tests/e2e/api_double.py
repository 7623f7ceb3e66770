"""A scripted double of the API, for the browser tests of the console (web/) in the states of the API a user meets but
the real local stack reaches only after hours (a run deferred by Xero's daily limit) or in races (a token the gateway
refuses before its exp, a practice over its request limit between Xero's redirect and the callback page's POST, a
request slow enough for a second press to land, a config.json that fails while a deploy is under way).

The double is a small HTTP server on 127.0.0.1 (port 0) that answers each route with what a test scripted, with CORS
as template.yaml's HttpApi sets it (the console's origin only, `retry-after` exposed), and logs what reached the API.
It does what API Gateway does in front of the functions: answers a preflight, and answers a request without an
Authorization header (or every request, with `refuse_tokens`) with its JWT authorizer's 401, which carries no CORS
headers (a browser cannot read it); a route may answer with the gateway's own 503 (`TIMED_OUT`), as bare. `offline`
closes every connection without an answer. The console is served by the project's own console server
(local/stack/console_server.py, the same CSP as deployed), whose config.json can be made to fail. The fixtures that
start them, one of each and one Chromium per module, are in conftest.py; `Page` is how a test drives the console
there."""

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlparse

from werkzeug.wrappers import Response

from local.stack.console_server import ConsoleServer
from tests.e2e.browser import TOKEN_KEY

# (status, body) or (status, body, headers), e.g. a 429's {"Retry-After": "12"}
Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]
# A reply, or a function of the request's (query, JSON body) for answers that depend on the request (a page cursor)
Answer = Reply | Callable[[dict[str, list[str]], Any], Reply]


class Gateway(NamedTuple):
    """An answer of API Gateway's own, which carries no CORS headers (a browser cannot read it)."""

    status: int
    body: Any


# What API Gateway's JWT authorizer answers to a request without a token, or with one it refuses
REFUSED = Gateway(401, {"message": "Unauthorized"})
# What it answers when a function did not answer in time
TIMED_OUT = Gateway(503, {"message": "Service Unavailable"})


class Request(NamedTuple):
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class Route:
    answers: list[Answer]  # in turn; the last one repeats
    delay: float = 0  # seconds before each answer (a cold Lambda, a slow network)


@dataclass
class ApiDouble:
    console_origin: str = ""
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)  # what reached the API behind the gateway
    refuse_tokens: bool = False
    offline: bool = False
    url: str = ""

    def answer(self, method: str, path: str, *answers: Answer, delay: float = 0) -> None:
        """The route's answers from now on, in turn (the last one repeats); a route not scripted is a 404."""
        self.routes[(method, path)] = Route(list(answers), delay)

    def reset(self) -> None:
        self.routes, self.requests, self.refuse_tokens, self.offline = {}, [], False, False

    def count(self, method: str, path: str) -> int:
        return sum(1 for request in self.requests if (request.method, request.path) == (method, path))

    def posts(self, path: str) -> list[Any]:
        return [request.body for request in self.requests if (request.method, request.path) == ("POST", path)]

    def start(self) -> str:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="api-double", daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _reply(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        route = self.routes.get((method, path))
        if route is None or not route.answers:
            return 404, {"error": {"code": "route_not_found", "message": "no such route"}}
        answer = route.answers.pop(0) if len(route.answers) > 1 else route.answers[0]
        time.sleep(route.delay)
        return answer(query, body) if callable(answer) else answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, reply: Reply, cors: bool) -> None:
                status, body, headers = (*reply, {})[:3]
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
                    self._send((204, None), cors=True)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if not self.headers.get("Authorization") or double.refuse_tokens:
                    self._send(REFUSED, cors=False)
                    return
                url = urlparse(self.path)
                request = Request(self.command, url.path, parse_qs(url.query), body)
                double.requests.append(request)
                reply = double._reply(*request)
                self._send(reply, cors=not isinstance(reply, Gateway))

            do_GET = do_POST = do_DELETE = do_OPTIONS = _answer

        return Handler


class Console(ConsoleServer):
    """The project's console server, whose config.json can be made to fail (a deploy under way, a 5xx)."""

    config_fails = False
    config_asked = 0

    def reset(self) -> None:
        self.config_fails, self.config_asked = False, 0

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == "/config.json":
            self.config_asked += 1
            if self.config_fails:
                return Response("Service Unavailable", status=503)(environ, start_response)
        return super()._app(environ, start_response)


def jwt(expires_in: int = 3600) -> str:
    """A JWT as the console reads it (the API verifies signatures, the console never does)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"sub": "ana", "practice_id": "browser-practice", "exp": int(time.time()) + expires_in}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


@dataclass
class Page:
    """The module's browser on the console, whose API is the double."""

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

    def until(self, condition: str | Callable[[Any], Any], what: str, timeout: float = 15) -> Any:
        """The condition's first true value: a function of the browser, or a script whose return value it is."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.wait import WebDriverWait

        check = (lambda b: b.execute_script(condition)) if isinstance(condition, str) else condition
        try:
            return WebDriverWait(self.browser, timeout, 0.05).until(check)
        except TimeoutException:
            page = self.browser.find_element("tag name", "body").text[:1500]
            raise AssertionError(f"waited {timeout} s for {what}; at {self.browser.current_url}:\n{page}") from None

    def js(self, script: str, *args: Any) -> Any:
        return self.browser.execute_script(script, *args)

    def text(self, css: str) -> str:
        return str(self.js("return document.querySelector(arguments[0])?.innerText ?? ''", css))

    def stored(self, key: str) -> Any:
        return self.js("return sessionStorage.getItem(arguments[0])", key)
