"""Token refresh under real concurrency: the lease is a conditional write, which only the real engine makes
atomic between threads (moto in-process does not)."""

import threading

import pytest

from tests.integration.test_token_store import link_token_set, make_stale
from xero_sync.tokens import TokenStore


@pytest.fixture
def stored(engines, xero):
    tenant = xero.create_org("Token Co")
    store = TokenStore()
    return store, store.create("practice-a", link_token_set(xero, [tenant]), {tenant}), tenant


def test_two_concurrent_refreshes_make_one_call_to_xero_and_both_get_the_new_token(engines, xero, stored):
    store, token_set_id, _ = stored
    make_stale(engines, store, token_set_id)
    calls_before = xero.token_calls()
    results: list[str] = []
    barrier = threading.Barrier(2)

    def refresh() -> None:
        barrier.wait()
        results.append(TokenStore().fresh(token_set_id).access_token.get_secret_value())

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert xero.token_calls() - calls_before == 1
    assert len(results) == 2 and results[0] == results[1]
