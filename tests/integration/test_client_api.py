"""The client API through its real handlers: practice scoping, paging, Sync Now, typed errors for bad input."""

import json

import pytest

from local.stack.api_events import http_api_event
from local.stack.lambda_context import LocalLambdaContext
from tests.builders import a_client
from tests.conftest import TEMPLATE
from tests.integration.test_delete_client import items_of, purge_messages, run_purge
from tests.sync_support import drain, link_client, run_to_end
from xero_sync.api import create_resolver, resolve
from xero_sync.dispatch import dispatch_nightly
from xero_sync.ids import MAX_PRACTICE_ID_BYTES
from xero_sync.models import Client, LinkState, RunStatus, RunTrigger
from xero_sync.purge import process_purge_message

UNKNOWN_ID = "abcdef00-0000-4000-8000-000000000000"


def test_a_practice_lists_its_own_clients_page_by_page(api):
    # Given three clients of practice A and one of practice B
    mine = sorted(a_client("practice-a", name=f"Client {i}").client_id for i in range(3))
    a_client("practice-b")
    # When practice A lists them two at a time
    first = api.call("GET", "/clients", query="limit=2")
    second = api.call("GET", "/clients", query=f"limit=2&cursor={first.body['nextCursor']}")
    # Then it sees exactly its own, in camelCase, with the link state and no sync yet
    assert first.status == second.status == 200
    items = first.body["items"] + second.body["items"]
    assert [c["clientId"] for c in items] == mine
    assert items[0]["linkState"] == "linked" and items[0]["lastSuccessfulSyncAt"] is None
    assert items[0]["currentRun"] is None
    assert second.body["nextCursor"] is None


def test_the_overview_shows_why_a_client_is_not_linked(api):
    client = a_client("practice-a", state=LinkState.NEEDS_RELINK)
    client.update(actions=[type(client).link_state_reason.set("Xero refused the refresh token")])
    response = api.call("GET", f"/clients/{client.client_id}")
    assert response.status == 200
    assert response.body["linkState"] == "needs_relink"
    assert response.body["linkStateReason"] == "Xero refused the refresh token"


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("GET", "/syncs"), ("POST", "/sync")], ids=["overview", "history", "sync-now"]
)
def test_another_practices_client_is_exactly_like_a_missing_one(api, method, suffix):
    theirs = a_client("practice-b")
    foreign = api.call(method, f"/clients/{theirs.client_id}{suffix}", practice="practice-a")
    missing = api.call(method, f"/clients/{UNKNOWN_ID}{suffix}", practice="practice-a")
    assert foreign.status == missing.status == 404
    assert foreign.body == missing.body == {"error": {"code": "client_not_found", "message": "no such client"}}


def test_sync_now_answers_202_and_a_second_press_gets_the_same_run(api):
    client = a_client("practice-a")
    first = api.call("POST", f"/clients/{client.client_id}/sync")
    second = api.call("POST", f"/clients/{client.client_id}/sync", body='{"mode": "full"}')
    assert first.status == second.status == 202
    assert first.body == second.body == {"runId": first.body["runId"], "status": "queued"}
    overview = api.call("GET", f"/clients/{client.client_id}").body
    assert overview["currentRun"] == {
        "runId": first.body["runId"],
        "status": "queued",
        "progress": None,
        "waitingOn": None,
    }
    (run,) = api.call("GET", f"/clients/{client.client_id}/syncs").body["items"]
    assert (run["runId"], run["trigger"], run["status"]) == (first.body["runId"], "manual", "queued")


def test_sync_now_on_an_unlinked_client_is_a_conflict_with_the_reason(api):
    client = a_client("practice-a", state=LinkState.UNLINKED)
    response = api.call("POST", f"/clients/{client.client_id}/sync")
    assert response.status == 409
    assert response.body["error"]["code"] == "client_not_linked"
    assert "unlinked" in response.body["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "status", "code"),
    [
        ("GET", "/clients/not-a-uuid", "", None, 422, "validation_error"),
        ("GET", f"/clients/{UNKNOWN_ID.upper()}", "", None, 422, "validation_error"),
        ("GET", "/clients", "limit=0", None, 422, "validation_error"),
        ("GET", "/clients", "limit=abc", None, 422, "validation_error"),
        ("GET", "/clients", "limit=101", None, 422, "validation_error"),
        ("GET", "/clients", "cursor=%21%21not-base64", None, 400, "invalid_cursor"),
        ("GET", "/clients", "cursor=c29tZS1vdGhlci1rZXk", None, 400, "invalid_cursor"),
        ("POST", f"/clients/{UNKNOWN_ID}/sync", "", '{"mode": ', 400, "malformed_json"),
        ("POST", f"/clients/{UNKNOWN_ID}/sync", "", b"\xa7", 400, "malformed_json"),  # not UTF-8: base64 in the event
        ("POST", f"/clients/{UNKNOWN_ID}/sync", "", '{"mode": "full"}'.encode("utf-16"), 400, "malformed_json"),
        ("POST", f"/clients/{UNKNOWN_ID}/sync", "", '{"mode": "everything"}', 422, "validation_error"),
        ("POST", f"/clients/{UNKNOWN_ID}/sync", "", '{"mode": "full", "extra": 1}', 422, "validation_error"),
        ("POST", f"/clients/{UNKNOWN_ID}/sync", "", "[1, 2]", 422, "validation_error"),
        ("POST", f"/clients/{UNKNOWN_ID}/sync", "", json.dumps({"mode": "x" * 20_000}), 413, "payload_too_large"),
    ],
)
def test_bad_input_gets_a_typed_error_and_never_a_500(api, method, path, query, body, status, code):
    response = api.call(method, path, query=query, body=body)
    assert (response.status, response.body["error"]["code"]) == (status, code)
    assert "Traceback" not in json.dumps(response.body)


def test_a_form_that_is_not_utf8_is_refused_as_invalid(api):
    # Powertools reads a form for any body route; one it cannot decode is its validation error, typed like ours
    response = api.call(
        "POST",
        f"/clients/{UNKNOWN_ID}/sync",
        body=b"mode=\xa7",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert (response.status, response.body["error"]["code"]) == (422, "validation_error")


def test_a_decoding_error_that_is_not_the_bodys_stays_a_server_error(aws):
    # Given a route of ours that fails decoding something of its own (a defect, not the caller's input)
    app = create_resolver()

    @app.post("/decodes")
    def decodes() -> dict[str, str]:
        return {"text": b"\xa7".decode()}

    # When it is called with a text body
    event = http_api_event("POST", "/decodes", "POST /decodes", headers={"content-type": "application/json"}, body="{}")
    result = resolve(app, event, LocalLambdaContext("decodes", 3))

    # Then it is a 500 that says nothing inside, not the caller's 400
    assert result["statusCode"] == 500
    assert json.loads(result["body"])["error"]["code"] == "internal_error"


def test_a_path_the_function_does_not_serve_is_a_typed_404(api):
    response = api.call("GET", "/clients/whatever/else", route_path=f"/clients/{UNKNOWN_ID}")
    assert (response.status, response.body["error"]["code"]) == (404, "route_not_found")


def test_a_token_without_a_practice_is_refused(api):
    response = api.call("GET", "/clients", practice=None)
    assert (response.status, response.body["error"]["code"]) == (401, "unauthorized")


def test_a_token_whose_practice_id_no_key_can_hold_is_refused_on_every_route_kind(api):
    # A practice id is a key (DynamoDB's partition keys end at 2,048 bytes): a longer claim is refused, not a 500
    for method, path in (("GET", "/clients"), ("POST", f"/clients/{a_client('p').client_id}/sync")):
        response = api.call(method, path, practice="p" * 3000)
        assert (response.status, response.body["error"]["code"]) == (401, "unauthorized"), (method, response.body)
    assert api.call("GET", "/clients", practice="p" * 512).status == 200


def test_a_token_whose_practice_id_is_not_text_is_refused_on_every_route_kind(api):
    # A claim holding a lone surrogate (JSON can escape one) is no UTF-8 text: no key or message can hold it
    for method, path in (("GET", "/clients"), ("POST", f"/clients/{UNKNOWN_ID}/sync")):
        response = api.call(method, path, practice="practice-\ud800")
        assert response.status == 401, (method, response.body)
        assert response.body["error"]["code"] == "unauthorized"


# Practice ids the API takes: one longer than 128 characters, and one of exactly the limit (two bytes a character)
PRACTICE_IDS_TAKEN = {"200 characters": "p" * 200, "at the limit": "é" * (MAX_PRACTICE_ID_BYTES // 2)}


@pytest.mark.parametrize("practice", PRACTICE_IDS_TAKEN.values(), ids=PRACTICE_IDS_TAKEN.keys())
def test_a_practice_whose_id_the_api_takes_links_syncs_and_deletes_its_clients(aws, api, xero, practice):
    assert len(practice.encode()) <= MAX_PRACTICE_ID_BYTES
    queue_url = aws.queue_url("SyncQueue")
    # When the practice links an organisation (link_client: the completion answers 200)
    client = link_client(api, xero, xero.create_org("Alpha Ltd"), practice)
    # Then its first sync is queued for that practice, and it runs
    (first,) = drain(aws.session, queue_url)
    assert (first.practice_id, first.client_id, first.trigger) == (practice, client.client_id, RunTrigger.LINK)
    assert run_to_end(aws.session, queue_url, first).status == RunStatus.SUCCEEDED.value
    # And the nightly dispatch queues its sync
    assert dispatch_nightly().queued == 1
    assert [(m.practice_id, m.client_id) for m in drain(aws.session, queue_url)] == [(practice, client.client_id)]
    # When the practice presses Sync Now, its sync is queued
    pressed = api.call("POST", f"/clients/{client.client_id}/sync", practice=practice)
    assert pressed.status == 202, pressed.body
    (manual,) = drain(aws.session, queue_url)
    assert (manual.practice_id, manual.run_id) == (practice, pressed.body["runId"])
    # When the practice deletes the client, its purge is queued, and it removes everything the client owned
    deleted = api.call("DELETE", f"/clients/{client.client_id}", practice=practice)
    assert deleted.status == 202, deleted.body
    (purge,) = purge_messages(aws)
    assert (purge.practice_id, purge.client_id) == (practice, client.client_id)
    assert [process_purge_message(purge, remaining_seconds=lambda: 60.0), *run_purge(aws)][-1] == "done"
    assert items_of(client.client_id) == {}


@pytest.mark.parametrize("practice", PRACTICE_IDS_TAKEN.values(), ids=PRACTICE_IDS_TAKEN.keys())
def test_sync_now_queues_the_sync_of_a_practice_whose_id_the_api_takes(aws, api, practice):
    client = a_client(practice)
    pressed = api.call("POST", f"/clients/{client.client_id}/sync", practice=practice)
    assert pressed.status == 202, pressed.body
    (message,) = drain(aws.session, aws.queue_url("SyncQueue"))
    assert (message.practice_id, message.client_id) == (practice, client.client_id)
    assert (message.run_id, pressed.body["status"]) == (pressed.body["runId"], "queued")


@pytest.mark.parametrize("practice", PRACTICE_IDS_TAKEN.values(), ids=PRACTICE_IDS_TAKEN.keys())
def test_delete_queues_the_purge_of_a_practice_whose_id_the_api_takes(aws, api, practice):
    client = a_client(practice)
    deleted = api.call("DELETE", f"/clients/{client.client_id}", practice=practice)
    assert deleted.status == 202, deleted.body
    assert [(m.practice_id, m.client_id, m.step) for m in purge_messages(aws)] == [(practice, client.client_id, 0)]


CLIENT_ROUTES = [(r.method, r.path) for r in TEMPLATE.routes() if "{clientId}" in r.path]
# The data routes' other parameters, filled with values valid for any client (a resource of the catalogue, an id).
OTHER_PARAMETERS = {"{resource}": "Invoices", "{xeroId}": "00000000-0000-4000-8000-00000000abcd"}


def concrete(route: str, client_id: str) -> str:
    path = route.replace("{clientId}", client_id)
    for parameter, value in OTHER_PARAMETERS.items():
        path = path.replace(parameter, value)
    return path


@pytest.mark.parametrize(("method", "route"), CLIENT_ROUTES, ids=[f"{m} {p}" for m, p in CLIENT_ROUTES])
def test_every_client_route_answers_another_practice_exactly_as_a_missing_client(api, method, route):
    # Given a client of practice B
    theirs = a_client("practice-b")
    # When practice A calls the route with B's client id, and with an id nobody has
    foreign = api.call(method, concrete(route, theirs.client_id), practice="practice-a", body="{}")
    missing = api.call(method, concrete(route, UNKNOWN_ID), practice="practice-a", body="{}")
    # Then both are the same 404, and B's client is untouched
    assert foreign.status == missing.status == 404
    assert foreign.body == missing.body == {"error": {"code": "client_not_found", "message": "no such client"}}
    assert Client.get("practice-b", theirs.client_id).attribute_values == theirs.attribute_values
