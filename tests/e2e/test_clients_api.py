"""An authenticated request goes through the front door (JWT authorizer, payload 2.0) to the clients function and
DynamoDB Local, and comes back as the front end reads it."""

from typing import Any

from tests.e2e.helpers import Api


def test_listing_clients_shows_the_practices_clients_page_by_page(api: Api, practice: str, seed_client: Any) -> None:
    # Given three clients of the practice, one of them unlinked
    seeded = [
        seed_client(practice, "Acme Ltd"),
        seed_client(practice, "Bravo Ltd"),
        seed_client(practice, "Cobalt", False),
    ]

    # When the practice lists its clients two at a time
    first = api.get("/clients?limit=2", practice)
    assert first.status_code == 200, first.text
    cursor = first.json()["nextCursor"]
    second = api.get(f"/clients?limit=2&cursor={cursor}", practice)

    # Then every client comes back once, in camelCase, and the last page has no cursor
    assert second.status_code == 200, second.text
    assert cursor
    assert second.json()["nextCursor"] is None
    items = first.json()["items"] + second.json()["items"]
    assert sorted(item["clientId"] for item in items) == sorted(c.client_id for c in seeded)
    by_id = {item["clientId"]: item for item in items}
    for client in seeded:
        item = by_id[client.client_id]
        assert item["name"] == client.name
        assert item["tenantId"] == client.tenant_id
        assert item["linkState"] == client.link_state
        assert item["lastSuccessfulSyncAt"] is None
        assert item["currentRun"] is None
    assert first.headers["Content-Type"].startswith("application/json")


def test_one_client_overview_comes_back(api: Api, practice: str, seed_client: Any) -> None:
    # Given a linked client
    client = seed_client(practice, "Delta Partners")

    # When the practice asks for it by id
    response = api.get(f"/clients/{client.client_id}", practice)

    # Then its overview comes back
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["clientId"] == client.client_id
    assert body["name"] == "Delta Partners"
    assert body["linkState"] == "linked"
    assert body["linkStateReason"] is None
    assert body["lastError"] is None


def test_a_practice_without_clients_gets_an_empty_page(api: Api, practice: str) -> None:
    response = api.get("/clients", practice)

    assert response.status_code == 200
    assert response.json() == {"items": [], "nextCursor": None}
