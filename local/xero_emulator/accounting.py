"""GET /api.xro/2.0/{Resource}[/{id}]: Xero's list and single-record reads.

Behaviour follows the facts file §3-5: the JSON envelope, `page` (100 a page) and `pageSize` (up to 1000) with the
`pagination` object on the nine paged endpoints, line items only on paged and single reads, If-Modified-Since
(strictly after, to the second) where Xero honours it, `where`/`order`, includeArchived/includeDeleted, and Journals
by `offset` (100 a call).
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from local.xero_emulator.dates import envelope_date, parse_if_modified_since, parse_ms_date
from local.xero_emulator.resources import (
    JOURNALS_PER_CALL,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    READ_SCOPES,
    RESOURCES_BY_LOWER,
    Resource,
)
from local.xero_emulator.responses import (
    dumps,
    forbidden,
    not_found,
    query_parse_error,
    rate_limited,
    unauthorized,
    validation_error,
)
from local.xero_emulator.state import EmulatorState
from local.xero_emulator.store import Organisation
from local.xero_emulator.where import QueryError, compile_order, compile_where, lookup, order_key

Record = dict[str, Any]
_PAYMENT_SOURCES = {
    "ACCRECPAYMENT",
    "ACCPAYPAYMENT",
    "ARCREDITPAYMENT",
    "APCREDITPAYMENT",
    "CASHREC",
    "CASHPAID",
    "TRANSFER",
    "AROVERPAYMENT",
    "APOVERPAYMENT",
    "ARPREPAYMENT",
    "APPREPAYMENT",
    "EXPPAYMENT",
    "MANJOURNAL",
}


class BadRequest(Exception):
    def __init__(self, message: str, query: bool = False) -> None:
        super().__init__(message)
        self.query = query


@dataclass
class ListResult:
    records: list[Record]
    pagination: dict[str, int] | None


def _truthy(value: str | None) -> bool:
    return (value or "").lower() == "true"


def _int_arg(args: Any, name: str) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise BadRequest(f"The {name} parameter must be an integer") from exc


def _case_insensitive_arg(args: Any, name: str) -> str | None:
    if name in args:
        return args.get(name)
    lowered = name.lower()
    for key in args:
        if key.lower() == lowered:
            return args.get(key)
    return None


def visible(resource: Resource, record: Record, args: Any) -> bool:
    """What a list call shows without asking for more (archived contacts, deleted transfers are hidden)."""
    if resource.name == "Contacts":
        return record.get("ContactStatus") != "ARCHIVED" or _truthy(_case_insensitive_arg(args, "includeArchived"))
    if resource.name == "TrackingCategories":
        return record.get("Status") == "ACTIVE" or (
            record.get("Status") == "ARCHIVED" and _truthy(_case_insensitive_arg(args, "includeArchived"))
        )
    if resource.name == "BankTransfers":
        return record.get("Status") != "DELETED" or _truthy(_case_insensitive_arg(args, "includeDeleted"))
    if resource.name == "ContactGroups":
        return record.get("Status") == "ACTIVE"
    return True


def render_list_item(resource: Resource, record: Record, paged: bool, args: Any) -> Record:
    """A record as a list call shows it."""
    out = record
    if resource.unpaged_omits and not paged:
        # No line details on un-paged lists; the key stays (empty) because BankTransaction's schema requires it.
        out = {k: ([] if k in resource.unpaged_omits else v) for k, v in record.items()}
    if resource.name == "ContactGroups":
        out = dict(record, Contacts=[])  # members only on GET /ContactGroups/{id}
    elif resource.name == "TrackingCategories" and not _truthy(_case_insensitive_arg(args, "includeArchived")):
        out = dict(record, Options=[o for o in record["Options"] if o["Status"] == "ACTIVE"])
    return out


class AccountingEndpoints:
    def __init__(self, state: EmulatorState, authenticate: Any) -> None:
        self.state = state
        self.authenticate = authenticate

    def handle(self, request: Request, rest: str) -> tuple[Response, str | None, str, int]:
        """Answer one call. Returns (response, tenant id, endpoint label for stats, calls in flight)."""
        parts = [p for p in rest.split("/") if p]
        resource = RESOURCES_BY_LOWER.get(parts[0].lower()) if parts else None
        endpoint = f"{request.method} /{resource.name if resource else (parts[0] if parts else '')}"
        if resource is not None and len(parts) == 2:
            endpoint += "/{id}"
        accept = request.headers.get("Accept", "")
        if "application/json" not in accept.lower():
            return (
                Response(
                    "This emulator answers JSON only: send 'Accept: application/json' (Xero would answer XML).",
                    status=406,
                    content_type="text/plain; charset=utf-8",
                ),
                None,
                endpoint,
                0,
            )
        grant, error = self.authenticate(request)
        if error is not None:
            return error, None, endpoint, 0
        tenant_id = (request.headers.get("xero-tenant-id") or "").strip().lower()
        conn = self.state.connection_for(grant.user_id, grant.client_id, tenant_id) if tenant_id else None
        org = self.state.orgs.get(tenant_id) if conn else None
        if org is None:
            return forbidden(), tenant_id or None, endpoint, 0
        # From here on the call reaches the tenant: it counts against the limits and carries their headers.
        decision, in_flight = self.state.limiter.acquire(grant.client_id, tenant_id)
        if not decision.allowed:
            return (
                rate_limited(decision.problem or "minute", decision.retry_after, decision.headers),
                tenant_id,
                endpoint,
                in_flight,
            )
        started = time.monotonic()
        try:
            if resource is None or len(parts) > 2:
                response, count = not_found(), 0
            elif not any(scope in grant.scopes for scope in READ_SCOPES.get(resource.name, ())):
                response, count = unauthorized("AuthorizationUnsuccessful"), 0
            else:
                response, count = self._read(request, org, resource, parts, grant.client_id)
            self._latency(started, count)
            response.headers.update(decision.headers)
            return response, tenant_id, endpoint, in_flight
        finally:
            self.state.limiter.release(grant.client_id, tenant_id)

    def _latency(self, started: float, count: int) -> None:
        """Hold the call (while it still counts as in flight) for the configured base and per-record cost."""
        cfg = self.state.config
        wanted = (cfg.latency_ms + cfg.per_record_latency_ms * count) / 1000
        remaining = wanted - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)

    def _read(
        self, request: Request, org: Organisation, resource: Resource, parts: list[str], client_id: str
    ) -> tuple[Response, int]:
        if request.method != "GET":
            return (validation_error(f"The emulator serves reads only; {request.method} is not supported"), 0)
        try:
            if len(parts) == 2:
                if not resource.single:
                    return not_found(), 0
                records = self._single(org, resource, parts[1])
                if records is None:
                    return not_found(), 0
                pagination = None
            elif resource.name == "Journals":
                records = self._journals(request, org)
                pagination = None
            else:
                hook = self.state.list_hook
                if hook:
                    hook.before(resource.name)
                result = self._list(request, org, resource)
                if hook:
                    hook.after(resource.name)
                records, pagination = result.records, result.pagination
        except BadRequest as exc:
            return (query_parse_error(str(exc)) if exc.query else validation_error(str(exc))), 0
        body: dict[str, Any] = {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": self.state.apps[client_id].name if client_id in self.state.apps else "",
            "DateTimeUTC": envelope_date(self.state.clock.now_ms()),
        }
        if pagination is not None:
            body["pagination"] = pagination
        body[resource.key] = records
        return Response(dumps(body), status=200, content_type="application/json; charset=utf-8"), len(records)

    def _single(self, org: Organisation, resource: Resource, key: str) -> list[Record] | None:
        with org.lock:
            table = org.table(resource.name)
            record = table.find(key)
            if record is None and resource.name == "Journals" and key.isdigit():
                number = int(key)
                if 1 <= number <= len(org.journal_ids):
                    record = table.records.get(org.journal_ids[number - 1])
        return None if record is None else [record]

    def _journals(self, request: Request, org: Organisation) -> list[Record]:
        args = request.args
        offset = _int_arg(args, "offset") or 0
        payments_only = _truthy(_case_insensitive_arg(args, "paymentsOnly"))
        since = self._if_modified_since(request)
        out: list[Record] = []
        with org.lock:
            table = org.table("Journals")
            for jid in org.journal_ids[max(offset, 0) :]:
                if since is not None and table.modified[jid] <= since:
                    continue
                journal = table.records[jid]
                if payments_only and journal["SourceType"] not in _PAYMENT_SOURCES:
                    continue
                out.append(journal)
                if len(out) >= JOURNALS_PER_CALL:
                    break
        return out

    def _if_modified_since(self, request: Request) -> int | None:
        raw = request.headers.get("If-Modified-Since")
        if not raw:
            return None
        try:
            # The header counts to the second; records changed strictly after it are returned, so one changed at
            # 10:00:00.500 is newer than "10:00:00" (handing back a truncated UpdatedDateUTC returns that record again).
            return parse_if_modified_since(raw)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc

    def _list(self, request: Request, org: Organisation, resource: Resource) -> ListResult:
        args = request.args
        since = self._if_modified_since(request) if resource.ims else None
        predicate = None
        if resource.where and args.get("where"):
            try:
                predicate = compile_where(args["where"])
            except QueryError as exc:
                raise BadRequest(str(exc), query=True) from exc
        order = None
        if resource.order and args.get("order"):
            try:
                order = compile_order(args["order"])
            except QueryError as exc:
                raise BadRequest(str(exc), query=True) from exc
        filters = []
        for param, (path, is_list) in resource.filters.items():
            raw = _case_insensitive_arg(args, param)
            if raw:
                wanted = {v.strip().lower() for v in raw.split(",")} if is_list else {raw.strip().lower()}
                filters.append((path.split("."), wanted))
        date_filters = []
        for param, (field, op) in resource.date_filters.items():
            raw = _case_insensitive_arg(args, param)
            if raw:
                try:
                    bound = parse_if_modified_since(raw[:10])
                except ValueError as exc:
                    raise BadRequest(f"{param} must be a date (YYYY-MM-DD)") from exc
                date_filters.append((field, op, bound))
        page = _int_arg(args, "page") if resource.paged else None
        page_size = PAGE_SIZE_DEFAULT
        if resource.page_size and page is not None:
            requested = _int_arg(args, "pageSize")
            if requested is not None:
                if requested < 1:
                    raise BadRequest("pageSize must be a positive integer")
                page_size = min(requested, PAGE_SIZE_MAX)

        with org.lock:
            table = org.table(resource.name)
            modified = table.modified
            selected = []
            for rid, record in table.records.items():
                if since is not None and modified[rid] <= since:
                    continue
                if not visible(resource, record, args):
                    continue
                selected.append(record)
        if filters:
            selected = [r for r in selected if all(str(lookup(r, p) or "").lower() in w for p, w in filters)]
        for field, op, bound in date_filters:
            selected = [r for r in selected if _date_ok(r.get(field), op, bound)]
        search = _case_insensitive_arg(args, "searchTerm") if resource.search_fields else None
        if search:
            needle = search.lower()
            selected = [
                r for r in selected if any(needle in str(r.get(f) or "").lower() for f in resource.search_fields)
            ]
        if predicate is not None:
            selected = [r for r in selected if predicate(r)]
        if order:
            for path, descending in reversed(order):
                selected.sort(key=lambda r, p=path: order_key(lookup(r, p)), reverse=descending)

        if page is None:
            if resource.paged and len(selected) > self.state.config.unpaged_record_limit:
                raise BadRequest(
                    f"Your request is not filtering {resource.name} efficiently, given the extremely high volume for "
                    "this organisation. Please check https://developer.xero.com/documentation/api/"
                    "efficient-data-retrieval"
                )
            return ListResult([render_list_item(resource, r, False, args) for r in selected], None)
        page = max(page, 1)
        start = (page - 1) * page_size
        chunk = selected[start : start + page_size]
        rendered = [render_list_item(resource, r, True, args) for r in chunk]
        pagination = None
        if resource.page_size:
            pagination = {
                "page": page,
                "pageSize": page_size,
                "pageCount": math.ceil(len(selected) / page_size),
                "itemCount": len(selected),
            }
        return ListResult(rendered, pagination)


def _date_ok(value: Any, op: str, bound: int) -> bool:
    if not isinstance(value, str):
        return False
    ms = parse_ms_date(value)
    if ms is None:
        return False
    return ms >= bound if op == ">=" else ms <= bound
