"""What only the real engine can show: conditional transactions under real concurrency, the sparse index,
paging keys and TTL, as template.yaml declares them."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from tests.builders import a_client
from xero_sync.clients import list_clients
from xero_sync.ids import new_run_id
from xero_sync.models import Client, LinkState, RunTrigger, SyncRun
from xero_sync.runs import begin_run
from xero_sync.schemas import SyncMessage
from xero_sync.sync_requests import request_sync


def test_concurrent_sync_now_presses_create_exactly_one_run(practice):
    # Given a linked client
    client = a_client(practice)
    # When eight presses of Sync Now race each other
    with ThreadPoolExecutor(max_workers=8) as pool:
        accepted = list(pool.map(lambda _: request_sync(practice, client.client_id, RunTrigger.MANUAL), range(8)))
    # Then they all name one run, and one run exists
    assert len({a.run_id for a in accepted}) == 1
    assert [r.run_id for r in SyncRun.query(client.client_id)] == [accepted[0].run_id]


def test_concurrent_nightly_messages_for_one_client_start_exactly_one_run(practice):
    client = a_client(practice)
    now = datetime.now(UTC)
    messages = [
        SyncMessage(
            practice_id=practice, client_id=client.client_id, run_id=new_run_id(now), trigger=RunTrigger.NIGHTLY
        )
        for _ in range(6)
    ]
    with ThreadPoolExecutor(max_workers=6) as pool:
        begun = [b for b in pool.map(begin_run, messages) if b is not None]
    assert len(begun) == 1
    assert [r.run_id for r in SyncRun.query(client.client_id)] == [begun[0].run.run_id]
    assert Client.get(practice, client.client_id).current_run_id == begun[0].run.run_id


def in_state(practice: str, state: LinkState) -> set[str]:
    return {c.client_id for c in Client.by_link_state.query(state.value) if c.practice_id == practice}


def test_the_link_state_index_files_each_client_under_its_state_and_a_deleted_one_nowhere(practice):
    linked = a_client(practice)
    unlinked = a_client(practice, state=LinkState.UNLINKED)
    assert (in_state(practice, LinkState.LINKED), in_state(practice, LinkState.UNLINKED)) == (
        {linked.client_id},
        {unlinked.client_id},
    )
    # When the linked one needs a relink, it moves to that partition (and is counted there)
    linked.update(actions=Client.link_state_actions(LinkState.NEEDS_RELINK, "Xero refused the token"))
    assert in_state(practice, LinkState.LINKED) == set()
    assert in_state(practice, LinkState.NEEDS_RELINK) == {linked.client_id}
    assert Client.by_link_state.count(LinkState.NEEDS_RELINK.value) >= 1
    # And a client whose key is removed (being deleted) leaves the index altogether
    unlinked.update(actions=[Client.link_state_key.remove()])
    assert all(unlinked.client_id not in in_state(practice, state) for state in LinkState)


def test_paging_walks_every_client_exactly_once(practice):
    created = {a_client(practice).client_id for _ in range(45)}
    seen: list[str] = []
    cursor = None
    while True:
        page = list_clients(practice, limit=20, cursor=cursor)
        seen.extend(c.client_id for c in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(created)


def test_oauth_states_expire_by_ttl(engines):
    dynamodb = engines.session.client("dynamodb")
    table = engines.physical["OAuthStatesTable"].ref
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
