"""The Xero callback under attack and under failure: every hostile or failed callback is refused with a clear
outcome and changes nothing (no client, no token set, no queued sync, no connection left at Xero that a practice
relies on), and the browser is only ever sent to the configured front end."""

from urllib.parse import parse_qsl, urlencode, urlparse

import pytest

from tests.api import Api
from tests.integration.test_linking import JSON, callback, connections_at_xero, link, queued, start
from xero_sync.config import get_settings
from xero_sync.models import Client, OAuthState, TokenSetRef
from xero_sync.tokens import TokenStore
from xero_sync.xero_identity import XeroIdentity

OTHER_REDIRECT_URI = "http://127.0.0.1:3001/another/callback"


@pytest.fixture
def api(aws, xero) -> Api:
    return Api(aws.physical)


def nothing_changed(aws, api: Api, practices=("practice-a", "practice-b")) -> None:
    for practice in practices:
        assert api.call("GET", "/clients", practice=practice).body["items"] == [], practice
    assert list(TokenSetRef.scan()) == []
    secrets = aws.session.client("secretsmanager").list_secrets()["SecretList"]
    assert [s["Name"] for s in secrets if "/token-sets/" in s["Name"]] == []
    assert queued(aws) == []


def outcome(response) -> tuple[str, str]:
    assert response.status == 200, response.body
    return response.body["outcome"], response.body["code"]


# --- forged, swapped and misdirected authorisations -----------------------------------------------------------------
def test_another_practices_state_cannot_carry_this_ones_code(aws, xero, api):
    # Given practice A's authorisation answered at Xero (its code), and a state practice B started
    tenant = xero.create_org("Alpha Ltd")
    a_params = xero.consent(start(api, practice="practice-a"), [tenant])
    b_state = dict(parse_qsl(urlparse(start(api, practice="practice-b")).query))["state"]

    # When B's state is sent with A's code (login CSRF / code injection), then A's own callback comes back
    swapped = callback(api, {**a_params, "state": b_state})
    own = callback(api, a_params)

    # Then the swap is refused (the code is bound to A's PKCE challenge), which burns the code; nothing is linked
    assert outcome(swapped) == ("failed", "exchange_failed")
    assert outcome(own)[0] == "failed"
    nothing_changed(aws, api)


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

    # When its code reaches our callback
    response = callback(api, params)

    # Then Xero refuses the exchange (a code is bound to its redirect URI) and nothing changes
    assert outcome(response) == ("failed", "exchange_failed")
    nothing_changed(aws, api)


def test_a_refused_relink_never_removes_a_connection_another_practice_relies_on(aws, xero, api):
    # Given practice B linked an organisation, and practice A has an unlinked client of its own
    shared, own = xero.create_org("Shared Ltd"), xero.create_org("Alpha Ltd")
    (b_client,) = link(api, xero, [shared], practice="practice-b")["clientIds"]
    (a_client,) = link(api, xero, [own], practice="practice-a")["clientIds"]
    api.call("POST", f"/clients/{a_client}/unlink", practice="practice-a")
    queued(aws)

    # When A relinks its client and the same Xero user chooses B's organisation
    response = callback(api, xero.consent(start(api, a_client, practice="practice-a"), [shared]))

    # Then the relink is refused, and the connection B's client relies on (made by B's consent) is kept
    assert outcome(response) == ("failed", "wrong_organisation")
    assert shared in connections_at_xero(xero)
    b_token_set = TokenStore().fresh(Client.get("practice-b", b_client).token_set_id)
    assert shared in {c.tenant_id for c in XeroIdentity().connections(b_token_set)}
    assert api.call("GET", f"/clients/{a_client}", practice="practice-a").body["linkState"] == "unlinked"


# --- Xero's other answers -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("error", ["invalid_scope", "server_error", "temporarily_unavailable", "x" * 2000])
def test_a_xero_error_other_than_denial_fails_clearly_and_consumes_the_state(aws, xero, api, error):
    state = dict(parse_qsl(urlparse(start(api)).query))["state"]

    response = callback(api, {"state": state, "error": error})

    assert outcome(response) == ("failed", "xero_error")
    assert len(response.body["message"]) < 200  # Xero's text is cut, never echoed whole
    assert outcome(callback(api, {"state": state, "code": "late"})) == ("failed", "invalid_state")
    nothing_changed(aws, api)


def test_a_callback_without_a_code_fails_clearly(aws, xero, api):
    state = dict(parse_qsl(urlparse(start(api)).query))["state"]

    response = callback(api, {"state": state})

    assert outcome(response) == ("failed", "missing_code")
    with pytest.raises(OAuthState.DoesNotExist):
        OAuthState.get(state)
    nothing_changed(aws, api)


def test_a_consent_that_chose_no_organisation_links_nothing(aws, xero, api):
    xero.create_org("Alpha Ltd")

    response = callback(api, xero.consent(start(api), []))

    assert outcome(response) == ("failed", "no_organisation")
    nothing_changed(aws, api)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/connect/token", "500"),
        ("/connect/token", "503"),
        ("/connect/token", "timeout"),
        ("/connect/token", "reset"),
        ("/connect/token", "malformed"),  # Xero answered (and used the code) but its answer is garbage
        ("/connections", "503"),
        ("/connections", "malformed"),
    ],
)
def test_xero_unavailable_during_the_exchange_fails_clearly_and_changes_nothing(aws, xero, api, path, kind):
    tenant = xero.create_org("Alpha Ltd")
    params = xero.consent(start(api), [tenant])
    xero.admin("POST", "/faults", json={"path": path, "kind": kind, "holdSeconds": 0.5})

    response = callback(api, params)

    assert outcome(response) == ("failed", "xero_unavailable")
    assert "try again" in response.body["message"].lower()
    nothing_changed(aws, api)


# --- the redirect ---------------------------------------------------------------------------------------------------
HOSTILE_QUERIES = [
    {"state": "s", "redirect_uri": "https://evil.example/"},
    {"state": "s", "next": "//evil.example", "returnTo": "https://evil.example", "return_url": "/\\evil.example"},
    {"state": "https://evil.example/", "code": "//evil.example"},
    {"state": "s", "error": "access_denied\r\nLocation: https://evil.example/"},
    {"state": "s", "error": "x", "error_description": "<script>location='https://evil.example'</script>"},
    {"state": "s\r\nSet-Cookie: a=b", "code": "c"},
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_the_callback_only_ever_redirects_to_the_configured_front_end(aws, xero, api, query):
    frontend = urlparse(str(get_settings().frontend_url))

    response = api.call("GET", "/xero/callback", query=urlencode(query), headers={})

    assert response.status == 302
    location = response.headers["Location"]
    assert "\r" not in location and "\n" not in location
    target = urlparse(location)
    assert (target.scheme, target.netloc, target.path) == (frontend.scheme, frontend.netloc, frontend.path)
    assert set(dict(parse_qsl(target.query))) <= {"outcome", "code", "clientIds"}
    assert "evil" not in location
    assert set(response.headers) <= {"Location", "Content-Type"}
    nothing_changed(aws, api)


def test_the_json_answer_names_no_url(aws, xero, api):
    response = api.call("GET", "/xero/callback", query=urlencode(HOSTILE_QUERIES[0]), headers=JSON)

    assert outcome(response) == ("failed", "invalid_state")
    assert "evil" not in str(response.body)
