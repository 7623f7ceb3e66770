"""The whole AWS side on one machine: DynamoDB Local and a moto server (child processes), the resources of
template.yaml provisioned on them, the HTTP front door, the SQS poller, the scheduler and (when it is importable) the
Xero emulator, all on 127.0.0.1. Usable in-process (tests) and behind `python -m local up`. Every event the
functions put on the template's bus is also sent to a queue of the stack's own (`event_observer_url`,
local.stack.provision.observe_events), as a downstream consumer's rule would.

The functions run in this process with the environment template.yaml gives them; every endpoint reaches them
through that environment (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, the XERO_* URLs), never through code.
"""

import contextlib
import dataclasses
import importlib
import inspect
import json
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import requests
from werkzeug.wrappers import Request, Response

from local.stack.aws_engines import HOST, DynamoDBLocal, ManagedProcess, MotoServer
from local.stack.console_server import ConsoleServer
from local.stack.function_environment import forget_cached_clients, paced_to_emulator
from local.stack.gateway import Cors, Gateway, GatewayServer
from local.stack.jwt_auth import JwtAuthorizer, SigningKey, TokenIssuer
from local.stack.lambda_runtime import Functions
from local.stack.openapi_document import TITLE, merged_openapi
from local.stack.provision import LOCAL_XERO_APP, observe_events, provision
from local.stack.scheduler import LocalSchedule, ScheduleExpression, Scheduler
from local.stack.sqs_poller import HANDOVER_SECONDS, LOCAL_CONCURRENCY_CAP, QueueWorker
from local.stack.state_file import SIGNING_KEY_NAME, STATE_DIR, STATE_FILE_NAME, write_state
from local.stack.swagger_ui import ASSET_PATTERN, DOCUMENT_PATH, PAGE_PATH, swagger_asset, swagger_page
from local.stack.template import LOCAL_REGION, Function, PhysicalResource, Template

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("local.stack.offline_stack")
_HANDLER_DEPENDENCIES = (
    "pydantic",
    "pynamodb.models",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.parser.models",
)
# The console's local sign-in (POST /_local/tokens): who may be named, and for how long the token lasts.
TOKENS_PATH = "/_local/tokens"
LOCAL_SIGN_IN_TTL_SECONDS = 8 * 3600
_LOCAL_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_LOOPBACK = frozenset({"127.0.0.1", "::1"})
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local"}


def schedule_name(logical_id: str, function: str) -> str:
    """SyncDispatchFunctionNightly (the Nightly event of SyncDispatchFunction) -> nightly."""
    return (logical_id.removeprefix(function) or logical_id).lower()


def _preimport_handler_dependencies() -> None:
    """The functions' heavy imports, done while the engines boot (a cold start's import phase, ahead of time)."""
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    for name in _HANDLER_DEPENDENCIES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


class OfflineStack:
    def __init__(
        self,
        *,
        api_port: int = 0,
        console_port: int = 0,
        dynamodb_port: int = 0,
        moto_port: int = 0,
        emulator_port: int = 0,
        db_path: Path | None = None,
        emulator: bool = True,
        xero_url: str | None = None,
        xero_app: Mapping[str, str] = LOCAL_XERO_APP,
        parameters: Mapping[str, str] | None = None,
        visibility_timeout: int | None = None,
        worker_concurrency: int = LOCAL_CONCURRENCY_CAP,
        poll_wait_seconds: int = 1,
        run_schedules: bool = True,
        state_dir: Path = STATE_DIR,
        write_state: bool = False,
        max_environments: int = 4,
        queue_workers: bool = True,
        xero_time_scale: float = 1.0,
        function_timeouts: Mapping[str, int] | None = None,
    ) -> None:
        self.api_port = api_port
        self.console_port = console_port
        self.emulator_port = emulator_port
        # Another Xero-compatible server (a recorded or staging one) instead of the emulator: its base URL serves
        # Xero's login, identity and accounting paths, and it knows this app (xero_app) and the console's callback.
        self.xero_url = xero_url.rstrip("/") if xero_url else None
        self.xero_app = dict(xero_app)
        self.want_emulator = emulator and xero_url is None
        self.extra_parameters = dict(parameters or {})
        self.visibility_timeout = visibility_timeout
        self.worker_concurrency = worker_concurrency
        self.poll_wait_seconds = poll_wait_seconds
        self.run_schedules = run_schedules
        self.state_dir = state_dir
        self.write_state = write_state
        self.max_environments = max_environments
        # Without them the queues only fill: whoever runs the stack consumes them (the benchmark's sync processes).
        self.queue_workers = queue_workers
        # The emulator's rate-limit clock this many times faster (60: Xero's minute lasts a second, its day 24
        # minutes), and the functions told so, as they pace themselves to Xero's minute.
        self.xero_time_scale = xero_time_scale
        # A function's timeout cut short of the template's (seconds, by logical id): a test sees work that spans
        # invocations (a large purge's slices) without the data it would take to outlast the template's timeout.
        self.function_timeouts = dict(function_timeouts or {})
        self.region = LOCAL_REGION

        log_dir = state_dir / "logs"
        self.dynamodb = DynamoDBLocal(port=dynamodb_port, db_path=db_path, log_path=log_dir / "dynamodb.log")
        self.moto = MotoServer(port=moto_port, log_path=log_dir / "moto.log")
        self.emulator: Any = None
        self.emulator_error: str | None = None
        self.template: Template | None = None
        self.physical: dict[str, PhysicalResource] = {}
        self.event_observer_url: str | None = None  # every event of the stack's bus lands here (observe_events)
        self.environment: dict[str, str] = {}
        self.functions: Functions | None = None
        self.function_definitions: dict[str, Function] = {}
        self._openapi: dict[str, Any] | None = None
        self.server: GatewayServer | None = None
        self.console: ConsoleServer | None = None
        self.gateway: Gateway | None = None
        self.workers: list[QueueWorker] = []
        self.scheduler: Scheduler | None = None
        self.issuer: TokenIssuer | None = None
        self.startup_seconds: float | None = None
        self._saved_environ: dict[str, str | None] = {}
        self._started = False

    # --- life cycle -------------------------------------------------------------------------------------------------
    def start(self) -> "OfflineStack":
        if self._started:  # as ManagedProcess.start: a second start would orphan the first's processes
            raise RuntimeError("this stack is already running")
        began = time.monotonic()
        try:
            self._start(began)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _start(self, began: float) -> None:
        self._started = True
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._apply_environment(
            {"AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region, **LOCAL_CREDENTIALS, "AWS_PROFILE": None}
        )
        # The engines boot (the JVM is the slow part) while this process binds the front door and reads the template.
        errors: list[BaseException] = []
        starters = [
            threading.Thread(target=self._start_process, args=(self.dynamodb, errors)),
            threading.Thread(target=self._start_moto, args=(errors,)),
        ]
        for thread in starters:
            thread.start()
        try:
            key = SigningKey.load_or_create(self.state_dir / SIGNING_KEY_NAME)
            self.server = GatewayServer(self._dispatch, port=self.api_port)
            self.console = ConsoleServer(port=self.console_port)
            # The console signs in through the front door's /_local/tokens (local only; deployed, the practice's
            # identity provider issues the JWT: docs/console.md).
            self.console.config = {
                "apiUrl": self.server.url,
                "signIn": {"mode": "local", "tokensUrl": f"{self.server.url}{TOKENS_PATH}"},
            }
            self._start_emulator()
            self.template = Template(parameters=self._template_parameters())
            _preimport_handler_dependencies()
        finally:
            for thread in starters:
                thread.join()
        if errors:
            raise errors[0]
        self._apply_environment(
            {"AWS_ENDPOINT_URL": self.moto.endpoint, "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb.endpoint}
        )
        overrides = (
            {"SyncQueue": {"VisibilityTimeout": str(self.visibility_timeout)}} if self.visibility_timeout else {}
        )
        self.physical = provision(self.template, boto3.Session(), queue_overrides=overrides, xero_app=self.xero_app)
        self.event_observer_url = observe_events(self.template, boto3.Session(), self.physical)
        functions = self.template.functions(self.physical)
        for name, timeout in self.function_timeouts.items():
            functions[name] = dataclasses.replace(functions[name], timeout=timeout)
        self.function_definitions = functions
        self.environment = self._function_environment(functions)
        if self.emulator is not None and self.xero_time_scale != 1.0:
            self.environment.update(paced_to_emulator(self.xero_time_scale))
        self._apply_environment(
            {"POWERTOOLS_TRACE_DISABLED": "true", **self.environment},
            defaults={"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_DEV": "false"},
        )
        forget_cached_clients()
        if self.emulator is not None:
            self._register_emulator_app()

        self.functions = Functions(
            functions, {name: self.template.physical_name(name) for name in functions}, self.max_environments
        )
        self.functions.warm()
        authorizer_config = self.template.jwt_authorizer()
        audiences = authorizer_config["audience"]
        audiences = [audiences] if isinstance(audiences, str) else list(audiences)
        self.issuer = TokenIssuer(
            key, authorizer_config["issuer"], audiences[0], self.environment.get("PRACTICE_CLAIM", "practice_id")
        )
        self.gateway = Gateway(
            self.template.routes(),
            JwtAuthorizer(key, authorizer_config["issuer"], audiences, authorizer_config["identity_source"]),
            self.functions.invoke,
            self.template.access_log_format(),
            cors=Cors.of(cors) if (cors := self.template.cors_configuration()) is not None else None,
        )
        self._add_admin_routes(self.gateway)
        if self.queue_workers:
            self._start_workers()
        self._start_scheduler()
        self.server.start()
        self.console.start()
        if self.write_state:
            self._write_state(began)

    def _start_moto(self, errors: list[BaseException]) -> None:
        """moto loads a service's backend on its first request: done here, while DynamoDB Local still boots."""
        self._start_process(self.moto, errors)
        if errors:
            return
        session = boto3.Session(region_name=self.region, **{k.lower(): v for k, v in LOCAL_CREDENTIALS.items()})
        with contextlib.suppress(Exception):
            session.client("sqs", endpoint_url=self.moto.endpoint).list_queues()
            session.client("kms", endpoint_url=self.moto.endpoint).list_keys()
            session.client("secretsmanager", endpoint_url=self.moto.endpoint).list_secrets()
            session.client("events", endpoint_url=self.moto.endpoint).list_event_buses()

    def _start_process(self, process: ManagedProcess, errors: list[BaseException]) -> None:
        try:
            process.start()
        except BaseException as error:
            errors.append(error)

    def stop(self) -> None:
        """Stops everything this stack started (child processes by their PID) and restores the environment."""
        if not self._started:
            return
        self._started = False
        began = time.monotonic()
        if self.server is not None:
            self.server.stop()
        if self.console is not None:
            self.console.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        for worker in self.workers:
            worker._stop.set()
        if self.functions is not None:
            self.functions.expire_invocations()  # a sync or purge under way saves at its next page and hands over
        handover = time.monotonic() + HANDOVER_SECONDS
        for worker in self.workers:
            worker.stop(timeout=handover - time.monotonic())
        if self.emulator is not None:
            with contextlib.suppress(Exception):
                self.emulator.stop()
        self.moto.stop()
        self.dynamodb.stop()
        if self.write_state:
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()
        self._restore_environment()
        forget_cached_clients()
        log.info("local stack stopped in %.1f s", time.monotonic() - began)

    def __enter__(self) -> "OfflineStack":
        return self if self._started else self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- environment --------------------------------------------------------------------------------------------------
    def _apply_environment(self, values: Mapping[str, str | None], defaults: Mapping[str, str] | None = None) -> None:
        merged: dict[str, str | None] = {k: v for k, v in (defaults or {}).items() if k not in os.environ}
        merged.update(values)
        for name, value in merged.items():
            if name not in self._saved_environ:
                self._saved_environ[name] = os.environ.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _restore_environment(self) -> None:
        for name, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environ.clear()

    @staticmethod
    def _function_environment(functions: Mapping[str, Any]) -> dict[str, str]:
        """One process hosts every function, so they share one environment: the template's (Globals) for all."""
        merged: dict[str, str] = {}
        for function in functions.values():
            for name, value in function.environment.items():
                if merged.get(name, value) != value:
                    log.warning("%s differs between functions; the local stack uses %r", name, merged[name])
                    continue
                merged[name] = value
        return merged

    def _template_parameters(self) -> dict[str, str]:
        # The console is the one origin CORS lets call the API, and Xero's redirect target.
        parameters = {"XeroRedirectUri": self.xero_redirect_uri, "FrontendOrigin": self.console_url}
        base = self.xero_url or (str(self.emulator.base_url).rstrip("/") if self.emulator is not None else None)
        if base is not None:
            parameters.update({"XeroLoginUrl": base, "XeroIdentityUrl": base, "XeroApiUrl": base})
        return {**parameters, **self.extra_parameters}

    # --- Xero emulator (optional) -------------------------------------------------------------------------------------
    def _start_emulator(self) -> None:
        if not self.want_emulator:
            return
        try:
            from local import xero_emulator
        except ImportError as error:
            self.emulator_error = f"not available ({error})"
            log.warning("Xero emulator %s", self.emulator_error)
            return
        redirect_uri = self.xero_redirect_uri
        emulator_class = xero_emulator.XeroEmulator
        parameters = inspect.signature(emulator_class).parameters
        config_class = getattr(xero_emulator, "EmulatorConfig", None)
        if "config" in parameters and config_class is not None:
            config = config_class(host=HOST, port=self.emulator_port)
            emulator = emulator_class(config=config)
        else:
            emulator = emulator_class(port=self.emulator_port)
        emulator.start()
        self.emulator = emulator
        self._emulator_redirect_uri = redirect_uri

    def _register_emulator_app(self) -> None:
        base = str(self.emulator.base_url).rstrip("/")
        response = requests.post(
            f"{base}/_emulator/apps",
            json={
                "clientId": self.xero_app["client_id"],
                "clientSecret": self.xero_app["client_secret"],
                "redirectUris": [self._emulator_redirect_uri],
            },
            timeout=5,
        )
        response.raise_for_status()
        if self.xero_time_scale != 1.0:
            rate_limits = {"rateLimits": {"timeScale": self.xero_time_scale}}
            requests.post(f"{base}/_emulator/config", json=rate_limits, timeout=5).raise_for_status()

    # --- queue pollers and schedules ----------------------------------------------------------------------------------
    @property
    def sqs(self) -> "SQSClient":
        return boto3.client("sqs", endpoint_url=self.moto.endpoint, region_name=self.region)

    def queue_url(self, logical_id: str) -> str:
        return self.physical[logical_id].attributes["QueueUrl"]

    def _start_workers(self) -> None:
        assert self.template is not None and self.functions is not None
        for source in self.template.queue_event_sources():
            worker = QueueWorker(
                source,
                self.sqs,
                self.queue_url(source.queue),
                self.physical[source.queue].attributes["Arn"],
                self.region,
                self.functions.invoke,
                concurrency=self.worker_concurrency,
                wait_seconds=self.poll_wait_seconds,
            )
            worker.start()
            self.workers.append(worker)

    def worker_for(self, queue_logical_id: str) -> QueueWorker:
        return next(w for w in self.workers if w.source.queue == queue_logical_id)

    def _start_scheduler(self) -> None:
        assert self.template is not None and self.functions is not None
        schedules = []
        logical_ids = list(self.template.of_type("AWS::Scheduler::Schedule"))
        for logical_id, schedule in zip(logical_ids, self.template.schedules(), strict=True):
            schedules.append(
                LocalSchedule(
                    name=schedule_name(logical_id, schedule.function),
                    function=schedule.function,
                    expression=ScheduleExpression(schedule.expression, schedule.timezone),
                    input=schedule.input,
                )
            )
        self.scheduler = Scheduler(schedules, self.functions.invoke)
        if self.run_schedules:
            self.scheduler.start()

    def fire_schedule(self, name: str = "nightly") -> Any:
        assert self.scheduler is not None
        return self.scheduler.fire(name)

    # --- admin routes on the front door -------------------------------------------------------------------------------
    def _dispatch(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.gateway is None:
            return Response("starting", status=503)(environ, start_response)
        return self.gateway(environ, start_response)

    def _add_admin_routes(self, gateway: Gateway) -> None:
        def fire(_: Request, match: dict[str, str]) -> Response:
            assert self.scheduler is not None
            if match["name"] not in self.scheduler.schedules:
                return Response(json.dumps({"message": "Not Found"}), status=404, content_type="application/json")
            result = self.fire_schedule(match["name"])
            return Response(json.dumps({"schedule": match["name"], "result": result}), content_type="application/json")

        def describe(_: Request, __: dict[str, str]) -> Response:
            return Response(json.dumps(self.describe(), default=str), content_type="application/json")

        def jwks(_: Request, __: dict[str, str]) -> Response:
            assert self.issuer is not None
            return Response(json.dumps(self.issuer.key.jwks()), content_type="application/json")

        def openapi(_: Request, __: dict[str, str]) -> Response:
            return Response(json.dumps(self.openapi()), content_type="application/json")

        gateway.add_admin_route("POST", re.escape(TOKENS_PATH), self._mint_for_console)
        gateway.add_admin_route("OPTIONS", re.escape(TOKENS_PATH), self._mint_preflight)
        gateway.add_admin_route("POST", r"/_local/schedules/(?P<name>[\w-]+)", fire)
        gateway.add_admin_route("GET", r"/_local/stack", describe)
        gateway.add_admin_route("GET", r"/_local/jwks\.json", jwks)
        gateway.add_admin_route("GET", re.escape(DOCUMENT_PATH), openapi)
        gateway.add_admin_route("GET", re.escape(PAGE_PATH), lambda _, __: swagger_page(TITLE))
        gateway.add_admin_route("GET", ASSET_PATTERN, lambda _, match: swagger_asset(match["name"]))

    def _console_cors(self, response: Response) -> Response:
        """The console is another origin than the front door: only it may read a minted token (no wildcard)."""
        response.headers["access-control-allow-origin"] = self.console_url
        response.headers["access-control-allow-methods"] = "POST"
        response.headers["access-control-allow-headers"] = "content-type"
        response.headers["vary"] = "origin"
        return response

    def _mint_preflight(self, _: Request, __: dict[str, str]) -> Response:
        return self._console_cors(Response(status=204))

    def _mint_for_console(self, request: Request, _: dict[str, str]) -> Response:
        """The console's local sign-in: a JWT for the practice and user picked, signed with the stack's key. Loopback
        callers only (the front door binds 127.0.0.1; this says so again should that ever change)."""

        def refused(status: int, code: str, message: str) -> Response:
            body = json.dumps({"error": {"code": code, "message": message}})
            return self._console_cors(Response(body, status=status, content_type="application/json"))

        if request.remote_addr not in _LOOPBACK:
            return refused(403, "forbidden", "Local sign-in is for this machine only.")
        try:
            body = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            return refused(400, "malformed_json", "The body is not JSON.")
        practice = body.get("practice") if isinstance(body, dict) else None
        user = body.get("user") if isinstance(body, dict) else None
        if not all(isinstance(v, str) and _LOCAL_NAME.fullmatch(v) for v in (practice, user)):
            return refused(422, "validation_error", "Give a practice and a user: letters, digits, '.', '_' or '-'.")
        assert self.issuer is not None
        token = self.issuer.mint(practice, user, LOCAL_SIGN_IN_TTL_SECONDS)
        response = Response(json.dumps({"token": token}), status=201, content_type="application/json")
        response.headers["cache-control"] = "no-store"
        return self._console_cors(response)

    def openapi(self) -> dict[str, Any]:
        """The whole API's OpenAPI document (built once, from the functions' own resolvers)."""
        assert self.template is not None
        if self._openapi is None:
            self._openapi = merged_openapi(self.template, self.function_definitions)
        return self._openapi

    # --- what the stack exposes ---------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def console_url(self) -> str:
        assert self.console is not None
        return self.console.url

    @property
    def xero_redirect_uri(self) -> str:
        """The console's callback page: where Xero sends the browser back (the local Xero app's redirect URI)."""
        return f"{self.console_url}/xero/callback"

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE_NAME

    def token(
        self, practice_id: str | None, user_id: str = "local-user", ttl_seconds: int = 3600, **claims: Any
    ) -> str:
        assert self.issuer is not None
        return self.issuer.mint(practice_id, user_id, ttl_seconds, **claims)

    def describe(self) -> dict[str, Any]:
        assert self.template is not None and self.issuer is not None and self.scheduler is not None
        return {
            "pid": os.getpid(),
            "api": self.api_url,
            "console": self.console_url,
            "openapi": self.api_url + DOCUMENT_PATH,
            "swagger": self.api_url + PAGE_PATH,
            "dynamodb": {"endpoint": self.dynamodb.endpoint, "pid": self.dynamodb.pid, "port": self.dynamodb.port},
            "moto": {"endpoint": self.moto.endpoint, "pid": self.moto.pid, "port": self.moto.port},
            "xero_emulator": (
                {"url": str(self.emulator.base_url)} if self.emulator is not None else {"error": self.emulator_error}
            ),
            "xero_url": self.xero_url,  # another Xero-compatible server, when the stack runs against one
            "queues": {
                name: resource.ref for name, resource in self.physical.items() if resource.attributes.get("QueueUrl")
            },
            "event_observer": self.event_observer_url,
            "schedules": {
                name: {"function": s.function, "expression": s.expression.text, "timezone": s.expression.timezone}
                for name, s in self.scheduler.schedules.items()
            },
            "next_schedule_times": self.scheduler.next_fire_times() if self.run_schedules else {},
            "jwt": {
                "key_path": str(self.state_dir / SIGNING_KEY_NAME),
                "issuer": self.issuer.issuer,
                "audience": self.issuer.audience,
                "practice_claim": self.issuer.practice_claim,
            },
            # What another process needs to host these functions on this stack (local/chaos/worker_process.py, the CLI):
            # the template's parameters, what its resources are called here, and the environment the stack applied.
            "template_parameters": dict(self.template.parameters),
            "physical": {name: {"ref": r.ref, "attributes": r.attributes} for name, r in self.physical.items()},
            "environment": {name: os.environ[name] for name in self._saved_environ if name in os.environ},
        }

    def _write_state(self, began: float) -> None:
        write_state(
            self.state_dir, {**self.describe(), "started_at": time.time(), "startup_seconds": time.monotonic() - began}
        )
