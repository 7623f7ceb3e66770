"""The sync engine against the real DynamoDB engine (DynamoDB Local) with a medium organisation: an initial import
under faults, three rounds of changes each followed by an incremental sync (one of them cut short and continued),
an idle sync that writes nothing, and a full reconciliation; the stored records equal Xero's after every one."""

import itertools
import resource
import time
from collections.abc import Iterator

import pytest
import requests

from local.stack.function_environment import apply_function_environment
from local.stack.provision import LOCAL_XERO_APP
from local.xero_emulator import EmulatorConfig, XeroEmulator
from local.xero_emulator.config import RegisteredApp
from tests.api import Api
from tests.conftest import TEMPLATE
from tests.sync_support import (
    FAST_LIMITS,
    TIMEOUT_FAULT_HOLD,
    XERO_TIME_SCALE,
    Emulated,
    counts_of,
    differences,
    drain,
    floor_calls,
    forget_fast_settings,
    link_client,
    run_to_end,
    sync,
)
from xero_sync.catalogue import CATALOGUE
from xero_sync.config import get_settings
from xero_sync.models import XeroRecord

pytestmark = pytest.mark.slow


@pytest.fixture
def emu(engines) -> Iterator[Emulated]:
    app = RegisteredApp(
        LOCAL_XERO_APP["client_id"], LOCAL_XERO_APP["client_secret"], [str(get_settings().xero_redirect_uri)]
    )
    with XeroEmulator(EmulatorConfig(apps=[app])) as emulator:
        urls = {name: emulator.base_url for name in ("XERO_LOGIN_URL", "XERO_IDENTITY_URL", "XERO_API_URL")}
        environment = TEMPLATE.functions(engines.physical)["SyncClientFunction"].environment
        apply_function_environment({**environment, **urls, **FAST_LIMITS}, engines.endpoints)
        emu = Emulated(emulator.base_url, requests.Session())
        emu.admin("POST", "/config", json={"rateLimits": {"timeScale": XERO_TIME_SCALE}, "latencyMs": 20})
        yield emu
    forget_fast_settings()
    engines.point_here()


def test_a_medium_organisation_stays_exact_through_faults_changes_continuations_and_reconciliation(
    engines, emu, practice, monkeypatch
):
    queue_url = engines.physical["SyncQueue"].ref
    drain(engines.session, queue_url)
    tenant = emu.create_org(f"Medium {practice}", size="medium")
    client = link_client(Api(engines.physical), emu, tenant, practice)
    (message,) = drain(engines.session, queue_url)

    # Initial import, with one of each transient fault on the way
    for kind, extra in [
        ("500", {"path": "Invoices"}),
        ("503", {"path": "Journals"}),
        ("timeout", {"path": "Payments", "holdSeconds": TIMEOUT_FAULT_HOLD}),
        ("malformed", {"path": "Contacts"}),
        ("429-minute", {"path": "BankTransactions", "retryAfter": 1}),
    ]:
        emu.fault(kind, tenantId=tenant, **extra)
    emu.admin("DELETE", "/stats")
    started, rss = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run = run_to_end(engines.session, queue_url, message)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
    stats, floor = emu.stats(tenant), floor_calls(emu, tenant)
    answered = stats["statuses"].get("200", 0)
    print(
        f"\ninitial: {time.monotonic() - started:.1f} s, {run.api_calls} calls ({answered} answered, floor {floor}),"
        f" {run.rate_limited} 429s, max in flight {stats['maxInFlight']}, peak RSS grew {grown:.0f} MB"
    )
    assert (run.status, run.error_message) == ("succeeded", None)
    assert differences(emu, tenant, client.client_id) == {}
    assert answered <= floor * 1.05 and stats["maxInFlight"] <= 5

    # Three rounds of changes, each followed by an incremental sync; the second is cut short twice and continued
    ticks = itertools.count()
    for round_ in range(3):
        emu.change(tenant, 40, seed=f"medium-{round_}")
        extra = {}
        if round_ == 1:
            emu.fault("429-day", tenantId=tenant, path="Invoices", retryAfter=1)
            extra = {"remaining_seconds": lambda: 0.0 if next(ticks) % 9 == 8 else 800.0}
        started = time.monotonic()
        run = sync(engines.session, queue_url, client, **extra)
        print(f"round {round_}: {time.monotonic() - started:.1f} s, {run.api_calls} calls")
        assert (run.status, run.error_message) == ("succeeded", None)
        assert differences(emu, tenant, client.client_id) == {}, f"after round {round_}"

    # Nothing changed: at most one call per resource, and not one write
    writes = []
    original = XeroRecord.batch_write

    def counting_batch_write(*args, **kwargs):
        batch = original(*args, **kwargs)
        save, delete = batch.save, batch.delete
        batch.save = lambda item: (writes.append(item), save(item))[1]
        batch.delete = lambda item: (writes.append(item), delete(item))[1]
        return batch

    monkeypatch.setattr(XeroRecord, "batch_write", counting_batch_write)
    emu.admin("DELETE", "/stats")
    run = sync(engines.session, queue_url, client)
    assert run.status == "succeeded"
    calls = emu.stats(tenant)["calls"]
    assert all(n == 1 for n in calls.values()) and len(calls) <= len(CATALOGUE), calls
    assert writes == []
    monkeypatch.undo()

    # A full reconciliation re-reads everything and finds nothing new or gone; it rewrites only records that embed
    # a contact or a group Xero changed since they were stored (what a reader sees of them was current already)
    run = sync(engines.session, queue_url, client, mode="full")
    assert run.status == "succeeded"
    counts = counts_of(run)
    assert sum(c["inserted"] + c["deleted"] for c in counts.values()) == 0, counts
    embedding = {s.name for s in CATALOGUE if s.holds_contacts} | {"Payments", "Contacts", "ContactGroups"}
    assert {name for name, c in counts.items() if c["updated"]} <= embedding, counts
    assert counts["Invoices"]["fetched"] == len(emu.truth(tenant, "Invoices"))
    assert differences(emu, tenant, client.client_id) == {}
