"""The HTTP front door: API Gateway HTTP API (payload format 2.0) in front of the template's functions.

Routes come from template.routes(); the JWT authorizer from template.jwt_authorizer(); the access log line from
template.access_log_format(); CORS from template.cors_configuration(). A request that matches no route gets API
Gateway's own 404, one without a valid token on an authorized route its 401 (the function is not called), and a
function that fails or answers something API Gateway cannot map its 500. With CORS configured, the gateway answers
preflights itself and puts the CORS headers on integration responses to an allowed origin (none for any other).
Admin routes for the local stack live under /_local/ (loopback only, never in the template).
"""

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from local.stack.api_events import http_api_event
from local.stack.aws_engines import HOST
from local.stack.jwt_auth import InvalidToken, JwtAuthorizer, claims_as_api_gateway_passes_them, scopes_of
from local.stack.template import Route

log = logging.getLogger("local.stack.gateway")
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # HTTP API's request payload quota
_TEXT_TYPES = re.compile(r"^(text/|application/(.+\+)?(json|xml|javascript|x-www-form-urlencoded))", re.IGNORECASE)
_CONTEXT_VARIABLE = re.compile(r"\$context\.([\w.:-]+)")
_ACCESS_CONTEXT = (
    "local.stack.gateway.access_context"  # environ: the request's $context variables, as they become known
)
ACCESS_LOG_LINE = "local.stack.gateway.access_log_line"  # environ: the request's access log line, for _AccessLog


def _message(status: HTTPStatus, message: str, headers: dict[str, str] | None = None) -> Response:
    """API Gateway's own answers: {"message": ...}."""
    response = Response(json.dumps({"message": message}), status=status.value, content_type="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    response.headers["apigw-requestid"] = uuid.uuid4().hex[:16]
    return response


@dataclass(frozen=True)
class CompiledRoute:
    route: Route
    pattern: re.Pattern[str]
    priority: tuple[int, ...]

    @classmethod
    def of(cls, route: Route) -> "CompiledRoute":
        parts, priority = [], []
        for segment in route.path.strip("/").split("/"):
            greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
            variable = re.fullmatch(r"\{(\w+)\}", segment)
            if greedy:
                parts.append(f"(?P<{greedy.group(1)}>.+)")
                priority.append(2)
            elif variable:
                parts.append(f"(?P<{variable.group(1)}>[^/]+)")
                priority.append(1)
            else:
                parts.append(re.escape(segment))
                priority.append(0)
        return cls(route, re.compile("^/" + "/".join(parts) + "/?$"), tuple(priority))

    @property
    def route_key(self) -> str:
        return f"{self.route.method} {self.route.path}"


class Router:
    """HTTP API's matching: the most specific path wins (static segments before variables before greedy ones)."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = sorted((CompiledRoute.of(r) for r in routes), key=lambda r: (r.priority, r.route.path))

    def match(self, method: str, path: str) -> tuple[CompiledRoute, dict[str, str]] | None:
        for compiled in self.routes:
            if compiled.route.method not in (method, "ANY"):
                continue
            found = compiled.pattern.match(path)
            if found:
                return compiled, found.groupdict()
        return None


AdminHandler = Callable[[Request, dict[str, str]], Response]


@dataclass(frozen=True)
class Cors:
    """An HTTP API's CORS configuration, applied as API Gateway applies it."""

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    @classmethod
    def of(cls, configuration: Mapping[str, Any]) -> "Cors":
        return cls(
            allow_origins=tuple(configuration.get("allowOrigins", ())),
            allow_methods=tuple(configuration.get("allowMethods", ())),
            allow_headers=tuple(configuration.get("allowHeaders", ())),
            expose_headers=tuple(configuration.get("exposeHeaders", ())),
            max_age=configuration.get("maxAge"),
            allow_credentials=bool(configuration.get("allowCredentials", False)),
        )

    def allowed_origin(self, origin: str | None) -> str | None:
        """What Access-Control-Allow-Origin says to this origin; None: it gets no CORS headers at all."""
        if origin is None:
            return None
        if origin in self.allow_origins:
            return origin
        return "*" if "*" in self.allow_origins else None

    def preflight(self, origin: str | None) -> Response:
        """API Gateway's own answer to a preflight: no route, authorizer or function is involved."""
        response = Response(status=HTTPStatus.NO_CONTENT.value)
        allowed = self.allowed_origin(origin)
        if allowed is not None:
            response.headers["access-control-allow-origin"] = allowed
            if self.allow_methods:
                response.headers["access-control-allow-methods"] = ",".join(self.allow_methods)
            if self.allow_headers:
                response.headers["access-control-allow-headers"] = ",".join(self.allow_headers)
            if self.max_age is not None:
                response.headers["access-control-max-age"] = str(self.max_age)
            if self.allow_credentials:
                response.headers["access-control-allow-credentials"] = "true"
        return response

    def apply(self, response: Response, origin: str | None) -> Response:
        """An integration response: the backend's own CORS headers give way to the configuration's (API Gateway
        ignores them), which an allowed origin gets."""
        for name in {name for name, _ in response.headers.items() if name.lower().startswith("access-control-")}:
            del response.headers[name]
        allowed = self.allowed_origin(origin)
        if allowed is not None:
            response.headers["access-control-allow-origin"] = allowed
            if self.expose_headers:
                response.headers["access-control-expose-headers"] = ",".join(self.expose_headers)
            if self.allow_credentials:
                response.headers["access-control-allow-credentials"] = "true"
        return response


def access_log_line(log_format: str, context: Mapping[str, str]) -> str:
    """The format's $context variables filled in, "-" for those unknown (as API Gateway does); each value escaped
    for the JSON string it sits in."""
    return _CONTEXT_VARIABLE.sub(lambda m: json.dumps(str(context.get(m.group(1), "-")))[1:-1], log_format)


def _context(request: Request) -> MutableMapping[str, str]:
    context: MutableMapping[str, str] = request.environ.setdefault(_ACCESS_CONTEXT, {})
    return context


class Gateway:
    """A WSGI application: request -> payload 2.0 event -> function (in-process) -> HTTP response."""

    def __init__(
        self,
        routes: Sequence[Route],
        authorizer: JwtAuthorizer,
        invoke: Callable[[str, dict[str, Any]], Any],
        access_log_format: str,
        cors: Cors | None = None,
    ) -> None:
        self.router = Router(routes)
        self.authorizer = authorizer
        self.invoke = invoke
        self.access_log_format = access_log_format
        self.cors = cors
        self.admin: list[tuple[str, re.Pattern[str], AdminHandler]] = []

    def add_admin_route(self, method: str, pattern: str, handler: AdminHandler) -> None:
        self.admin.append((method, re.compile("^" + pattern + "$"), handler))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        started = time.monotonic()
        context = _context(request)
        context.update(
            {
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
                "identity.sourceIp": request.remote_addr or HOST,
            }
        )
        try:
            response = self.handle(request)
        except Exception:
            log.exception("the front door failed on %s %s", request.method, request.path)
            response = _message(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error")
        response.headers.setdefault("apigw-requestid", uuid.uuid4().hex[:16])
        context.update(
            {
                "requestId": response.headers["apigw-requestid"],
                "status": str(response.status_code),
                "responseLatency": str(round((time.monotonic() - started) * 1000)),
            }
        )
        environ[ACCESS_LOG_LINE] = access_log_line(self.access_log_format, context)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        context = _context(request)

        def refused(status: HTTPStatus, message: str, headers: dict[str, str] | None = None) -> Response:
            context["error.message"] = message
            return _message(status, message, headers)

        if request.path.startswith("/_local/"):
            for method, pattern, handler in self.admin:
                found = pattern.match(request.path)
                if found and request.method == method:
                    return handler(request, found.groupdict())
            return refused(HTTPStatus.NOT_FOUND, "Not Found")
        origin = request.headers.get("origin")
        preflight = request.method == "OPTIONS" and bool(origin) and "access-control-request-method" in request.headers
        if self.cors is not None and preflight:
            return self.cors.preflight(origin)
        matched = self.router.match(request.method, request.path)
        if matched is None:
            return refused(HTTPStatus.NOT_FOUND, "Not Found")
        compiled, path_parameters = matched
        context["routeKey"] = compiled.route_key
        if (request.content_length or 0) > MAX_PAYLOAD_BYTES:
            return refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request Entity Too Large")
        headers = _lower_cased_headers(request)
        claims = None
        if compiled.route.authorized:
            try:
                claims = self.authorizer.verify(headers)
            except InvalidToken as error:
                log.info("401 on %s: %s", compiled.route_key, error)
                context["authorizer.error"] = str(error)
                return refused(HTTPStatus.UNAUTHORIZED, "Unauthorized", {"www-authenticate": _challenge(error)})
            context.update(
                {
                    f"authorizer.claims.{name}": value
                    for name, value in claims_as_api_gateway_passes_them(claims).items()
                }
            )
        event = build_event(request, compiled.route_key, path_parameters, headers, claims)
        invoked = time.monotonic()
        try:
            result = self.invoke(compiled.route.function, event)
        except Exception as error:
            log.exception("%s failed on %s", compiled.route.function, compiled.route_key)
            context["integrationErrorMessage"] = f"the function failed ({type(error).__name__})"
            return refused(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error")
        finally:
            context["integrationLatency"] = str(round((time.monotonic() - invoked) * 1000))
        try:
            response = to_response(result)
        except (TypeError, ValueError):
            log.exception("%s answered something API Gateway cannot map", compiled.route.function)
            context["integrationErrorMessage"] = "the function's response cannot be mapped"
            return refused(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error")
        return response if self.cors is None else self.cors.apply(response, origin)


def _challenge(error: InvalidToken) -> str:
    if str(error) == "no token":
        return "Bearer"
    description = str(error).replace('"', "'")
    return f'Bearer scope="" error="invalid_token" error_description="{description}"'


def _lower_cased_headers(request: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers


def build_event(
    request: Request,
    route_key: str,
    path_parameters: dict[str, str],
    headers: dict[str, str],
    claims: dict[str, Any] | None,
) -> dict[str, Any]:
    """The event an HTTP API (payload format 2.0, stage $default) gives a Lambda integration for this request."""
    return http_api_event(
        request.method,
        request.path,
        route_key,
        path_parameters,
        query=request.query_string.decode("latin-1"),
        headers=headers,
        body=_event_body(request.get_data(cache=False), headers.get("content-type", "")),
        jwt_claims=None if claims is None else claims_as_api_gateway_passes_them(claims),
        jwt_scopes=None if claims is None else scopes_of(claims),
        source_ip=request.remote_addr or HOST,
        forwarded_proto=request.scheme,
        forwarded_port=request.server[1] if request.server else None,
        protocol=request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
    )


def _event_body(body: bytes, content_type: str) -> str | bytes | None:
    """Text as it is; anything else (or text that is not UTF-8) as bytes, which the event carries base64-encoded."""
    if not body:
        return None
    if _TEXT_TYPES.match(content_type):
        try:
            return body.decode()
        except UnicodeDecodeError:
            return body
    return body


def to_response(result: Any) -> Response:
    """Payload 2.0's response mapping, including the format API Gateway infers when there is no statusCode."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # No statusCode: 200, application/json, the returned value as the body (a string as it is).
        body = result if isinstance(result, str) else json.dumps(result)
        return Response(body, status=200, content_type="application/json")
    status = int(result["statusCode"])
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise TypeError("body must be a string")
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    response = Response(payload, status=status)
    response.headers.pop("Content-Type", None)
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        response.headers.pop(name, None)
        for value in values:
            response.headers.add(name, str(value))
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    response.headers["apigw-requestid"] = uuid.uuid4().hex[:16]
    return response


class _AccessLog(WSGIRequestHandler):
    """One JSON line per request: the template's access log format as the gateway filled it in. Never the query
    string nor the body: the callback's query carries Xero's authorization code, which must never reach a log."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        line = getattr(self, "environ", {}).get(ACCESS_LOG_LINE)
        if line is None:  # not a request the gateway answered (werkzeug refused it, or another app serves)
            path = getattr(self, "path", "").split("?", 1)[0]
            status = str(getattr(code, "value", code))
            line = json.dumps(
                {"sourceIp": self.address_string(), "request": f"{self.command} {path}", "status": status}
            )
        log.info("%s", line)


class GatewayServer:
    """Werkzeug's threaded server on 127.0.0.1, bound at construction (so its port is known before start)."""

    def __init__(
        self,
        app: Callable[..., Any],
        port: int = 0,
        request_handler: type[WSGIRequestHandler] = _AccessLog,
        name: str = "local-gateway",
    ) -> None:
        self.server: BaseWSGIServer = make_server(HOST, port, app, threaded=True, request_handler=request_handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_port)
        self.name = name
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server.server_close()
