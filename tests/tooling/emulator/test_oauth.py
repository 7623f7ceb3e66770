"""OAuth2 and the Identity API, as Xero behaves (facts file §1)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import jwt
import requests

from tests.tooling.emulator.helpers import ALL_SCOPES, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Xero, pkce_pair


def _query(response: requests.Response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(response.headers["Location"]).query).items()}


def test_consent_page_lists_the_users_orgs_with_stable_controls_and_allow_redirects_with_code(xero: Xero) -> None:
    # Given a user with two organisations and another user's organisation
    a = xero.create_org("Alpha Ltd", seed=1)
    b = xero.create_org("Beta Ltd", seed=2)
    other = xero.create_org("Gamma Ltd", seed=3, userId="someone-else")
    # When the app sends the user to authorize
    page = xero.authorize(state="s1")
    # Then an HTML consent page lists only that user's orgs as checkboxes, with Allow and Deny buttons
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    html = page.text
    assert f'name="tenantId" value="{a["tenantId"]}"' in html and f'value="{b["tenantId"]}"' in html
    assert other["tenantId"] not in html
    assert 'id="allow"' in html and 'id="deny"' in html
    request_id = re.search(r'name="request_id" value="([^"]+)"', html).group(1)
    # When the user ticks one org and presses Allow
    answer = xero.session.post(
        f"{xero.base_url}/identity/connect/authorize",
        data={"request_id": request_id, "tenantId": a["tenantId"], "action": "allow"},
        allow_redirects=False,
    )
    # Then the browser goes back to the redirect_uri with a code and the state
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(REDIRECT_URI + "?")
    query = _query(answer)
    assert query["state"] == "s1" and query["code"]
    tokens = xero.token({"grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT_URI})
    assert tokens.status_code == 200
    # And only the chosen org is connected
    connections = xero.connections(tokens.json()["access_token"]).json()
    assert [c["tenantId"] for c in connections] == [a["tenantId"]]


def test_consent_page_deny_redirects_with_access_denied(xero: Xero) -> None:
    # Given a consent page
    xero.create_org("Alpha Ltd", seed=1)
    html = xero.authorize(state="s2").text
    request_id = re.search(r'name="request_id" value="([^"]+)"', html).group(1)
    # When the user presses Deny
    answer = xero.session.post(
        f"{xero.base_url}/identity/connect/authorize",
        data={"request_id": request_id, "action": "deny"},
        allow_redirects=False,
    )
    # Then the redirect carries error=access_denied and the state
    assert answer.status_code == 302
    assert _query(answer) == {"error": "access_denied", "state": "s2"}


def test_allow_without_choosing_an_org_shows_the_page_again(xero: Xero) -> None:
    xero.create_org("Alpha Ltd", seed=1)
    html = xero.authorize().text
    request_id = re.search(r'name="request_id" value="([^"]+)"', html).group(1)
    answer = xero.session.post(
        f"{xero.base_url}/identity/connect/authorize",
        data={"request_id": request_id, "action": "allow"},
        allow_redirects=False,
    )
    assert answer.status_code == 200 and "Select at least one organisation" in answer.text


def test_headless_consent_answers_the_next_authorize_at_once(xero: Xero) -> None:
    # Given a scripted denial
    xero.create_org("Alpha Ltd", seed=1)
    assert xero.admin("POST", "/consent", json={"deny": True}).status_code == 201
    # When the app sends the user to authorize, Then it is redirected at once with access_denied
    answer = xero.authorize(state="abc")
    assert answer.status_code == 302 and _query(answer)["error"] == "access_denied"
    # And the script is used up: the next authorize shows the page
    assert xero.authorize().status_code == 200


def test_unknown_client_or_unregistered_redirect_uri_shows_an_error_page_and_never_redirects(xero: Xero) -> None:
    bad_client = xero.authorize(client_id="nope")
    assert bad_client.status_code == 400 and "Location" not in bad_client.headers
    assert "unauthorized_client" in bad_client.text
    # Exact match: a trailing slash or another path is a different URI
    for uri in (REDIRECT_URI + "/", "http://localhost:8080/other", "http://evil.example/callback"):
        response = xero.authorize(redirect_uri=uri)
        assert response.status_code == 400 and "Location" not in response.headers, uri
        assert "invalid_request" in response.text


def test_bad_scope_and_response_type_redirect_with_errors(xero: Xero) -> None:
    assert _query(xero.authorize(scope="accounting.transactions bogus.scope"))["error"] == "invalid_scope"
    assert _query(xero.authorize(response_type="token"))["error"] == "unsupported_response_type"


def test_token_set_has_xeros_shape_and_a_30_minute_jwt(connected) -> None:
    # Given a fresh token set
    xero, _, tokens = connected
    # Then it has Xero's fields
    assert set(tokens) == {"access_token", "refresh_token", "expires_in", "token_type", "scope", "id_token"}
    assert tokens["expires_in"] == 1800 and tokens["token_type"] == "Bearer"
    assert tokens["scope"] == ALL_SCOPES
    # And the access token is a JWT that lives 1800 s, carrying the client and scopes
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["nbf"] == 1800
    assert claims["client_id"] == CLIENT_ID and "accounting.transactions.read" in claims["scope"]
    # And its signature checks out against the published JWKS
    jwks = requests.get(f"{xero.base_url}/.well-known/openid-configuration/jwks", timeout=10).json()
    key = jwt.PyJWK(jwks["keys"][0])
    assert jwt.decode(tokens["access_token"], key.key, algorithms=["RS256"], options={"verify_aud": False})


def test_no_refresh_token_without_offline_access_and_no_id_token_without_openid(xero: Xero) -> None:
    org = xero.create_org()
    tokens = xero.login([org["tenantId"]], scope="accounting.transactions.read")
    assert "refresh_token" not in tokens and "id_token" not in tokens


def test_client_can_authenticate_with_form_fields_instead_of_basic(xero: Xero) -> None:
    org = xero.create_org()
    code = xero.consent_code([org["tenantId"]])
    response = xero.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        basic=False,
    )
    assert response.status_code == 200


def test_wrong_secret_is_invalid_client(xero: Xero) -> None:
    org = xero.create_org()
    code = xero.consent_code([org["tenantId"]])
    response = requests.post(
        f"{xero.base_url}/connect/token",
        auth=(CLIENT_ID, "wrong"),
        timeout=10,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
    )
    assert response.status_code == 400 and response.json() == {"error": "invalid_client"}


def test_codes_are_single_use_and_bound_to_the_redirect_uri(xero: Xero) -> None:
    org = xero.create_org()
    code = xero.consent_code([org["tenantId"]])
    # A different redirect_uri at exchange is refused (and burns the code)
    wrong = xero.token({"grant_type": "authorization_code", "code": code, "redirect_uri": "http://localhost/x"})
    assert wrong.status_code == 400 and wrong.json() == {"error": "invalid_grant"}
    again = xero.token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})
    assert again.json() == {"error": "invalid_grant"}
    # A good code works once only
    code = xero.consent_code([org["tenantId"]])
    assert xero.token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}).ok
    reused = xero.token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})
    assert reused.status_code == 400 and reused.json() == {"error": "invalid_grant"}


def test_codes_expire(xero: Xero) -> None:
    org = xero.create_org()
    code = xero.consent_code([org["tenantId"]])
    xero.admin("POST", "/clock", json={"advance": 301})
    response = xero.token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})
    assert response.json() == {"error": "invalid_grant"}


def test_pkce_public_client_with_the_right_verifier_gets_tokens(xero: Xero) -> None:
    # Given a PKCE app without a secret
    xero.admin("POST", "/apps", json={"clientId": "pkce-app", "redirectUris": [REDIRECT_URI]})
    org = xero.create_org()
    verifier, challenge = pkce_pair()
    code = xero.consent_code([org["tenantId"]], client_id="pkce-app", challenge=challenge)
    # When it exchanges the code sending only client_id and the verifier
    response = requests.post(
        f"{xero.base_url}/connect/token",
        timeout=10,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": "pkce-app",
            "code_verifier": verifier,
        },
    )
    # Then it gets a token set, and can refresh without a secret
    assert response.status_code == 200, response.text
    refreshed = requests.post(
        f"{xero.base_url}/connect/token",
        timeout=10,
        data={
            "grant_type": "refresh_token",
            "refresh_token": response.json()["refresh_token"],
            "client_id": "pkce-app",
        },
    )
    assert refreshed.status_code == 200


def test_pkce_with_a_wrong_or_missing_verifier_is_invalid_grant(xero: Xero) -> None:
    xero.admin("POST", "/apps", json={"clientId": "pkce-app", "redirectUris": [REDIRECT_URI]})
    org = xero.create_org()
    for verifier in ("x" * 50, None):
        _, challenge = pkce_pair()
        code = xero.consent_code([org["tenantId"]], client_id="pkce-app", challenge=challenge)
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "client_id": "pkce-app"}
        if verifier:
            data["code_verifier"] = verifier
        response = requests.post(f"{xero.base_url}/connect/token", data=data, timeout=10)
        assert response.status_code == 400 and response.json() == {"error": "invalid_grant"}


def test_pkce_app_must_send_a_challenge(xero: Xero) -> None:
    xero.admin("POST", "/apps", json={"clientId": "pkce-app", "redirectUris": [REDIRECT_URI]})
    response = xero.authorize(client_id="pkce-app")
    assert response.status_code == 302 and _query(response)["error"] == "invalid_request"


def test_refresh_rotates_and_the_old_token_has_a_30_minute_grace(connected) -> None:
    xero, tenant_id, tokens = connected
    first = tokens["refresh_token"]
    # When the app refreshes
    rotated = xero.refresh(first)
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    # Then the refresh token rotates
    assert second != first
    # And within 30 minutes the old one still returns a valid token set
    xero.admin("POST", "/clock", json={"advance": 29 * 60})
    retry = xero.refresh(first)
    assert retry.status_code == 200
    assert xero.get("Organisation", retry.json()["access_token"], tenant_id).status_code == 200
    # But after the grace period it is invalid_grant, while the newest token still works
    xero.admin("POST", "/clock", json={"advance": 2 * 60})
    stale = xero.refresh(first)
    assert stale.status_code == 400 and stale.json() == {"error": "invalid_grant"}
    assert xero.refresh(retry.json()["refresh_token"]).status_code == 200


def test_refresh_tokens_expire_after_60_days_unused(connected) -> None:
    xero, _, tokens = connected
    xero.admin("POST", "/clock", json={"advance": 59 * 86_400})
    fresh = xero.refresh(tokens["refresh_token"])
    assert fresh.status_code == 200
    xero.admin("POST", "/clock", json={"advance": 60 * 86_400 + 1})
    assert xero.refresh(fresh.json()["refresh_token"]).json() == {"error": "invalid_grant"}


def test_access_token_expires_after_30_minutes_with_xeros_401(connected) -> None:
    xero, tenant_id, tokens = connected
    assert xero.get("Organisation", tokens["access_token"], tenant_id).status_code == 200
    xero.admin("POST", "/clock", json={"advance": 1800})
    response = xero.get("Organisation", tokens["access_token"], tenant_id)
    assert response.status_code == 401
    body = response.json()
    assert body["Title"] == "Unauthorized" and body["Detail"].startswith("TokenExpired: token expired at ")
    assert "invalid_token" in response.headers["WWW-Authenticate"]


def test_garbage_token_is_401_authentication_unsuccessful(connected) -> None:
    xero, tenant_id, _ = connected
    response = xero.get("Organisation", "not-a-jwt", tenant_id)
    assert response.status_code == 401 and response.json()["Detail"] == "AuthenticationUnsuccessful"
    no_header = requests.get(
        f"{xero.base_url}/api.xro/2.0/Organisation",
        timeout=10,
        headers={"Accept": "application/json", "xero-tenant-id": tenant_id},
    )
    assert no_header.status_code == 401


def test_refresh_token_of_another_client_is_invalid_grant(connected) -> None:
    xero, _, tokens = connected
    xero.admin("POST", "/apps", json={"clientId": "other", "clientSecret": "s2", "redirectUris": [REDIRECT_URI]})
    response = requests.post(
        f"{xero.base_url}/connect/token",
        auth=("other", "s2"),
        timeout=10,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert response.json() == {"error": "invalid_grant"}


def test_one_token_set_reaches_every_org_connected_in_its_consent(xero: Xero) -> None:
    a = xero.create_org("Alpha Ltd", seed=1)
    b = xero.create_org("Beta Ltd", seed=2)
    c = xero.create_org("Gamma Ltd", seed=4)
    tokens = xero.login([a["tenantId"], b["tenantId"]])
    connections = xero.connections(tokens["access_token"]).json()
    assert {x["tenantId"] for x in connections} == {a["tenantId"], b["tenantId"]}
    assert len({x["authEventId"] for x in connections}) == 1
    for org in (a, b):
        assert xero.get("Organisation", tokens["access_token"], org["tenantId"]).status_code == 200
    # An org of the same user that was not connected is 403
    assert xero.get("Organisation", tokens["access_token"], c["tenantId"]).status_code == 403


def test_reconsent_keeps_the_connection_id_with_a_new_auth_event(xero: Xero) -> None:
    a = xero.create_org("Alpha Ltd", seed=1)
    b = xero.create_org("Beta Ltd", seed=2)
    first = xero.connections(xero.login([a["tenantId"]])["access_token"]).json()[0]
    xero.admin("POST", "/clock", json={"advance": 5})
    tokens = xero.login([a["tenantId"], b["tenantId"]])
    connections = {c["tenantId"]: c for c in xero.connections(tokens["access_token"]).json()}
    again = connections[a["tenantId"]]
    assert again["id"] == first["id"]
    assert again["authEventId"] != first["authEventId"]
    assert again["createdDateUtc"] == first["createdDateUtc"]
    assert again["updatedDateUtc"] > first["updatedDateUtc"]
    # authEventId filter returns the connections of that consent
    filtered = xero.connections(tokens["access_token"], authEventId=again["authEventId"]).json()
    assert {c["tenantId"] for c in filtered} == {a["tenantId"], b["tenantId"]}


def test_delete_connection_is_204_then_404_and_the_tenant_gets_403(connected) -> None:
    xero, tenant_id, tokens = connected
    token = tokens["access_token"]
    connection = xero.connections(token).json()[0]
    url = f"{xero.base_url}/connections/{connection['id']}"
    assert requests.delete(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 204
    assert requests.delete(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 404
    assert xero.connections(token).json() == []
    response = xero.get("Organisation", token, tenant_id)
    assert response.status_code == 403 and response.json()["Detail"] == "AuthenticationUnsuccessful"


def test_connections_response_carries_only_the_app_minute_header(connected) -> None:
    xero, _, tokens = connected
    response = xero.connections(tokens["access_token"])
    assert "X-AppMinLimit-Remaining" in response.headers
    assert "X-MinLimit-Remaining" not in response.headers and "X-DayLimit-Remaining" not in response.headers


def test_revocation_ends_the_refresh_token_access_tokens_and_connections(connected) -> None:
    xero, tenant_id, tokens = connected
    response = requests.post(
        f"{xero.base_url}/connect/revocation",
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
        data={"token": tokens["refresh_token"]},
    )
    assert response.status_code == 200
    assert xero.refresh(tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    assert xero.get("Organisation", tokens["access_token"], tenant_id).status_code == 401
    connections = xero.admin("GET", "/connections").json()["connections"]
    assert connections == []
