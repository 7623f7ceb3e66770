"""The events on the local stack: a rule on the template's bus sends every event to the stack's observer queue, as a
downstream consumer's rule would (docs/events.md); the functions put them as they run behind the front door and the
queue worker."""

import json
from datetime import datetime
from typing import Any

import pytest

from local.stack.offline_stack import OfflineStack
from tests.e2e.helpers import Api, eventually
from tests.e2e.test_linking_e2e import SYNC_TIMEOUT, an_organisation, finished_runs, link
from tests.xero import Xero


@pytest.fixture
def stack(xero_stack: OfflineStack) -> OfflineStack:
    return xero_stack


def observed(stack: OfflineStack, client_id: str, seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every event of the client the observer queue has received so far (taken off the queue as it is read)."""
    assert stack.event_observer_url is not None
    while batch := stack.sqs.receive_message(QueueUrl=stack.event_observer_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in batch:
            event = json.loads(message["Body"])
            if event["detail"].get("clientId") == client_id:
                seen.append(event)
            stack.sqs.delete_message(QueueUrl=stack.event_observer_url, ReceiptHandle=message["ReceiptHandle"])
    return seen


def test_a_consumer_of_the_bus_hears_the_link_then_its_sync_with_the_clients_counts(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    # Given an organisation linked through the API and Xero's consent
    tenant = an_organisation(xero, "Events")
    (client_id,) = link(api, stack, xero, practice, [tenant])["clientIds"]
    # When the worker runs the link's sync
    (run,) = finished_runs(api, practice, client_id, 1)
    assert run["status"] == "succeeded", run
    # Then the observer queue received `Xero Link Changed` (linked), then `Xero Sync Succeeded` with the run's counts
    seen: list[dict[str, Any]] = []
    events = eventually(lambda: len(observed(stack, client_id, seen)) >= 2 and seen, timeout=SYNC_TIMEOUT)
    assert [(e["source"], e["detail-type"]) for e in events] == [
        ("xero-sync", "Xero Link Changed"),
        ("xero-sync", "Xero Sync Succeeded"),
    ]
    linked, succeeded = (e["detail"] for e in events)
    assert linked == {
        "practiceId": practice,
        "clientId": client_id,
        "tenantId": tenant,
        "change": "linked",
        "linkState": "linked",
        "reasonCode": None,
    }
    counts = {name: {k: c[k] for k in ("inserted", "updated", "deleted")} for name, c in run["counts"].items()}
    assert sum(c["inserted"] for c in counts.values()) > 0
    assert (succeeded["runId"], succeeded["trigger"], succeeded["status"]) == (run["runId"], "link", "succeeded")
    assert succeeded["counts"] == counts
    last_success = api.get(f"/clients/{client_id}", practice).json()["lastSuccessfulSyncAt"]
    assert datetime.fromisoformat(succeeded["lastSuccessfulSyncAt"]) == datetime.fromisoformat(last_success)
