"""The front door's JWT authorizer answers 401 exactly as API Gateway does, before any function runs, and a
practice's token never reaches another practice's clients."""

import time
from typing import Any

import pytest

from local.stack.jwt_auth import SigningKey, TokenIssuer
from local.stack.offline_stack import OfflineStack
from tests.e2e.helpers import Api

UNAUTHORIZED = {"message": "Unauthorized"}


def _bad_tokens(stack: OfflineStack, practice: str) -> dict[str, str | None]:
    assert stack.issuer is not None
    stranger = TokenIssuer(SigningKey.generate(), stack.issuer.issuer, stack.issuer.audience)
    forged = stack.token(practice)
    header, payload, signature = forged.split(".")
    return {
        "no token": None,
        "not a JWT": "not-a-jwt",
        "signed by another key": stranger.mint(practice),
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "expired": stack.token(practice, exp=int(time.time()) - 60, iat=int(time.time()) - 120),
        "not yet valid": stack.token(practice, nbf=int(time.time()) + 600),
        "wrong audience": stack.token(practice, aud="another-api"),
        "wrong issuer": stack.token(practice, iss="https://evil.example/"),
        "no expiry": stack.token(practice, exp=None),
    }


@pytest.mark.parametrize(
    "case",
    [
        "no token",
        "not a JWT",
        "signed by another key",
        "tampered signature",
        "expired",
        "not yet valid",
        "wrong audience",
        "wrong issuer",
        "no expiry",
    ],
)
def test_a_request_without_a_valid_token_is_refused_before_the_function_runs(
    stack: OfflineStack, api: Api, practice: str, seed_client: Any, case: str
) -> None:
    # Given a practice's client and a request whose token is not acceptable
    client = seed_client(practice, "Echo Ltd")
    token = _bad_tokens(stack, practice)[case]
    invocations = _invocations(stack)

    # When it calls the API
    listing = api.request("GET", "/clients", token=token)
    sync_now = api.request("POST", f"/clients/{client.client_id}/sync", token=token)

    # Then API Gateway's own 401 comes back and no function ran (no run was queued)
    for response in (listing, sync_now):
        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert _invocations(stack) == invocations
    assert api.get(f"/clients/{client.client_id}", practice).json()["currentRun"] is None


def test_the_token_is_accepted_with_or_without_the_bearer_scheme(stack: OfflineStack, api: Api, practice: str) -> None:
    token = stack.token(practice)

    bare = api.get("/clients", headers={"Authorization": token})
    lower_case_scheme = api.get("/clients", headers={"authorization": f"bearer {token}"})

    assert bare.status_code == 200
    assert lower_case_scheme.status_code == 200


def test_a_token_without_the_practice_claim_is_refused_by_the_function(stack: OfflineStack, api: Api) -> None:
    response = api.request("GET", "/clients", token=stack.token(None))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_another_practice_sees_nothing_of_this_ones_clients(api: Api, practice: str, seed_client: Any) -> None:
    # Given a linked client of this practice
    client = seed_client(practice, "Foxtrot Ltd")
    other = f"{practice}-other"

    # When another practice lists, reads, asks for the history of, and syncs that client
    listing = api.get("/clients", other)
    overview = api.get(f"/clients/{client.client_id}", other)
    history = api.get(f"/clients/{client.client_id}/syncs", other)
    sync_now = api.post(f"/clients/{client.client_id}/sync", other)

    # Then it sees nothing: an empty list, and "no such client" for the rest, exactly as for a missing client
    assert listing.status_code == 200
    assert listing.json() == {"items": [], "nextCursor": None}
    for response in (overview, history, sync_now):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "client_not_found"
    missing = api.get("/clients/00000000-0000-4000-8000-000000000000", other)
    assert missing.json() == overview.json()
    # ... and the owner still sees its client untouched (nothing was queued)
    assert api.get(f"/clients/{client.client_id}", practice).json()["currentRun"] is None


def test_completing_a_link_needs_a_token_and_the_old_callback_is_gone(stack: OfflineStack, api: Api) -> None:
    before = stack.functions.runtimes["LinkFunction"].invocations if stack.functions else 0

    response = api.post("/xero/link-completions", json={"state": "x" * 43, "code": "abc"})

    # The authorizer refuses it: the function is never called, so no state is even looked up
    assert response.status_code == 401
    assert stack.functions is not None and stack.functions.runtimes["LinkFunction"].invocations == before
    assert api.get("/xero/callback?code=abc&state=xyz", allow_redirects=False).status_code == 404


def _invocations(stack: OfflineStack) -> int:
    assert stack.functions is not None
    return sum(stack.functions.runtimes[name].invocations for name in ("ClientsFunction", "SyncNowFunction"))


def test_concurrent_requests_never_answer_with_another_requests_event(stack, seed_client):
    """Powertools keeps the current event on a class (one invocation per process in Lambda): the local stack must
    never let two HTTP invocations overlap, or one caller's headers and practice leak into another's answer."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from tests.e2e.helpers import Api

    # Given practices with one client each
    practices = {f"practice-{uuid.uuid4()}": "" for _ in range(4)}
    for practice in practices:
        practices[practice] = seed_client(practice, f"Own client of {practice}").client_id
    tokens = {practice: stack.token(practice) for practice in practices}

    # When users complete links that are not theirs (the answer depends on the caller's practice and user, read
    # after the state's lookup) while the practices list their clients at the same time
    started = {practice: Api(stack).post("/clients/link", practice).json()["authorizeUrl"] for practice in practices}
    states = [url.split("state=", 1)[1].split("&", 1)[0] for url in started.values()]

    def callback(attempt: int) -> int:
        practice = list(practices)[attempt % len(practices)]
        state = states[(attempt + 1) % len(states)]  # another practice's
        return Api(stack).post("/xero/link-completions", practice, json={"state": state, "code": "c"}).status_code

    def listed(practice: str) -> tuple[str, list[str]]:
        response = Api(stack).request("GET", "/clients", token=tokens[practice], headers={"Accept": "application/json"})
        return practice, [c["clientId"] for c in response.json()["items"]]

    with ThreadPoolExecutor(max_workers=6) as pool:
        redirects = pool.map(callback, range(40))
        answers = pool.map(listed, list(practices) * 20)
        redirects, answers = list(redirects), list(answers)

    # Then every completion is refused as another's and every practice sees exactly its own client
    assert set(redirects) == {403}
    assert all(client_ids == [practices[practice]] for practice, client_ids in answers)
