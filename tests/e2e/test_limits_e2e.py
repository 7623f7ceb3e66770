"""The limit per practice through the front door: the local stack built with a small PracticeRequestLimit (the
template's parameter, as a deployment would set it), one DynamoDB Local table counting every practice's window."""

from typing import Any

import pytest

from local.stack.offline_stack import OfflineStack
from tests.e2e.conftest import LIMITED_PRACTICE
from tests.e2e.helpers import Api

LIMIT = int(LIMITED_PRACTICE["PracticeRequestLimit"])


@pytest.fixture
def stack(limited_stack: OfflineStack) -> OfflineStack:
    return limited_stack


def test_a_practice_over_its_limit_gets_429_and_another_practice_does_not(
    api: Api, practice: str, seed_client: Any
) -> None:
    # Given a client of the practice and one of another practice
    mine = seed_client(practice, "Limited Ltd")
    other_practice = f"{practice}-other"
    theirs = seed_client(other_practice, "Unlimited Ltd")

    # When the practice presses Sync Now once more than its limit
    answers = [api.post(f"/clients/{mine.client_id}/sync", practice, json={}) for _ in range(LIMIT + 1)]

    # Then the presses within the limit are taken (the first queues, the others find it queued), the next is a 429
    assert [a.status_code for a in answers] == [202] * LIMIT + [429], [a.text for a in answers]
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= int(LIMITED_PRACTICE["PracticeRequestWindowSeconds"])
    # And the other practice, in the same window, is served; reads stay open to the limited one
    assert api.post(f"/clients/{theirs.client_id}/sync", other_practice, json={}).status_code == 202
    assert api.get(f"/clients/{mine.client_id}", practice).status_code == 200


def test_a_second_full_sync_of_a_client_within_the_period_gets_429(api: Api, practice: str, seed_client: Any) -> None:
    from tests.e2e.helpers import eventually

    client = seed_client(f"{practice}-full", "Full Ltd")
    first = api.post(f"/clients/{client.client_id}/sync", f"{practice}-full", json={"mode": "full"})
    assert first.status_code == 202, first.text
    # The worker takes the run (this seeded client has no token set: it fails at once) and frees the client
    eventually(lambda: api.get(f"/clients/{client.client_id}", f"{practice}-full").json()["currentRun"] is None, 60)

    second = api.post(f"/clients/{client.client_id}/sync", f"{practice}-full", json={"mode": "full"})

    assert second.status_code == 429, second.text
    assert second.json()["error"]["code"] == "full_sync_limited"
    assert int(second.headers["Retry-After"]) > 3600
    # And an incremental Sync Now is still taken
    assert api.post(f"/clients/{client.client_id}/sync", f"{practice}-full", json={}).status_code == 202
