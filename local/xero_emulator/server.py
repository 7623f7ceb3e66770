"""The WSGI application (routing, faults, stats) and XeroEmulator, which serves it from a background thread."""

from __future__ import annotations

import _socket
import json
import socket
import struct
import threading
import time
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from local.xero_emulator.accounting import AccountingEndpoints
from local.xero_emulator.admin import AdminEndpoints
from local.xero_emulator.config import EmulatorConfig, RegisteredApp
from local.xero_emulator.faults import LIST_KINDS, TOKEN_KINDS, Fault
from local.xero_emulator.oauth import OAuthEndpoints
from local.xero_emulator.resources import RESOURCES_BY_LOWER
from local.xero_emulator.responses import (
    dumps,
    gone,
    json_response,
    not_found,
    rate_limited,
    server_error,
    unavailable,
)
from local.xero_emulator.state import EmulatorState

_DROP = "xero_emulator.drop"


class _DroppedConnection(ConnectionAbortedError):
    """Raised by the app to make the server close the connection without an answer (timeout/reset faults)."""


class _RequestHandler(WSGIRequestHandler):
    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        action = (environ or {}).get(_DROP)
        if not action:
            return
        self.close_connection = True
        try:
            if action == "reset":
                # SO_LINGER 0 then close: the kernel answers with a TCP RST instead of a FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                _socket.socket.close(self.connection)
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not getattr(self.server, "quiet", True):
            super().log_request(code, size)


class EmulatorApp:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.oauth = OAuthEndpoints(state)
        self.accounting = AccountingEndpoints(state, self.oauth.authenticate)
        self.admin = AdminEndpoints(state)
        self.base_url = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self.dispatch(request, environ)
        return response(environ, start_response)

    def dispatch(self, request: Request, environ: dict[str, Any]) -> Response:
        path = request.path
        lowered = path.lower()
        if lowered.startswith("/_emulator/") or lowered == "/_emulator":
            return self.admin.handle(request, path[len("/_emulator") :])
        arrived = self.state.clock.now()
        tenant = request.headers.get("xero-tenant-id")
        fault = self.state.faults.take(tenant, path)
        if fault is not None and fault.kind != "malformed" and fault.kind not in LIST_KINDS | TOKEN_KINDS:
            return self._fault(fault, tenant, path, environ, arrived)
        response, tenant_id, endpoint, in_flight, problem = self._route(request, lowered, path)
        if fault is not None and fault.kind == "malformed":
            body = response.get_data()
            response.set_data(body[: max(1, len(body) // 2)])
            response.status_code = 200
            response.content_type = "application/json; charset=utf-8"
        elif fault is not None and fault.kind in TOKEN_KINDS:
            if response.status_code == 200 and lowered == "/connect/token":
                response.set_data(dumps(self.oauth.spoil_token(json.loads(response.get_data()), fault.kind)))
        elif fault is not None and response.status_code == 200 and lowered.startswith("/api.xro/2.0/"):
            resource = RESOURCES_BY_LOWER.get(lowered.split("/")[3])
            if resource is not None:
                body = json.loads(response.get_data())
                response.set_data(dumps(fault.spoil(body, resource.key, resource.id_field)))
        if endpoint:
            self.state.record_call(tenant_id, endpoint, response.status_code, problem, in_flight, arrived)
        response.headers.setdefault("Xero-Correlation-Id", f"emulator-{time.monotonic_ns()}")
        return response

    def _route(self, request: Request, lowered: str, path: str) -> tuple[Response, str | None, str, int, str | None]:
        if lowered.startswith("/api.xro/2.0"):
            response, tenant_id, endpoint, in_flight = self.accounting.handle(request, path[len("/api.xro/2.0") :])
            problem = response.headers.get("X-Rate-Limit-Problem") if response.status_code == 429 else None
            return response, tenant_id, endpoint, in_flight, problem
        if lowered == "/identity/connect/authorize":
            return self.oauth.authorize(request), None, "", 0, None
        if lowered == "/connect/token":
            return self.oauth.token(request), None, "POST /connect/token", 0, None
        if lowered == "/connect/revocation":
            return self.oauth.revoke(request), None, "POST /connect/revocation", 0, None
        if lowered in ("/connections", "/connections/"):
            response = self.oauth.connections(request, None)
            return response, None, f"{request.method} /connections", 0, None
        if lowered.startswith("/connections/"):
            response = self.oauth.connections(request, path.split("/", 2)[2].strip("/"))
            return response, None, f"{request.method} /connections/{{id}}", 0, None
        if lowered == "/.well-known/openid-configuration":
            return self.oauth.discovery(self.base_url), None, "", 0, None
        if lowered == "/.well-known/openid-configuration/jwks":
            return self.oauth.jwks(), None, "", 0, None
        return json_response({"error": f"no such endpoint: {path}"}, 404), None, "", 0, None

    def _fault(self, fault: Fault, tenant: str | None, path: str, environ: dict[str, Any], arrived: float) -> Response:
        endpoint = f"fault {path}"
        if fault.kind.startswith("429-"):
            problem = fault.kind[4:]
            retry_after = fault.retry_after
            if retry_after is None and problem != "concurrent":
                retry_after = 3600 if problem == "day" else 60
            headers = {"X-AppMinLimit-Remaining": "0" if problem == "appminute" else "1"}
            if problem != "appminute" or tenant:
                headers["X-MinLimit-Remaining"] = "0" if problem == "minute" else "1"
                headers["X-DayLimit-Remaining"] = "0" if problem == "day" else "1"
            self.state.record_call(tenant, endpoint, 429, problem, arrived=arrived)
            return rate_limited(problem, retry_after, headers)
        if fault.kind == "500":
            self.state.record_call(tenant, endpoint, 500, arrived=arrived)
            return server_error()
        if fault.kind == "503":
            self.state.record_call(tenant, endpoint, 503, arrived=arrived)
            return unavailable()
        if fault.kind == "not-offered":  # an endpoint this organisation does not offer: Xero's plain 404
            self.state.record_call(tenant, endpoint, 404, arrived=arrived)
            return not_found()
        if fault.kind == "gone":
            self.state.record_call(tenant, endpoint, 410, arrived=arrived)
            return gone()
        # timeout / reset: no answer at all
        self.state.record_call(tenant, endpoint, 0, arrived=arrived)
        if fault.kind == "timeout":
            time.sleep(fault.hold_seconds)
        environ[_DROP] = fault.kind
        raise _DroppedConnection(fault.kind)


class XeroEmulator:
    """An emulated Xero on 127.0.0.1, served from a background thread.

    with XeroEmulator(EmulatorConfig(port=0)) as xero:
        requests.post(f"{xero.base_url}/_emulator/orgs", json={"name": "Acme", "seed": 1, "size": "tiny"})
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.state = EmulatorState(self.config)
        self.app = EmulatorApp(self.state)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> XeroEmulator:
        if self._server is not None:
            return self
        server = make_server(
            self.config.host, self.config.port, self.app, threaded=True, request_handler=_RequestHandler
        )
        server.quiet = self.config.quiet  # type: ignore[attr-defined]
        server.daemon_threads = True  # type: ignore[attr-defined]
        self._server = server
        self.app.base_url = self.base_url
        self.state.issuer = self.base_url
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="xero-emulator", daemon=True
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return int(self._server.server_port)

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> XeroEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Conveniences for in-process tests (the same as the admin API).
    def register_app(
        self, client_id: str, client_secret: str | None, redirect_uris: list[str], name: str = "Xero Emulator App"
    ) -> None:
        self.state.register_app(RegisteredApp(client_id, client_secret, list(redirect_uris), name))
