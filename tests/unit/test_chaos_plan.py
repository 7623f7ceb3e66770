"""The chaos driver's plans: drawn from the seed alone, and every seed range the command line takes."""

import pytest

from local.chaos_plan import FAULT_KINDS, draw_plan, parse_seeds


def test_a_seed_always_draws_the_same_plan_and_another_seed_another():
    assert draw_plan(17) == draw_plan(17)
    assert draw_plan(17) != draw_plan(18)


def test_a_plan_links_two_organisations_in_one_consent_and_orders_its_events_in_time():
    plan = draw_plan(3)
    consents = [org.consent for org in plan.orgs]
    assert len(consents) - len(set(consents)) == 1
    times = [event.at for event in plan.events]
    assert times == sorted(times) and times[0] >= 0 and times[-1] <= plan.storm_seconds
    assert plan.kill_points and plan.count("race") >= 1


def test_a_hundred_seeds_between_them_inject_every_kind_of_fault():
    plans = [draw_plan(seed) for seed in range(1, 101)]
    kinds = {e.detail["kind"] for p in plans for e in p.events if e.kind == "fault"}
    assert kinds == set(FAULT_KINDS)
    assert all(any(p.count(kind) for p in plans) for kind in ("clock", "token-fault", "changes", "nightly"))
    assert any(p.worker_faults.fail_secret_writes >= 3 for p in plans)  # a whole save refused
    assert any(p.worker_faults.throttle_writes for p in plans) and any(
        p.worker_faults.duplicate_deliveries for p in plans
    )


@pytest.mark.parametrize(
    ("text", "seeds"), [("1-3", [1, 2, 3]), ("7", [7]), ("1,5,9-10", [1, 5, 9, 10]), ("2,1-2", [2, 1])]
)
def test_seeds_are_read_as_ranges_and_lists(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "1-b", "-3"])
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError):
        parse_seeds(text)
