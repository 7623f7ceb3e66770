"""The developer CLI's view of a running local stack: its endpoints from `.local-stack/stack.json`, the HTTP API
called with a dev token (as the front end calls it), the Xero emulator's admin API, and read-only looks at the
tables beside the stack (checkpoints, stored records).

Everything the CLI changes goes through the API or the emulator (the real code path); nothing here writes a table.
Errors a person can act on are `CliError`s with a clear message and an exit code.
"""

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

import requests

from local.stack.state_file import SIGNING_KEY_NAME, STATE_FILE_NAME, read_state
from local.stack.template import LOCAL_REGION, LOCAL_STACK_NAME

DEFAULT_PRACTICE = "demo-practice"
EXIT_BAD_INPUT = 2
EXIT_NOT_RUNNING = 3
EXIT_FAILED = 1
_FINISHED = {"succeeded", "failed"}
# models.XeroRecord's names in DynamoDB (the tools here run without the functions' settings, so not from the model)
RECORD_PARTITION, RECORD_ID, RECORD_BODY = "pk", "id", "b"


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def table_name(short: str) -> str:
    """Clients -> xero-sync-local-ClientsTable (the local stack names resources `{stack}-{logical id}`)."""
    return f"{LOCAL_STACK_NAME}-{short}Table"


@dataclass
class StackHandle:
    state_dir: Path
    state: dict[str, Any]
    session: requests.Session = field(default_factory=requests.Session)
    _tokens: dict[tuple[str, str, int], str] = field(default_factory=dict)

    # --- finding the stack ------------------------------------------------------------------------------------------
    @classmethod
    def attach(cls, state_dir: Path) -> "StackHandle":
        state = read_state(state_dir)
        if state is None:
            raise CliError(
                f"no local stack is running (no {state_dir / STATE_FILE_NAME}): start one with `make up` "
                "(or `make demo KEEP=1`)",
                EXIT_NOT_RUNNING,
            )
        handle = cls(state_dir, state)
        try:
            handle.session.get(f"{handle.api}/_local/stack", timeout=5).raise_for_status()
        except requests.RequestException:
            raise CliError(
                f"the local stack in {state_dir / STATE_FILE_NAME} does not answer at {handle.api} "
                "(stopped without `make down`?): run `make down`, then `make up`",
                EXIT_NOT_RUNNING,
            ) from None
        return handle

    @property
    def api(self) -> str:
        return str(self.state["api"]).rstrip("/")

    @property
    def emulator(self) -> str:
        url = (self.state.get("xero_emulator") or {}).get("url")
        if not url:
            raise CliError("this local stack runs without the Xero emulator (started with --no-emulator)")
        return str(url).rstrip("/")

    @property
    def dynamodb_endpoint(self) -> str:
        return str(self.state["dynamodb"]["endpoint"])

    # --- the API, as the front end calls it -------------------------------------------------------------------------
    def token(self, practice: str, user: str = "local-user", ttl: int = 3600) -> str:
        from local.stack.jwt_auth import SigningKey, TokenIssuer

        if (practice, user, ttl) not in self._tokens:
            jwt_state = self.state["jwt"]
            key = SigningKey.load_or_create(Path(jwt_state.get("key_path") or self.state_dir / SIGNING_KEY_NAME))
            issuer = TokenIssuer(key, jwt_state["issuer"], jwt_state["audience"], jwt_state["practice_claim"])
            self._tokens[(practice, user, ttl)] = issuer.mint(practice, user, ttl)
        return self._tokens[(practice, user, ttl)]

    def call(self, method: str, path: str, practice: str, **kwargs: Any) -> Any:
        """Calls the API; a 4xx/5xx becomes a CliError carrying the API's own error code and message."""
        headers = {"Authorization": f"Bearer {self.token(practice)}", "Accept": "application/json"}
        response = self.session.request(method, f"{self.api}{path}", headers=headers, timeout=60, **kwargs)
        body = _json(response)
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            code = error.get("code") or str(response.status_code)
            message = error.get("message") or response.text[:200]
            if code == "client_not_found":
                raise CliError(f"unknown client for practice {practice!r}: {path.split('/')[2]} ({message})")
            raise CliError(f"{method} {path} answered {response.status_code} {code}: {message}", EXIT_FAILED)
        return body

    def clients(self, practice: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = self.call("GET", "/clients", practice, params={"cursor": cursor} if cursor else {})
            items += page["items"]
            cursor = page.get("nextCursor")
            if not cursor:
                return items

    def resolve_client(self, practice: str, reference: str) -> dict[str, Any]:
        """A client by its id, a unique id prefix, or its organisation's name (case-insensitive)."""
        clients = self.clients(practice)
        exact = [c for c in clients if c["clientId"] == reference]
        wanted = reference.casefold()
        matches = exact or [
            c for c in clients if c["clientId"].startswith(reference) or c["name"].casefold().startswith(wanted)
        ]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            known = ", ".join(f"{c['clientId'][:8]} ({c['name']})" for c in clients) or "none"
            raise CliError(f"unknown client {reference!r} for practice {practice!r}; its clients: {known}")
        raise CliError(f"{reference!r} matches {len(matches)} clients of {practice!r}: give more of the id")

    def client(self, practice: str, client_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/clients/{client_id}", practice)
        return result

    def runs(self, practice: str, client_id: str, limit: int = 20) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call(
            "GET", f"/clients/{client_id}/syncs", practice, params={"limit": limit}
        )["items"]
        return result

    def run(self, practice: str, client_id: str, run_id: str) -> dict[str, Any] | None:
        return next((r for r in self.runs(practice, client_id) if r["runId"] == run_id), None)

    # --- link / sync / unlink through the API -----------------------------------------------------------------------
    def start_link(self, practice: str, client_id: str | None = None) -> str:
        path = f"/clients/{client_id}/link" if client_id else "/clients/link"
        url: str = self.call("POST", path, practice)["authorizeUrl"]
        return url

    def complete_link(self, practice: str, location: str) -> dict[str, Any]:
        """What the front end's callback page does with Xero's redirect: hands its state and code (or error) to the
        API with the signed-in user's JWT. A refusal becomes a CliError with the API's code."""
        query = callback_params(location)
        completion = {name: query[name] for name in ("state", "code", "error") if name in query}
        outcome: dict[str, Any] = self.call("POST", "/xero/link-completions", practice, json=completion)
        return outcome

    def link(self, practice: str, tenant_ids: list[str], client_id: str | None = None) -> dict[str, Any]:
        """The link flow with the emulator's consent answered ahead (the user ticks these organisations and presses
        Allow): our API's authorize URL, Xero's redirect to the front end's callback page, the completion."""
        authorize_url = self.start_link(practice, client_id)
        self.emulator_admin("POST", "/consent", json={"tenantIds": tenant_ids, "deny": False})
        redirect = self.session.get(authorize_url, allow_redirects=False, timeout=30)
        if redirect.status_code != 302:
            raise CliError(f"Xero's authorize page answered {redirect.status_code}: {redirect.text[:200]}", EXIT_FAILED)
        return self.complete_link(practice, redirect.headers["Location"])

    def sync_now(self, practice: str, client_id: str, mode: str = "incremental") -> dict[str, Any]:
        accepted: dict[str, Any] = self.call("POST", f"/clients/{client_id}/sync", practice, json={"mode": mode})
        return accepted

    def unlink(self, practice: str, client_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", f"/clients/{client_id}/unlink", practice)
        return result

    def first_run_after(
        self, practice: str, client_id: str, after: set[str], trigger: str | None = None, timeout: float = 30
    ) -> dict[str, Any]:
        """The run a link or an operator's dispatch queued (neither answers with its id): the newest run not in
        `after`, of that trigger when given (a nightly run queued meanwhile must not be taken for it)."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(practice, client_id, limit=5)
            fresh = [r for r in runs if r["runId"] not in after and trigger in (None, r["trigger"])]
            if fresh:
                return fresh[0]
            if time.monotonic() > deadline:
                raise CliError("no sync was queued for the client", EXIT_FAILED)
            time.sleep(0.2)

    def wait_for_run(
        self,
        practice: str,
        client_id: str,
        run_id: str,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
        interval: float = 0.5,
        timeout: float = 3600,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(practice, client_id, run_id)
            if run is None:
                raise CliError(f"run {run_id} is not in the client's history", EXIT_FAILED)
            if on_poll is not None:
                on_poll(run)
            if run["status"] in _FINISHED:
                return run
            if time.monotonic() > deadline:
                raise CliError(f"run {run_id} still {run['status']} after {timeout:.0f} s", EXIT_FAILED)
            time.sleep(interval)

    # --- the Xero emulator ------------------------------------------------------------------------------------------
    def emulator_admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.emulator}/_emulator{path}", timeout=300, **kwargs)
        if response.status_code >= 400:
            raise CliError(f"Xero emulator: {method} {path} answered {response.status_code}: {response.text[:300]}")
        return _json(response) if response.content else None

    def create_org(self, name: str, size: str = "small", seed: int | str = 1) -> dict[str, Any]:
        """A demo organisation in the emulator; the same name, seed and size again gives the existing one."""
        body = {"name": name, "seed": seed, "size": size}
        response = self.session.post(f"{self.emulator}/_emulator/orgs", json=body, timeout=600)
        if response.status_code == 409:
            for org in self.emulator_admin("GET", "/orgs")["orgs"]:
                if org["name"] == name and org.get("size") == size and str(org.get("seed")) == str(seed):
                    return dict(org)
        if response.status_code >= 400:
            raise CliError(f"Xero emulator refused the organisation: {response.status_code} {response.text[:300]}")
        created: dict[str, Any] = response.json()
        return created

    def org(self, tenant_id: str) -> dict[str, Any]:
        org: dict[str, Any] = self.emulator_admin("GET", f"/orgs/{tenant_id}")
        return org

    def change_org(self, tenant_id: str, count: int, seed: int | str) -> dict[str, Any]:
        changed: dict[str, Any] = self.emulator_admin(
            "POST", f"/orgs/{tenant_id}/changes", json={"seed": seed, "count": count}
        )
        return changed

    def tenant_stats(self, tenant_id: str) -> dict[str, Any]:
        """The emulator's count of calls that reached this organisation (by endpoint), and its 429s."""
        with contextlib.suppress(CliError, requests.RequestException):
            stats = self.emulator_admin("GET", "/stats")["tenants"].get(tenant_id)
            return dict(stats or {})
        return {}

    # --- read-only looks at the tables beside the stack -------------------------------------------------------------
    @functools.cached_property
    def _dynamodb(self) -> Any:
        """One client for the handle's life: a command reads many pages, and a client takes milliseconds to build."""
        import boto3

        return boto3.client(
            "dynamodb",
            endpoint_url=self.dynamodb_endpoint,
            region_name=LOCAL_REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local's dummy credentials
        )

    def _query(self, table: str, key: str, value: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self._dynamodb.get_paginator("query")
        pages = paginator.paginate(
            TableName=table_name(table),
            KeyConditionExpression="#k = :v",
            ExpressionAttributeNames={"#k": key, **kwargs.pop("names", {})},
            ExpressionAttributeValues={":v": {"S": value}},
            **kwargs,
        )
        for page in pages:
            yield from page["Items"]

    def checkpoints(self, client_id: str) -> dict[str, dict[str, Any]]:
        """Per resource: run_id, pass_kind, next_page, journal_offset (plain values)."""
        out: dict[str, dict[str, Any]] = {}
        for item in self._query("Checkpoints", "client_id", client_id, ConsistentRead=True):
            out[item["resource"]["S"]] = {name: _plain(value) for name, value in item.items()}
        return out

    def record_items(self, client_id: str, resource: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """The client's stored items of one resource, as DynamoDB holds them (RECORD_* names their attributes)."""
        return self._query("Records", RECORD_PARTITION, f"{client_id}#{resource}", **kwargs)

    def stored(self, client_id: str, resources: list[str]) -> dict[str, tuple[int, int]]:
        """Per resource: (records stored, compressed bytes stored)."""
        out: dict[str, tuple[int, int]] = {}
        for resource in resources:
            count = size = 0
            for item in self.record_items(client_id, resource, ProjectionExpression="#b", names={"#b": RECORD_BODY}):
                count += 1
                size += len(item[RECORD_BODY]["B"])
            out[resource] = (count, size)
        return out


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _plain(value: dict[str, Any]) -> Any:
    (kind, inner), *_ = value.items()
    if kind == "N":
        return float(inner) if "." in inner else int(inner)
    if kind == "NULL":
        return None
    if kind in ("SS", "NS", "L", "M", "B", "BS"):
        return inner
    return inner


def callback_params(location: str) -> dict[str, str]:
    return dict(parse_qsl(urlparse(location).query))
