"""What must hold once a chaos seed has settled (local/chaos/driver.py), checked from outside the sync: the API as the
front end reads it, the emulator's ground truth, the tables and queues beside the stack.

- every client's clean Sync Now succeeded, and it is still linked: no token set was lost;
- the stored records equal the emulator's ground truth, resource by resource, none stored twice, and the overview's
  record counts are the ground truth's; a resource the client's last run found unavailable (Xero answered 404/410:
  SyncRun.unavailable) may be behind Xero until the next full sync, so it is left out of the comparison (and said so);
- a client a resource was taken from during the storm got a full sync once settled (the driver's): it succeeded and,
  Xero offering everything again, found nothing unavailable;
- no client holds a run any more (none stuck in `running` past its lease), and no run in any history is left
  queued, running or deferred;
- the clients of one consent still share one token set;
- nothing is in the sync dead-letter queue (no chaos message is one a worker could not handle).
"""

import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from local.cli.export_verify import stored_records, verify_ground_truth
from local.cli.stack_client import StackHandle
from xero_sync.catalogue import CATALOGUE

if TYPE_CHECKING:
    from local.chaos.driver import LinkedClient
    from local.stack.offline_stack import OfflineStack

_DEPTH = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")
_ACTIVE = {"queued", "running", "deferred"}


def queue_depth(stack: "OfflineStack", queue: str = "SyncQueue") -> dict[str, int]:
    attributes = stack.sqs.get_queue_attributes(QueueUrl=stack.queue_url(queue), AttributeNames=list(_DEPTH))
    return {name.removeprefix("ApproximateNumberOf"): int(attributes["Attributes"][name]) for name in _DEPTH}


def empty_dead_letters(stack: "OfflineStack") -> list[str]:
    """Takes every message out of the sync dead-letter queue; returns their bodies."""
    url = stack.queue_url("SyncDeadLetterQueue")
    bodies = []
    while messages := stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(message["Body"])
            stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def claims(practice: str) -> dict[str, Any]:
    """The practice's clients as stored (their claim fields included), by client id."""
    from xero_sync.models import Client

    return {client.client_id: client for client in Client.query(practice, consistent_read=True)}


def wait_until_drained(
    stack: "OfflineStack", practice: str, clients: dict[str, "LinkedClient"], timeout: float
) -> None:
    """Until the sync queue is empty (visible, in flight and delayed) and no client holds a live claim."""
    deadline = time.monotonic() + timeout
    while True:
        depth = queue_depth(stack)
        now, stored = datetime.now(UTC), claims(practice)
        held = {
            letter: f"{found.current_run_status} {found.current_run_id}"
            for letter, client in clients.items()
            if (found := stored.get(client.client_id)) is not None and found.has_active_run(now)
        }
        if not any(depth.values()) and not held:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"not drained after {timeout:.0f} s: queue {depth}, claims held {held}")
        time.sleep(0.5)


class SettledChecks:
    def __init__(
        self, stack: "OfflineStack", handle: StackHandle, practice: str, clients: dict[str, "LinkedClient"]
    ) -> None:
        self.stack = stack
        self.handle = handle
        self.practice = practice
        self.clients = clients
        self.observed: Counter[str] = Counter()

    def problems(
        self, clean_runs: dict[str, dict[str, Any] | None], full_runs: dict[str, dict[str, Any]] | None = None
    ) -> list[str]:
        problems: list[str] = []
        stored = claims(self.practice)
        for letter, client in self.clients.items():
            full = (full_runs or {}).get(letter)
            found = self._client_problems(client, clean_runs.get(letter), stored, full)
            problems += [f"client {letter}: {p}" for p in found]
        problems += self._shared_consent(stored)
        problems += [f"in the dead-letter queue: {body[:200]}" for body in empty_dead_letters(self.stack)]
        return problems

    def _client_problems(
        self,
        client: "LinkedClient",
        clean: dict[str, Any] | None,
        stored: dict[str, Any],
        full: dict[str, Any] | None = None,
    ) -> list[str]:
        problems = []
        if clean is None or clean.get("status") != "succeeded":
            problems.append(f"the clean Sync Now did not succeed ({_outcome(clean)})")
        if full is not None:
            if full.get("status") != "succeeded":
                problems.append(f"the full sync once settled did not succeed ({_outcome(full)})")
            elif left := self.unavailable(client, full):
                problems.append(f"Xero offers everything again, yet the full sync found unavailable: {sorted(left)}")
        overview = self.handle.client(self.practice, client.client_id)
        if overview["linkState"] != "linked":
            problems.append(f"{overview['linkState']} ({overview.get('linkStateReason')}): its token set is lost")
        problems += self.truth_problems(client, full or clean, overview)
        problems += self._duplicates(client)
        problems += self._claim_problems(stored.get(client.client_id))
        problems += self._history_problems(client)
        return problems

    def unavailable(self, client: "LinkedClient", run: dict[str, Any] | None) -> set[str]:
        """The resources a run found Xero not offering (404/410): SyncRun.unavailable, read so that a run (or an
        engine) without it has none. Without a run: the client's newest."""
        if run is None or not run.get("runId"):
            newest = self.handle.runs(self.practice, client.client_id, limit=1)
            run = newest[0] if newest else None
        if run is None:
            return set()
        if "unavailable" in run:  # the API's run, if it says
            return set(run["unavailable"] or ())
        from xero_sync.models import SyncRun

        try:
            found = SyncRun.get(client.client_id, run["runId"], consistent_read=True)
        except SyncRun.DoesNotExist:
            return set()
        return set(getattr(found, "unavailable", None) or ())

    def truth_problems(
        self, client: "LinkedClient", last_run: dict[str, Any] | None, overview: dict[str, Any] | None = None
    ) -> list[str]:
        """The stored records and the overview's counts against Xero's ground truth, leaving out the resources the
        client's last run found unavailable (they may be behind Xero until its next full sync)."""
        problems = []
        behind = self.unavailable(client, last_run)
        if behind:
            self.observed["resources left uncompared (unavailable in the last run)"] += len(behind)
        overview = overview or self.handle.client(self.practice, client.client_id)
        verification = verify_ground_truth(self.handle, {"tenantId": client.tenant_id, "clientId": client.client_id})
        for resource in behind:
            verification.differences.pop(resource, None)
            verification.compared.pop(resource, None)
        for resource, wrong in verification.differences.items():
            fields = self._changed_fields(
                client, resource, [w.split(" ", 1)[1] for w in wrong if w.startswith("changed")]
            )
            problems.append(f"{resource} differs from Xero in {len(wrong)} records: {', '.join(wrong[:3])}{fields}")
        counts = {name: n for name, n in (overview.get("recordCounts") or {}).items() if n and name not in behind}
        truth = {name: n for name, n in verification.compared.items() if n}
        if counts != truth:
            wrong = {name: (counts.get(name, 0), truth.get(name, 0)) for name in counts.keys() | truth.keys()}
            problems.append(
                "record counts (shown, Xero): "
                + ", ".join(f"{name} {pair}" for name, pair in sorted(wrong.items()) if pair[0] != pair[1])
            )
        return problems

    def _changed_fields(self, client: "LinkedClient", resource: str, changed: list[str]) -> str:
        """Which fields of the first changed record differ (stored, then Xero's): what a replay looks for."""
        if not changed:
            return ""
        spec = next(s for s in CATALOGUE if s.name == resource)
        truth = self.handle.emulator_admin("GET", f"/orgs/{client.tenant_id}/records/{resource}")["records"]
        xero = next(r for r in truth if str(r[spec.id_field]) == changed[0])
        stored = next(
            r for r in stored_records(self.handle, client.client_id, spec) if str(r[spec.id_field]) == changed[0]
        )
        fields = sorted(k for k in stored.keys() | xero.keys() if stored.get(k) != xero.get(k))
        return " (" + "; ".join(f"{k}: {str(stored.get(k))[:80]} vs {str(xero.get(k))[:80]}" for k in fields) + ")"

    def _duplicates(self, client: "LinkedClient") -> list[str]:
        problems = []
        for spec in CATALOGUE:
            ids = [str(r.get(spec.id_field)) for r in stored_records(self.handle, client.client_id, spec)]
            twice = sorted(rid for rid, n in Counter(ids).items() if n > 1)
            if twice:
                problems.append(f"{spec.name}: {len(twice)} records stored twice: {', '.join(twice[:3])}")
        return problems

    @staticmethod
    def _claim_problems(found: Any) -> list[str]:
        if found is None:
            return ["gone from the Clients table"]
        if found.current_run_id is None:
            return []
        expires = found.current_run_expires_at
        if found.current_run_status == "running" and expires is not None and expires < datetime.now(UTC):
            return [f"stuck in running past its lease (run {found.current_run_id}, lapsed at {expires:%H:%M:%S})"]
        return [f"still holds run {found.current_run_id} ({found.current_run_status}) once settled"]

    def _history_problems(self, client: "LinkedClient") -> list[str]:
        runs = self.handle.runs(self.practice, client.client_id, limit=100)
        for run in runs:
            self.observed[f"runs {run['status']}" + (f" {run['errorCode']}" if run.get("errorCode") else "")] += 1
        left = [f"{run['runId']} {run['status']}" for run in runs if run["status"] in _ACTIVE]
        return [f"runs left unfinished in its history: {', '.join(left)}"] if left else []

    def _shared_consent(self, stored: dict[str, Any]) -> list[str]:
        token_sets = {
            letter: getattr(stored.get(c.client_id), "token_set_id", None) for letter, c in self.clients.items()
        }
        if "C" in token_sets and "D" in token_sets and (token_sets["C"] is None or token_sets["C"] != token_sets["D"]):
            return [f"clients C and D (one consent) no longer share one token set: {token_sets['C']} {token_sets['D']}"]
        return []


def _outcome(run: dict[str, Any] | None) -> str:
    return "refused" if run is None else f"{run.get('status')}: {run.get('errorCode')} {run.get('errorMessage')}"
