"""Practices kept apart: every route and verb of the template, called with another practice's token, an unknown id,
a client being deleted and a malformed id.

"Not yours" must be indistinguishable from "missing": the same status, the same error body, and no timing
difference. Timing is asserted deterministically rather than by a clock: a handler's time is the AWS calls it makes
(each a network round trip; the rest is microseconds of Python), so every case is recorded at the botocore level
(tests/aws_calls.py) and "exists but not yours" must make exactly the same sequence of calls (operation and table,
in order) as "missing". A lookup that read further for an existing item (a second read, a query of its runs) would
show here as a different sequence, whatever the machine's speed.
"""

import uuid
from datetime import UTC, datetime

import pytest

from tests.api import Api
from tests.builders import a_client
from tests.conftest import AWS_CALLS, TEMPLATE
from xero_sync.catalogue import BY_NAME
from xero_sync.models import Client, RunStatus, RunTrigger
from xero_sync.record_store import RecordStore
from xero_sync.sync_requests import request_sync

OWN_ROUTES = [route for route in TEMPLATE.routes() if "{clientId}" in route.path]
MALFORMED_IDS = ["not-a-uuid", "00000000-0000-4000-8000-00000000000G", "A" * 300, "x' OR 1=1 --"]
# The data API's other path parameters name what practice B's client holds: only the client id may make it a 404.
INVOICE_ID = "1a2b3c4d-0000-4000-8000-000000000001"
OTHER_PARAMETERS = {"{resource}": "Invoices", "{xeroId}": INVOICE_ID}


@pytest.fixture
def others_client(aws) -> Client:
    """Practice B's linked client with a sync queued: as much as there is to find, were it reachable."""
    client = a_client("practice-b", "Bravo Ltd")
    request_sync("practice-b", client.client_id, RunTrigger.MANUAL)
    invoice = {"InvoiceID": INVOICE_ID, "Status": "PAID", "UpdatedDateUTC": "/Date(1778412345678+0000)/"}
    RecordStore(client.client_id).apply(BY_NAME["Invoices"], [invoice])
    return Client.get("practice-b", client.client_id)


def called(api: Api, route, client_id: str, practice: str = "practice-a"):
    """The answer to one call, and the AWS calls (service, operation, tables) the function made for it."""
    first = len(AWS_CALLS.calls)
    path = route.path.replace("{clientId}", client_id)
    for parameter, value in OTHER_PARAMETERS.items():
        path = path.replace(parameter, value)
    assert "{" not in path, f"{route.path}: a path parameter the matrix does not fill"
    response = api.call(route.method, path, practice=practice, route_path=route.path)
    return response, [call.signature for call in AWS_CALLS.since(first)]


@pytest.mark.parametrize("route", OWN_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_another_practices_client_is_exactly_a_missing_one_on_every_route(aws, api, others_client, route):
    # Given practice B's client, an id nobody has, and one of practice A's own clients being deleted
    deleting = a_client("practice-a", "Alpha Ltd")
    deleting.update(actions=[Client.deleting_since.set(datetime.now(UTC))])

    # When practice A calls the route for each
    not_yours, not_yours_calls = called(api, route, others_client.client_id)
    missing, missing_calls = called(api, route, str(uuid.uuid4()))
    being_deleted, being_deleted_calls = called(api, route, deleting.client_id)

    # Then each is the same 404 with the same body (deleting one's own client again is accepted again, by design)
    gone = [not_yours, missing] + ([being_deleted] if route.method != "DELETE" else [])
    for response in gone:
        assert response.status == 404, response.body
        assert response.body == {"error": {"code": "client_not_found", "message": "no such client"}}
    # And "not yours" makes exactly the AWS calls "missing" does: nothing in its timing tells them apart
    assert not_yours_calls == missing_calls
    if route.method != "DELETE":
        assert being_deleted_calls == missing_calls
    # One keyed read of the caller's own partition at most, after (on a mutating route) the count of the caller's
    # own requests, which names no client
    counted = [call for call in missing_calls if "RateLimitsTable" in call[2]]
    assert len(counted) == (route.method in {"POST", "DELETE"}), missing_calls
    assert len(missing_calls) - len(counted) <= 1, missing_calls
    # And practice B's client is untouched: still linked, its queued run still its own
    after = Client.get("practice-b", others_client.client_id)
    assert (after.link_state, after.current_run_id, after.deleting_since) == (
        "linked",
        others_client.current_run_id,
        None,
    )
    assert after.current_run_status == RunStatus.QUEUED.value


@pytest.mark.parametrize("client_id", MALFORMED_IDS)
@pytest.mark.parametrize("route", OWN_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_a_malformed_id_is_refused_before_any_lookup_on_every_route(aws, api, route, client_id):
    response, calls = called(api, route, client_id)

    assert response.status == 422, response.body
    assert response.body["error"]["code"] == "validation_error"
    assert client_id not in str(response.body)  # never echoed back
    assert calls == []


def test_listing_with_another_practices_token_shows_none_of_its_clients(aws, api, others_client):
    (route,) = [r for r in TEMPLATE.routes() if (r.method, r.path) == ("GET", "/clients")]

    response, calls = called(api, route, "")

    assert (response.status, response.body) == (200, {"items": [], "nextCursor": None})
    assert [operation for _, operation, _ in calls] == ["Query"]  # of the caller's own partition only


def test_every_route_of_the_template_is_in_the_matrix():
    """A route added to the template joins the matrix above, or is one of these (with the reason)."""
    not_client_scoped = {
        ("GET", "/clients"): "lists the caller's own partition (test above)",
        ("POST", "/clients/link"): "names no client: the state it makes is bound to the caller's practice",
        (
            "POST",
            "/xero/link-completions",
        ): "names no client: the state must be the caller's own, or state_mismatch (test_linking_hostile.py)",
    }
    routes = {(r.method, r.path) for r in TEMPLATE.routes()}
    assert routes == {(r.method, r.path) for r in OWN_ROUTES} | set(not_client_scoped)
