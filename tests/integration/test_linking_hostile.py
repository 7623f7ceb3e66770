"""Link completions under attack and under failure: only the user who started a link can complete it, and every
hostile or failed completion is refused with a code in the API's error shape and changes nothing (no client, no
token set, no queued sync, no code exchanged for someone else, no connection left at Xero that a practice relies on).
"""

import json
from urllib.parse import parse_qsl, urlencode, urlparse

import pytest
from botocore.exceptions import ReadTimeoutError

from tests.api import Api
from tests.integration.test_linking import complete, connections_at_xero, link, queued, refusal, start
from xero_sync.config import get_settings
from xero_sync.models import Client, OAuthState, TokenSetRef
from xero_sync.tables import shared_connection
from xero_sync.tokens import TokenStore
from xero_sync.xero_identity import XeroIdentity

OTHER_REDIRECT_URI = "http://127.0.0.1:3000/another/callback"


def nothing_changed(aws, api: Api, practices=("practice-a", "practice-b")) -> None:
    for practice in practices:
        assert api.call("GET", "/clients", practice=practice).body["items"] == [], practice
    assert list(TokenSetRef.scan()) == []
    secrets = aws.session.client("secretsmanager").list_secrets()["SecretList"]
    assert [s["Name"] for s in secrets if "/token-sets/" in s["Name"]] == []
    assert queued(aws) == []


def state_of(authorize_url: str) -> str:
    return dict(parse_qsl(urlparse(authorize_url).query))["state"]


# --- whose link it is -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("practice", "user"),
    [("practice-b", "user-1"), ("practice-b", "user-9"), ("practice-a", "user-2")],
    ids=["another practice, same sub", "another practice", "another user of the same practice"],
)
def test_a_link_completed_by_anyone_but_the_user_who_started_it_is_refused_and_the_code_never_exchanged(
    aws, xero, api, practice, user
):
    # Given user-1 of practice A started a link, and someone else approved it in Xero with their own organisation
    # (A's user sent them the authorize URL, or they saw it on a shared screen)
    theirs = xero.create_org("Stranger Ltd", user_id="stranger")
    params = xero.consent(start(api, practice="practice-a"), [theirs], user_id="stranger")
    exchanges_before = xero.token_calls()

    # When their browser reaches the callback page and completes the link with their own JWT
    response = complete(api, params, practice=practice, user=user)

    # Then it is refused, the code is never exchanged, and nothing lands in either practice
    assert refusal(response) == (403, "state_mismatch")
    assert xero.token_calls() == exchanges_before
    nothing_changed(aws, api)
    # And the state is left for the user who started it (a refusal must not let strangers cancel links)
    assert OAuthState.get(params["state"]).user_id == "user-1"


def test_a_link_completed_without_a_practice_in_the_token_is_refused_before_the_state_is_read(aws, xero, api):
    tenant = xero.create_org("Alpha Ltd")
    params = xero.consent(start(api), [tenant])

    response = complete(api, params, practice=None)

    assert (response.status, response.body["error"]["code"]) == (401, "unauthorized")
    assert OAuthState.get(params["state"]).practice_id == "practice-a"
    nothing_changed(aws, api)


def test_another_users_state_cannot_carry_this_users_code(aws, xero, api):
    # Given practice A's user answered its own authorisation at Xero (its code), and a state practice B started
    tenant = xero.create_org("Alpha Ltd")
    a_params = xero.consent(start(api, practice="practice-a"), [tenant])
    b_state = state_of(start(api, practice="practice-b"))

    # When A's user is made to send B's state with A's code (login CSRF / code injection)
    swapped = complete(api, {**a_params, "state": b_state})

    # Then the swap is refused before any exchange, so A's own completion still links A's organisation, in A only
    assert refusal(swapped) == (403, "state_mismatch")
    nothing_changed(aws, api)
    own = complete(api, a_params)
    assert own.status == 200 and own.body["outcome"] == "linked"
    assert api.call("GET", "/clients", practice="practice-b").body["items"] == []


def test_a_code_issued_for_another_redirect_uri_is_refused(aws, xero, api):
    # Given the app also registers another redirect URI, and an authorisation (our state, our PKCE challenge)
    # that the user answered for that other URI
    settings = get_settings()
    xero.emulator.register_app(
        "local-xero-app", "local-xero-app-secret", [str(settings.xero_redirect_uri), OTHER_REDIRECT_URI]
    )
    tenant = xero.create_org("Alpha Ltd")
    url = urlparse(start(api))
    query = {**dict(parse_qsl(url.query)), "redirect_uri": OTHER_REDIRECT_URI}
    params = xero.consent(url._replace(query=urlencode(query)).geturl(), [tenant])

    # When its code is completed here
    response = complete(api, params)

    # Then Xero refuses the exchange (a code is bound to its redirect URI) and nothing changes
    assert refusal(response) == (400, "exchange_failed")
    nothing_changed(aws, api)


def test_a_refused_relink_never_removes_a_connection_another_practice_relies_on(aws, xero, api):
    # Given practice B linked an organisation, and practice A has an unlinked client of its own
    shared, own = xero.create_org("Shared Ltd"), xero.create_org("Alpha Ltd")
    (b_client,) = link(api, xero, [shared], practice="practice-b")["clientIds"]
    (a_client,) = link(api, xero, [own], practice="practice-a")["clientIds"]
    api.call("POST", f"/clients/{a_client}/unlink", practice="practice-a")
    queued(aws)

    # When A relinks its client and the same Xero user chooses B's organisation
    response = complete(api, xero.consent(start(api, a_client, practice="practice-a"), [shared]))

    # Then the relink is refused, and the connection B's client relies on (made by B's consent) is kept
    assert refusal(response) == (409, "wrong_organisation")
    assert shared in connections_at_xero(xero)
    b_token_set = TokenStore().fresh(Client.get("practice-b", b_client).token_set_id)
    assert shared in {c.tenant_id for c in XeroIdentity().connections(b_token_set)}
    assert api.call("GET", f"/clients/{a_client}", practice="practice-a").body["linkState"] == "unlinked"


# --- Xero's other answers -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("error", ["invalid_scope", "server_error", "temporarily_unavailable", "x" * 256])
def test_a_xero_error_other_than_denial_fails_clearly_and_consumes_the_state(aws, xero, api, error):
    state = state_of(start(api))

    response = complete(api, {"state": state, "error": error})

    assert refusal(response) == (400, "xero_error")
    assert error not in json.dumps(response.body)  # Xero's text is never echoed
    assert refusal(complete(api, {"state": state, "code": "late"})) == (400, "invalid_state")
    nothing_changed(aws, api)


def test_a_completion_without_a_code_fails_clearly(aws, xero, api):
    state = state_of(start(api))

    response = complete(api, {"state": state})

    assert refusal(response) == (400, "missing_code")
    with pytest.raises(OAuthState.DoesNotExist):
        OAuthState.get(state)
    nothing_changed(aws, api)


def test_a_consent_that_chose_no_organisation_links_nothing(aws, xero, api):
    xero.create_org("Alpha Ltd")

    response = complete(api, xero.consent(start(api), []))

    assert refusal(response) == (400, "no_organisation")
    nothing_changed(aws, api)


@pytest.mark.parametrize(
    ("path", "kind", "code"),
    [
        ("/connect/token", "500", "xero_unavailable"),
        ("/connect/token", "503", "xero_unavailable"),
        ("/connect/token", "timeout", "xero_unavailable"),
        ("/connect/token", "reset", "xero_unavailable"),
        # Xero answered (and spent the code) with something that is not a token set: start again
        ("/connect/token", "malformed", "exchange_failed"),
        ("/connect/token", "opaque-token", "exchange_failed"),
        ("/connect/token", "no-auth-event", "exchange_failed"),
        ("/connections", "503", "xero_unavailable"),
        ("/connections", "malformed", "exchange_failed"),
    ],
)
def test_xero_failing_or_answering_unlike_xero_during_the_exchange_fails_clearly_and_changes_nothing(
    aws, xero, api, path, kind, code
):
    tenant = xero.create_org("Alpha Ltd")
    params = xero.consent(start(api), [tenant])
    xero.admin("POST", "/faults", json={"path": path, "kind": kind, "holdSeconds": 0.5})

    response = complete(api, params)

    assert refusal(response) == ({"xero_unavailable": 503, "exchange_failed": 400}[code], code)
    assert "again" in response.body["error"]["message"].lower()
    nothing_changed(aws, api)


@pytest.mark.parametrize("kind", ["opaque-token", "no-auth-event"])
def test_a_token_that_cannot_name_its_consent_never_lists_every_connection_of_the_xero_user(aws, xero, api, kind):
    # Given the Xero user already connected another organisation to the app (for practice B)
    other = xero.create_org("Beta Ltd")
    link(api, xero, [other], practice="practice-b")
    queued(aws)
    tenant = xero.create_org("Alpha Ltd")
    params = xero.consent(start(api), [tenant])
    xero.admin("POST", "/faults", json={"path": "/connect/token", "kind": kind})
    xero.admin("DELETE", "/stats")

    # When the code exchange answers a token without its authentication event id (or not a JWT at all)
    response = complete(api, params)

    # Then the link fails closed: the connections are never listed unfiltered, and practice A gets nothing
    assert refusal(response) == (400, "exchange_failed")
    calls = xero.admin("GET", "/stats").json()["tenants"].get("(none)", {}).get("calls", {})
    assert "GET /connections" not in calls
    assert api.call("GET", "/clients", practice="practice-a").body["items"] == []


# --- what a completion may carry ------------------------------------------------------------------------------------
HOSTILE_COMPLETIONS = [
    {"state": "https://evil.example/", "code": "//evil.example"},
    {"state": "s" * 16, "error": "access_denied\r\nLocation: https://evil.example/"},
    {"state": "s\r\nSet-Cookie: a=b", "code": "c"},
    {"state": "../../" + "a" * 20, "code": "c"},
]


@pytest.mark.parametrize("completion", HOSTILE_COMPLETIONS)
def test_a_hostile_completion_is_refused_without_echoing_it(aws, xero, api, completion):
    response = complete(api, completion)

    assert refusal(response) == (400, "invalid_state")
    assert "evil" not in json.dumps(response.body) and "Set-Cookie" not in json.dumps(response.body)
    nothing_changed(aws, api)


# --- DynamoDB's answer lost -----------------------------------------------------------------------------------------
def test_a_link_whose_write_landed_but_whose_answer_was_lost_keeps_the_clients_token_set(aws, xero, api):
    # Given DynamoDB applying the link's transaction and its answer not reaching us (a timeout after the write)
    tenant = xero.create_org("Lost Answer Ltd")
    events, lost = shared_connection().client.meta.events, []

    def answer_lost(**_: object) -> None:
        if not lost:
            lost.append(True)
            raise ReadTimeoutError(endpoint_url="dynamodb")

    events.register("after-call.dynamodb.TransactWriteItems", answer_lost)
    try:
        response = complete(api, xero.consent(start(api), [tenant]), "practice-a")
    finally:
        events.unregister("after-call.dynamodb.TransactWriteItems", answer_lost)

    # Then the completion fails as it is (not written again over its own write), and the client it did write is
    # linked with its token set whole: Sync Now syncs it
    assert (response.status, response.body["error"]["code"]) == (500, "internal_error")
    (client,) = Client.query("practice-a")
    assert client.link_state == "linked"
    assert TokenSetRef.get(client.token_set_id).tenant_ids == {tenant}
    assert api.call("POST", f"/clients/{client.client_id}/sync").status == 202
