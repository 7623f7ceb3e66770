"""The chaos smoke: a few seeds of the chaos driver (local/chaos/driver.py; `make chaos` runs 100) on its local stack
with the Xero emulator. Each seed links four clients, storms them (Xero faults, token expiry mid-run, a lost refresh
answer, refused secret writes, throttled writes, duplicate deliveries, killed workers, Sync Now racing the nightly
run, changes during syncs), settles, and must find nothing lost, duplicated, stuck or dead-lettered.

CHAOS_SMOKE_SEEDS picks the seeds (default 5 and 8: between them every kind of fault the driver injects)."""

import os

import pytest

from local.chaos.driver import ChaosSeed
from local.chaos.plan import draw_plan, parse_seeds
from local.stack.offline_stack import OfflineStack

pytestmark = pytest.mark.slow

SMOKE_SEEDS = parse_seeds(os.environ.get("CHAOS_SMOKE_SEEDS", "5,8"))


@pytest.fixture
def stack(chaos_stack: OfflineStack) -> OfflineStack:
    return chaos_stack


@pytest.mark.parametrize("seed", SMOKE_SEEDS)
def test_a_chaos_seed_settles_with_nothing_lost_duplicated_stuck_or_dead_lettered(stack: OfflineStack, seed: int):
    # Given the seed's plan, When it storms the stack and settles
    report = ChaosSeed(stack, draw_plan(seed), print).run()
    # Then every check held (the report names what did not, and how to replay it)
    assert report.clean, "\n".join(report.lines())
    # And the storm did what the plan says: the workers were started, Xero was called, clients synced
    assert report.observed["workers"] >= 2 and report.observed["Xero calls"] > 0
    assert report.observed["runs succeeded"] >= len(report.plan.orgs)
