"""The console's origin on the local stack: the static files of web/ and the config.json the console fetches, on a
port of their own (another origin than the API's, as deployed, so CORS is exercised for real). Xero sends the browser
back to its /xero/callback page, the redirect URI the local Xero app is registered with."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.exceptions import NotFound
from werkzeug.serving import WSGIRequestHandler
from werkzeug.utils import send_from_directory
from werkzeug.wrappers import Request, Response

from local.stack.gateway import GatewayServer
from local.stack.template import REPO_ROOT

WEB_ROOT = REPO_ROOT / "web"
# Pages the console links to by a clean path, as the deployed distribution serves them.
PAGES = {"/": "index.html", "/xero/callback": "xero-callback.html"}
# The policy the deployed distribution sends (template.yaml's ConsoleHeadersPolicy says the same): scripts, styles and
# everything else from the console's own origin only (no inline code, no eval); calls to the API and nowhere else.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' {api}; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class _Quiet(WSGIRequestHandler):
    """No line per request: the callback page's query carries Xero's authorization code."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class ConsoleServer:
    """Serves web/ on 127.0.0.1, bound at construction (its origin is known before the template is read)."""

    def __init__(self, port: int = 0, root: Path = WEB_ROOT) -> None:
        self.root = root
        self.config: dict[str, Any] = {}
        self.server = GatewayServer(self._app, port, request_handler=_Quiet, name="local-console")

    @property
    def url(self) -> str:
        return self.server.url

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        if request.path == "/config.json":
            response = Response(json.dumps(self.config), content_type="application/json")
            response.headers["Cache-Control"] = "no-store"
        else:
            try:
                response = send_from_directory(self.root, PAGES.get(request.path, request.path.lstrip("/")), environ)
            except NotFound:
                response = Response("Not Found", status=404, content_type="text/plain")
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(api=self.config.get("apiUrl", ""))
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response(environ, start_response)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
