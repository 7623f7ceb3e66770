"""Tokens under torture: many refreshes across concurrent workers, with a failure injected at every step of a
refresh, against the real engines where their behaviour matters: DynamoDB Local for the lease (a conditional write),
the Xero emulator's /connect/token for rotation and its 30-minute grace, a moto server for Secrets Manager.

Steps a refresh can fail at (one drawn per refresh, from a seeded generator):
- before Xero answers: a 500, 503, connection reset or timeout from /connect/token (Xero rotated nothing);
- after Xero answered, before the save: the answer is cut (Xero rotated, we never learn the new tokens), or the
  worker dies holding the new token set (its lease is left to lapse, as a killed Lambda's would);
- during the save: PutSecretValue refused (nothing written), or written but its answer lost;
- after the save: the worker dies before it records the refresh and releases the lease.
Workers die by an exception that nothing in the code catches (a BaseException, as a timeout's kill would be).

What must hold: no refresh ever answers invalid_grant (TokenSetRevoked: Xero refusing a refresh token we kept), and
every token set still refreshes at the end (none lost). Failed refreshes are expected (the caller retries later);
what they must never do is leave a token set Xero no longer honours.

`make test` runs TORTURE_REFRESHES (default 250); `make torture` runs 10,000.
"""

import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from botocore.exceptions import ClientError

from tests.faults import Killed
from tests.integration.test_token_store import link_token_set
from xero_sync import tokens
from xero_sync.config import get_settings
from xero_sync.tables import shared_connection
from xero_sync.tokens import TokenRefreshBusy, TokenSaveFailed, TokenSetRevoked, TokenStore
from xero_sync.xero_identity import XeroIdentity, XeroUnavailable

pytestmark = pytest.mark.slow

REFRESHES = int(os.environ.get("TORTURE_REFRESHES", "250"))
SEED = int(os.environ.get("TORTURE_SEED", "20261202"))
TOKEN_SETS = 4
WORKERS = 8  # two per token set: every refresh races another one for the lease
STEPS = {
    "none": 30,
    "xero 500": 6,
    "xero 503": 6,
    "xero reset": 6,
    "xero timeout": 3,
    "answer cut": 8,
    "killed holding the answer": 8,
    "save refused": 8,
    "save answer lost": 8,
    "killed after the save": 8,
}


@dataclass
class Plan:
    """What goes wrong in the refresh this thread is making now."""

    step: str = "none"
    dead: bool = False


@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    revoked: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1


PLAN = threading.local()


def plan() -> Plan:
    if not hasattr(PLAN, "current"):
        PLAN.current = Plan()
    current: Plan = PLAN.current
    return current


def die() -> None:
    plan().dead = True  # nothing this worker would still do runs (no lease release on the way out)
    raise Killed(plan().step)


@pytest.fixture
def every_token_set_stale(monkeypatch):
    """Every read finds the token set stale, so every call refreshes: a refresh margin longer than any token's life."""
    monkeypatch.setenv("TOKEN_REFRESH_MARGIN_SECONDS", str(10**9))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def torture(engines, xero, every_token_set_stale, monkeypatch):
    """Token sets to torture, with every step of a refresh made injectable for the thread that runs it."""
    tenants = [xero.create_org(f"Torture {n} Ltd") for n in range(TOKEN_SETS)]
    store = TokenStore()
    token_sets = {store.create("practice-t", link_token_set(xero, [t]), {t}): t for t in tenants}
    # Leases lapse fast (a dead holder's must).
    monkeypatch.setattr(tokens, "LEASE_SECONDS", 1)
    monkeypatch.setattr(tokens, "WAIT_STEP_SECONDS", 0.01)
    original_refresh = XeroIdentity.refresh

    def refresh(self, refresh_token):
        step = plan().step
        if step.startswith("xero "):
            kind = step.removeprefix("xero ")
            xero.admin("POST", "/faults", json={"path": "/connect/token", "kind": kind, "holdSeconds": 0.2})
        elif step == "answer cut":
            xero.admin("POST", "/faults", json={"path": "/connect/token", "kind": "malformed"})
        answer = original_refresh(self, refresh_token)
        if step == "killed holding the answer":
            die()
        return answer

    def dead_workers_send_nothing(**_):
        # A dead worker's process is gone: no call it would still make (releasing its lease) reaches DynamoDB.
        if plan().dead:
            raise Killed(plan().step)

    monkeypatch.setattr(XeroIdentity, "refresh", refresh)
    dynamodb_events = shared_connection().client.meta.events
    dynamodb_events.register("before-call.dynamodb", dead_workers_send_nothing)
    yield token_sets
    dynamodb_events.unregister("before-call.dynamodb", dead_workers_send_nothing)


def secrets_client_for_this_worker(engines):
    """A Secrets Manager client whose PutSecretValue fails as this thread's plan says."""
    client = engines.session.client("secretsmanager", endpoint_url=engines.endpoints["AWS_ENDPOINT_URL"])
    refused = ClientError({"Error": {"Code": "InternalServiceError", "Message": "injected"}}, "PutSecretValue")

    def before(**_):
        if plan().step == "save refused":
            raise refused

    def after(**_):
        if plan().step == "save answer lost":
            raise refused  # the value was written; its answer never came back
        if plan().step == "killed after the save":
            die()  # the value was written; the worker died before it went on

    client.meta.events.register("before-call.secrets-manager.PutSecretValue", before)
    client.meta.events.register("after-call.secrets-manager.PutSecretValue", after)
    return client


def test_no_refresh_under_failures_at_every_step_loses_a_token_set_or_earns_an_invalid_grant(engines, xero, torture):
    token_set_ids = list(torture)
    rng = random.Random(SEED)
    steps, weights = list(STEPS), list(STEPS.values())
    work = [(rng.choice(token_set_ids), rng.choices(steps, weights)[0]) for _ in range(REFRESHES)]
    queue_lock = threading.Lock()
    tally = Tally()

    def worker() -> None:
        store = TokenStore(secrets=secrets_client_for_this_worker(engines), sleep=lambda _: None)
        while True:
            with queue_lock:
                if not work:
                    return
                token_set_id, step = work.pop()
            PLAN.current = Plan(step)
            try:
                store.fresh(token_set_id)
                tally.add("refreshed")
            except Killed:
                tally.add("killed")
            except TokenSetRevoked as revoked:
                tally.revoked.append(f"{step}: {revoked}")
            except (XeroUnavailable, ClientError, TokenRefreshBusy, TokenSaveFailed) as failure:
                tally.add(type(failure).__name__)
            finally:
                PLAN.current = Plan()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, name=f"torture-{n}") for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    print(f"{REFRESHES} refreshes (seed {SEED}) in {elapsed:.0f} s: {dict(tally.outcomes)}")

    # Then Xero never refused a refresh token we kept
    assert tally.revoked == [], tally.revoked[:5]
    assert sum(tally.outcomes.values()) == REFRESHES
    assert tally.outcomes["refreshed"] > REFRESHES * STEPS["none"] / sum(weights) / 2, tally.outcomes
    # And no token set is lost: each refreshes once more (its lease lapsed if a dead worker held it) and reaches
    # its organisation
    xero.admin("DELETE", "/faults")
    for token_set_id, tenant in torture.items():
        fresh = TokenStore().fresh(token_set_id)
        assert tenant in {c.tenant_id for c in XeroIdentity().connections(fresh)}


def test_a_lost_refresh_answer_is_recovered_in_the_same_call(engines, xero, every_token_set_stale):
    """Regression: a refresh whose answer was lost (Xero rotated, we never saw the new tokens) failed its caller,
    and a sync failed with it; nothing retried before the next sync, maybe hours later, when Xero's 30-minute grace
    for the refresh token we kept had run out (invalid_grant: the token set lost). The store now retries at once."""
    tenant = xero.create_org("Lost Answer Ltd")
    store = TokenStore(sleep=lambda _: None)
    token_set_id = store.create("practice-t", link_token_set(xero, [tenant]), {tenant})
    kept = store.read(token_set_id).refresh_token.get_secret_value()
    calls_before = xero.token_calls()
    xero.admin("POST", "/faults", json={"path": "/connect/token", "kind": "malformed"})

    refreshed = store.fresh(token_set_id)

    assert xero.token_calls() - calls_before == 2  # the answer lost, then the retry with the token we kept
    assert refreshed.refresh_token.get_secret_value() not in (kept, "")
    assert store.read(token_set_id).refresh_token.get_secret_value() == refreshed.refresh_token.get_secret_value()
    # And 31 minutes on (the kept token's grace over), the token set still refreshes
    xero.admin("POST", "/clock", json={"advance": 31 * 60})
    assert tenant in {c.tenant_id for c in XeroIdentity().connections(store.fresh(token_set_id))}
