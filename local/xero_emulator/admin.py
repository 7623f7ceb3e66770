"""The admin API under /_emulator/: set up apps and organisations, script consent, faults and the clock, read stats."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from local.xero_emulator.changes import ChangeSimulator
from local.xero_emulator.config import RegisteredApp
from local.xero_emulator.dates import day_ms
from local.xero_emulator.generator import DEFAULT_AS_OF_MS, generate, resolve_counts, tenant_id_for
from local.xero_emulator.resources import RESOURCES_BY_LOWER
from local.xero_emulator.responses import json_response
from local.xero_emulator.state import DEFAULT_USER, EmulatorState, PendingConsent
from local.xero_emulator.store import Organisation


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _body(request: Request) -> dict[str, Any]:
    raw = request.get_data(as_text=True)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AdminError(400, f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise AdminError(400, "body must be a JSON object")
    return data


def _parse_as_of(value: Any) -> int:
    if value is None:
        return DEFAULT_AS_OF_MS
    try:
        parsed = datetime.strptime(str(value)[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise AdminError(400, "asOf must be a date YYYY-MM-DD") from exc
    return day_ms(parsed.year, parsed.month, parsed.day)


class AdminEndpoints:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def handle(self, request: Request, rest: str) -> Response:
        try:
            return self._route(request, [p for p in rest.split("/") if p])
        except AdminError as exc:
            return json_response({"error": str(exc)}, exc.status)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)

    def _route(self, request: Request, parts: list[str]) -> Response:
        method = request.method
        head = parts[0] if parts else ""
        if head == "health" and method == "GET":
            return json_response({"status": "ok"})
        if head == "apps" and len(parts) == 1:
            return self.register_app(request) if method == "POST" else self.list_apps()
        if head == "orgs":
            if len(parts) == 1:
                return self.create_org(request) if method == "POST" else self.list_orgs()
            org = self._org(parts[1])
            if len(parts) == 3 and parts[2] == "changes" and method == "POST":
                return self.apply_changes(request, org)
            if len(parts) == 3 and parts[2] == "users" and method == "POST":
                return self.add_user(request, org)
            if len(parts) == 4 and parts[2] == "records" and method == "GET":
                return self.records(org, parts[3], request)
            if len(parts) == 4 and parts[2] == "records" and method == "DELETE":
                return self.vanish(org, parts[3], request)
            if len(parts) == 2 and method == "GET":
                return json_response(self._org_json(org))
        if head == "consent" and method == "POST":
            return self.consent(request)
        if head == "clock":
            if method == "POST":
                return self.advance_clock(request)
            return json_response(self._clock_json())
        if head == "faults" and len(parts) == 1:
            if method == "POST":
                return self.add_fault(request)
            if method == "DELETE":
                self.state.faults.clear()
                return Response(status=204)
            return json_response({"faults": self.state.faults.list()})
        if head == "connections":
            if len(parts) == 1 and method == "GET":
                return self.list_connections()
            if len(parts) == 3 and parts[2] == "disconnect" and method == "POST":
                return self.disconnect(parts[1])
        if head == "stats":
            if method == "DELETE":
                with self.state.lock:
                    self.state.stats.clear()
                return Response(status=204)
            return self.stats(request.args.get("timeline") in ("1", "true"))
        if head == "reset" and method == "POST":
            self.state.reset()
            return Response(status=204)
        if head == "config":
            if method == "POST":
                return self.configure(request)
            return json_response(self._config_json())
        raise AdminError(404, f"no admin endpoint {method} /_emulator/{'/'.join(parts)}")

    # --- apps ----------------------------------------------------------------------------------------------------
    def register_app(self, request: Request) -> Response:
        body = _body(request)
        client_id = body.get("clientId")
        uris = body.get("redirectUris")
        if not isinstance(client_id, str) or not client_id:
            raise AdminError(400, "clientId is required")
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise AdminError(400, "redirectUris must be a list of URLs")
        secret = body.get("clientSecret")
        app = RegisteredApp(
            client_id,
            secret if isinstance(secret, str) and secret else None,
            list(uris),
            str(body.get("name") or "Xero Emulator App"),
        )
        self.state.register_app(app)
        return json_response(self._app_json(app), 201)

    @staticmethod
    def _app_json(app: RegisteredApp) -> dict[str, Any]:
        return {
            "clientId": app.client_id,
            "hasSecret": app.client_secret is not None,
            "redirectUris": app.redirect_uris,
            "name": app.name,
        }

    def list_apps(self) -> Response:
        with self.state.lock:
            return json_response({"apps": [self._app_json(a) for a in self.state.apps.values()]})

    # --- organisations -------------------------------------------------------------------------------------------
    def _org(self, tenant_id: str) -> Organisation:
        with self.state.lock:
            org = self.state.orgs.get(tenant_id.lower())
        if org is None:
            raise AdminError(404, f"no organisation {tenant_id}")
        return org

    @staticmethod
    def _org_json(org: Organisation) -> dict[str, Any]:
        with org.lock:
            return {
                "tenantId": org.tenant_id,
                "name": org.name,
                "userIds": list(org.user_ids),
                "size": org.size,
                "seed": org.seed,
                "counts": org.counts(),
            }

    def create_org(self, request: Request) -> Response:
        body = _body(request)
        name = body.get("name") or "Demo Company (NZ)"
        seed = body.get("seed", 1)
        size = body.get("size")
        user_id = body.get("userId") or DEFAULT_USER
        counts_in = body.get("counts")
        if counts_in is not None and not isinstance(counts_in, dict):
            raise AdminError(400, "counts must be an object of resource -> number")
        counts = resolve_counts(size, counts_in)
        as_of = _parse_as_of(body.get("asOf"))
        tenant_id = tenant_id_for(seed, name, user_id, counts, as_of)
        with self.state.lock:
            if tenant_id in self.state.orgs:
                raise AdminError(409, f"organisation {tenant_id} (same name, seed, size and user) already exists")
        org = Organisation(tenant_id, str(name), [str(user_id)], seed, size or "custom")
        started = time.monotonic()
        with org.lock:
            generate(org, seed=seed, counts=counts, as_of_ms=as_of, name=str(name))
            org.last_change_ms = as_of
        seconds = round(time.monotonic() - started, 3)
        with self.state.lock:
            if tenant_id in self.state.orgs:
                raise AdminError(409, f"organisation {tenant_id} already exists")
            self.state.orgs[tenant_id] = org
        result = self._org_json(org)
        result["generationSeconds"] = seconds
        return json_response(result, 201)

    def list_orgs(self) -> Response:
        with self.state.lock:
            orgs = list(self.state.orgs.values())
        return json_response({"orgs": [self._org_json(o) for o in orgs]})

    def add_user(self, request: Request, org: Organisation) -> Response:
        user_id = _body(request).get("userId")
        if not isinstance(user_id, str) or not user_id:
            raise AdminError(400, "userId is required")
        with org.lock:
            if user_id not in org.user_ids:
                org.user_ids.append(user_id)
        return json_response(self._org_json(org))

    def apply_changes(self, request: Request, org: Organisation) -> Response:
        body = _body(request)
        count = body.get("count", 10)
        if not isinstance(count, int) or count < 0:
            raise AdminError(400, "count must be a non-negative integer")
        with org.lock:
            result = ChangeSimulator(org, body.get("seed", 1), self.state.clock.now_ms()).run(count)
        return json_response(result)

    def records(self, org: Organisation, resource_name: str, request: Request) -> Response:
        """Ground truth: every record the API can still show, in creation order (optionally a slice of it)."""
        resource = RESOURCES_BY_LOWER.get(resource_name.lower())
        if resource is None:
            raise AdminError(404, f"unknown resource {resource_name}")
        try:
            offset = int(request.args.get("offset", 0))
            limit = int(request.args["limit"]) if "limit" in request.args else None
        except ValueError as exc:
            raise AdminError(400, "offset and limit must be integers") from exc
        with org.lock:
            records = list(org.table(resource.name).records.values())
        total = len(records)
        records = records[offset : None if limit is None else offset + limit]
        return json_response({"resource": resource.name, "count": total, "records": records})

    def vanish(self, org: Organisation, resource_name: str, request: Request) -> Response:
        """Records the API stops showing at all (as Xero's hard deletes do for Items and ContactGroups): a test's
        way to make a whole read miss them, e.g. a mass deletion on any resource."""
        resource = RESOURCES_BY_LOWER.get(resource_name.lower())
        if resource is None:
            raise AdminError(404, f"unknown resource {resource_name}")
        ids = _body(request).get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise AdminError(400, "ids must be a list of record ids")
        with org.lock:
            removed = [rid for rid in ids if org.table(resource.name).remove(rid) is not None]
        return json_response({"resource": resource.name, "removed": removed})

    # --- consent, connections ------------------------------------------------------------------------------------
    def consent(self, request: Request) -> Response:
        body = _body(request)
        user_id = body.get("userId")
        tenant_ids = body.get("tenantIds")
        deny = bool(body.get("deny", False))
        if tenant_ids is not None:
            if not isinstance(tenant_ids, list) or not all(isinstance(t, str) for t in tenant_ids):
                raise AdminError(400, "tenantIds must be a list of tenant ids")
            tenant_ids = [t.lower() for t in tenant_ids]
            owned = {o.tenant_id for o in self.state.orgs_of(user_id or DEFAULT_USER)}
            missing = [t for t in tenant_ids if t not in owned]
            if missing and not deny:
                raise AdminError(400, f"user {user_id or DEFAULT_USER} has no organisation(s) {', '.join(missing)}")
        with self.state.lock:
            self.state.pending_consents.append(PendingConsent(tenant_ids, deny, user_id))
            queued = len(self.state.pending_consents)
        return json_response({"queued": queued}, 201)

    def list_connections(self) -> Response:
        with self.state.lock:
            items = []
            for conn in self.state.connections.values():
                item = conn.to_json(self.state.orgs.get(conn.tenant_id))
                item.update({"userId": conn.user_id, "clientId": conn.client_id})
                items.append(item)
        return json_response({"connections": items})

    def disconnect(self, connection_id: str) -> Response:
        """The user removes the app inside Xero: the connection goes, calls for the tenant get 403."""
        with self.state.lock:
            if self.state.connections.pop(connection_id, None) is None:
                raise AdminError(404, f"no connection {connection_id}")
        return Response(status=204)

    # --- clock, faults, stats, config ----------------------------------------------------------------------------
    def _clock_json(self) -> dict[str, Any]:
        now = self.state.clock.now()
        return {
            "now": now,
            "nowUtc": datetime.fromtimestamp(now, tz=UTC).isoformat(),
            "offsetSeconds": self.state.clock.offset,
        }

    def advance_clock(self, request: Request) -> Response:
        seconds = _body(request).get("advance")
        if not isinstance(seconds, int | float) or seconds < 0:
            raise AdminError(400, "advance must be a non-negative number of seconds")
        self.state.clock.advance(float(seconds))
        return json_response(self._clock_json())

    def add_fault(self, request: Request) -> Response:
        body = _body(request)
        if body.get("tenantId") is not None and not isinstance(body["tenantId"], str):
            raise AdminError(400, "tenantId must be a string")
        if body.get("path") is not None and not isinstance(body["path"], str):
            raise AdminError(400, "path must be a string")
        fault = self.state.faults.add(body)
        return json_response(fault.to_json(), 201)

    def stats(self, timeline: bool = False) -> Response:
        with self.state.lock:
            tenants = {tid: s.to_json(timeline) for tid, s in self.state.stats.items()}
        return json_response({"tenants": tenants})

    def _config_json(self) -> dict[str, Any]:
        cfg = self.state.config
        limits = cfg.rate_limits
        return {
            "latencyMs": cfg.latency_ms,
            "perRecordLatencyMs": cfg.per_record_latency_ms,
            "unpagedRecordLimit": cfg.unpaged_record_limit,
            "rateLimits": {
                "enabled": limits.enabled,
                "tenantPerMinute": limits.tenant_per_minute,
                "tenantPerDay": limits.tenant_per_day,
                "tenantConcurrent": limits.tenant_concurrent,
                "appPerMinute": limits.app_per_minute,
                "timeScale": limits.time_scale,
            },
        }

    def configure(self, request: Request) -> Response:
        body = _body(request)
        cfg = self.state.config
        numbers = {"latencyMs": "latency_ms", "perRecordLatencyMs": "per_record_latency_ms"}
        for key, attr in numbers.items():
            if key in body:
                if not isinstance(body[key], int | float) or body[key] < 0:
                    raise AdminError(400, f"{key} must be a non-negative number")
                setattr(cfg, attr, float(body[key]))
        if "unpagedRecordLimit" in body:
            if not isinstance(body["unpagedRecordLimit"], int) or body["unpagedRecordLimit"] < 0:
                raise AdminError(400, "unpagedRecordLimit must be a non-negative integer")
            cfg.unpaged_record_limit = body["unpagedRecordLimit"]
        limits = body.get("rateLimits") or {}
        if not isinstance(limits, dict):
            raise AdminError(400, "rateLimits must be an object")
        fields = {
            "tenantPerMinute": "tenant_per_minute",
            "tenantPerDay": "tenant_per_day",
            "tenantConcurrent": "tenant_concurrent",
            "appPerMinute": "app_per_minute",
        }
        for key, attr in fields.items():
            if key in limits:
                if not isinstance(limits[key], int) or limits[key] < 0:
                    raise AdminError(400, f"rateLimits.{key} must be a non-negative integer")
                setattr(cfg.rate_limits, attr, limits[key])
        if "enabled" in limits:
            cfg.rate_limits.enabled = bool(limits["enabled"])
        if "timeScale" in limits:
            if not isinstance(limits["timeScale"], int | float) or limits["timeScale"] <= 0:
                raise AdminError(400, "rateLimits.timeScale must be a positive number")
            cfg.rate_limits.time_scale = float(limits["timeScale"])
        if limits:
            self.state.limiter.reset()
        return json_response(self._config_json())
