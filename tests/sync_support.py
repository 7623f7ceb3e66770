"""Shared by the sync engine's integration and contract tests: link an emulated organisation through the real API
handlers, drive sync runs the way the queue would, and compare what is stored with the emulator's ground truth."""

import json
import math
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlparse

import boto3
import requests

from local.stack.function_environment import paced_to_emulator
from local.xero_emulator import XeroEmulator
from tests.api import Api
from xero_sync.catalogue import CATALOGUE, Paging
from xero_sync.config import get_settings
from xero_sync.models import Client, RunStatus, RunTrigger, SyncRun
from xero_sync.record_store import RecordStore, record_id
from xero_sync.rendering import Renderer
from xero_sync.schemas import SyncMessage
from xero_sync.sync_requests import request_sync
from xero_sync.sync_worker import process_sync_message

# A timeout fault holds its answer longer than the engine's read timeout here; on a busy machine an ordinary answer
# may take seconds, so the timeout leaves room for that.
READ_TIMEOUT_SECONDS = 4
TIMEOUT_FAULT_HOLD = READ_TIMEOUT_SECONDS + 1.5

# The emulator runs the clock of its rate limits this many times faster, so its minute lasts one real second.
XERO_TIME_SCALE = 60

FAST_LIMITS = {
    **paced_to_emulator(XERO_TIME_SCALE),
    "XERO_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS),
    "XERO_BACKOFF_BASE_SECONDS": "0.05",
    "XERO_MAX_INLINE_WAIT_SECONDS": "3",
}


def fast_settings(extra: dict[str, str] | None = None) -> None:
    os.environ.update({**FAST_LIMITS, **(extra or {})})
    get_settings.cache_clear()


def forget_fast_settings() -> None:
    for name in [*FAST_LIMITS, "FULL_RECONCILIATION_SECONDS", "SYNC_TIME_MARGIN_SECONDS"]:
        os.environ.pop(name, None)
    get_settings.cache_clear()


@dataclass
class Emulated:
    base_url: str
    session: requests.Session
    emulator: XeroEmulator | None = None  # in process: its state, for tests that change Xero between two reads

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.session.request(method, f"{self.base_url}/_emulator{path}", timeout=120, **kwargs)
        assert response.status_code < 300, response.text
        return response

    def create_org(self, name: str, size: str = "tiny", user_id: str = "demo-user") -> str:
        body = {"name": name, "seed": name, "size": size, "userId": user_id}
        return str(self.admin("POST", "/orgs", json=body).json()["tenantId"])

    def truth(self, tenant_id: str, resource: str) -> dict[str, dict[str, Any]]:
        spec = next(s for s in CATALOGUE if s.name == resource)
        records = self.admin("GET", f"/orgs/{tenant_id}/records/{resource}").json()["records"]
        return {record_id(spec, r): r for r in records}

    def stats(self, tenant_id: str) -> dict[str, Any]:
        return dict(self.admin("GET", "/stats").json()["tenants"].get(tenant_id, {}))

    def change(self, tenant_id: str, count: int, seed: Any) -> dict[str, Any]:
        return dict(self.admin("POST", f"/orgs/{tenant_id}/changes", json={"count": count, "seed": seed}).json())

    def fault(self, kind: str, count: int = 1, **extra: Any) -> None:
        self.admin("POST", "/faults", json={"kind": kind, "count": count, **extra})


def link_client(api: Api, xero: Emulated, tenant_id: str, practice: str) -> Client:
    """Links the organisation as a user would (authorize, consent, callback); returns the new client."""
    started = api.call("POST", "/clients/link", practice=practice)
    assert started.status == 201, started.body
    xero.admin("POST", "/consent", json={"tenantIds": [tenant_id], "deny": False, "userId": "demo-user"})
    answer = xero.session.get(started.body["authorizeUrl"], allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text
    params = dict(parse_qsl(urlparse(answer.headers["Location"]).query))
    response = api.call("POST", "/xero/link-completions", practice=practice, body=json.dumps(params))
    assert response.status == 200, response.body
    (client_id,) = response.body["clientIds"]
    return Client.get(practice, client_id)


def linked_client(
    session: boto3.Session, api: Api, xero: Emulated, queue_url: str, name: str, size: str = "tiny"
) -> tuple[str, Client, SyncMessage]:
    """A new organisation linked as a client of practice-a: its tenant, the client and its first sync's message."""
    tenant = xero.create_org(name, size=size)
    client = link_client(api, xero, tenant, "practice-a")
    (message,) = drain(session, queue_url)
    return tenant, client, message


def drain(session: boto3.Session, queue_url: str) -> list[SyncMessage]:
    sqs = session.client("sqs")
    messages = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            messages.append(SyncMessage.model_validate_json(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def run_to_end(
    session: boto3.Session, queue_url: str, message: SyncMessage, max_invocations: int = 30, **kwargs: Any
) -> SyncRun:
    """Processes the message, then every continuation the run requeues (SQS delays honoured), until it ends."""
    sqs = session.client("sqs")
    pending = [message]
    for _ in range(max_invocations):
        if not pending:
            wait = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=5)
            for raw in wait.get("Messages", []):
                pending.append(SyncMessage.model_validate_json(raw["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=raw["ReceiptHandle"])
            if not pending:
                break
        status = process_sync_message(pending.pop(0), **kwargs)
        if status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            break
    return SyncRun.get(message.client_id, message.run_id, consistent_read=True)


def sync(session: boto3.Session, queue_url: str, client: Client, mode: str = "incremental", **kwargs: Any) -> SyncRun:
    drain(session, queue_url)
    accepted = request_sync(client.practice_id, client.client_id, RunTrigger.MANUAL, mode=mode)  # type: ignore[arg-type]
    (message,) = drain(session, queue_url)
    assert message.run_id == accepted.run_id
    return run_to_end(session, queue_url, message, **kwargs)


def differences(xero: Emulated, tenant_id: str, client_id: str) -> dict[str, list[str]]:
    """Per resource, the ids whose stored record, as a reader sees it (rendering.py), differs from the ground truth
    (missing, extra or changed)."""
    store = RecordStore(client_id)
    renderer = Renderer(client_id, store)
    found: dict[str, list[str]] = {}
    for spec in CATALOGUE:
        truth = xero.truth(tenant_id, spec.name)
        stored = {record_id(spec, r): r for r in renderer.render_all(spec, store.records(spec))}
        wrong = sorted(
            [f"missing {i}" for i in truth.keys() - stored.keys()]
            + [f"extra {i}" for i in stored.keys() - truth.keys()]
            + [f"changed {i}" for i in truth.keys() & stored.keys() if truth[i] != stored[i]]
        )
        if wrong:
            found[spec.name] = wrong[:5] + ([f"... {len(wrong)} in all"] if len(wrong) > 5 else [])
    return found


def counts_of(run: SyncRun) -> dict[str, dict[str, int]]:
    counts = run.counts.as_dict() if hasattr(run.counts, "as_dict") else dict(run.counts or {})
    return {name: {k: int(v) for k, v in value.items() if k != "errors"} for name, value in counts.items()}


def floor_calls(emu: Emulated, tenant: str) -> int:
    """Pages needed at the largest page size Xero allows, plus the fixed calls (one per contact group's members)."""
    total = 0
    for spec in CATALOGUE:
        n = len(emu.truth(tenant, spec.name))
        if spec.paging is Paging.PAGE_SIZE:
            total += max(1, math.ceil(n / spec.page_size))
        elif spec.paging in (Paging.PAGE, Paging.OFFSET):
            total += n // spec.page_size + 1
        else:
            total += 1
        if spec.detail_by_id:
            total += n
    return total
