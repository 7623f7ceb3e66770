"""The chaos driver's plans: drawn from the seed alone, and every seed range the command line takes."""

import dataclasses

import pytest

from local.chaos import plan as chaos_plan
from local.chaos.plan import (
    FAULT_KINDS,
    LINK_TOKEN_KINDS,
    NOT_OFFERED_KINDS,
    NOT_OFFERED_PATHS,
    PAGE_SIZE_PATHS,
    draw_plan,
    parse_seeds,
)
from local.xero_emulator.faults import KINDS, TOKEN_KINDS
from local.xero_emulator.resources import RESOURCES_BY_LOWER
from xero_sync.catalogue import CATALOGUE, Paging

SEEDS = range(1, 101)


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
    plans = [draw_plan(seed) for seed in SEEDS]
    kinds = {e.detail["kind"] for p in plans for e in p.events if e.kind == "fault"}
    assert kinds == set(FAULT_KINDS) | set(NOT_OFFERED_KINDS)
    assert all(any(p.count(kind) for p in plans) for kind in ("clock", "token-fault", "changes", "nightly"))
    assert any(p.worker_faults.fail_secret_writes >= 3 for p in plans)  # a whole save refused
    assert any(p.worker_faults.throttle_writes for p in plans) and any(
        p.worker_faults.duplicate_deliveries for p in plans
    )


def _hostile(plan: chaos_plan.SeedPlan) -> list[chaos_plan.Event]:
    return [e for e in plan.events if e.kind == "full-sync" or e.detail.get("kind") in NOT_OFFERED_KINDS]


def test_some_seeds_but_not_all_refuse_a_link_read_without_pagination_and_lose_a_resource():
    plans = [draw_plan(seed) for seed in SEEDS]
    for drawn in (
        [p for p in plans if p.failed_link is not None],
        [p for p in plans if p.count("full-sync")],
        [p for p in plans if p.not_offered()],
    ):
        assert 10 <= len(drawn) <= 60
    assert {p.failed_link.token_kind for p in plans if p.failed_link} == set(LINK_TOKEN_KINDS)
    assert {e.detail["kind"] for p in plans for e in _hostile(p) if e.kind == "fault"} == {"not-offered", "gone"}


def test_the_new_draws_leave_the_rest_of_each_plan_as_it_was(monkeypatch):
    drawn = {seed: draw_plan(seed) for seed in range(1, 31)}
    monkeypatch.setattr(chaos_plan, "HOSTILE_SEEDS", 0.0)
    for seed, plan in drawn.items():
        without = dataclasses.replace(
            plan, events=tuple(e for e in plan.events if e not in _hostile(plan)), failed_link=None
        )
        assert draw_plan(seed) == without


def test_a_link_is_refused_on_one_of_the_plans_consents_with_a_token_the_emulator_spoils():
    for plan in (draw_plan(seed) for seed in SEEDS):
        if plan.failed_link is not None:
            assert plan.failed_link.consent in {org.consent for org in plan.orgs}
            assert plan.failed_link.token_kind in TOKEN_KINDS
            assert "link refused" in plan.summary()


def test_a_full_sync_without_pagination_is_of_one_client_and_one_page_size_resource_within_the_storm():
    letters_seen = set()
    for plan in (draw_plan(seed) for seed in SEEDS):
        letters = {org.letter for org in plan.orgs}
        for event in (e for e in plan.events if e.kind == "full-sync"):
            assert set(event.detail) == {"client", "path", "count"}
            assert event.detail["client"] in letters and event.detail["path"] in PAGE_SIZE_PATHS
            assert event.detail["count"] >= 1 and 0 <= event.at <= plan.storm_seconds
            letters_seen.add(event.detail["client"])
    assert letters_seen == {"A", "B", "C", "D"}


def test_a_resource_taken_away_is_one_clients_and_that_client_gets_a_full_sync_once_settled():
    for plan in (draw_plan(seed) for seed in SEEDS):
        taken = [e.detail for e in _hostile(plan) if e.kind == "fault"]
        for detail in taken:
            assert detail["kind"] in KINDS and detail["path"] in NOT_OFFERED_PATHS and detail["count"] >= 1
        assert plan.not_offered() == sorted({detail["client"] for detail in taken})
        if taken:
            assert "not offered" in plan.summary()


def test_the_resources_drawn_are_the_catalogues_and_the_page_size_ones_carry_pagination_at_the_emulator():
    assert set(PAGE_SIZE_PATHS) == {spec.name for spec in CATALOGUE if spec.paging is Paging.PAGE_SIZE}
    assert all(RESOURCES_BY_LOWER[name.lower()].page_size for name in PAGE_SIZE_PATHS)
    assert set(NOT_OFFERED_PATHS) <= {spec.name for spec in CATALOGUE}
    assert "no-pagination" in KINDS


@pytest.mark.parametrize(
    ("text", "seeds"), [("1-3", [1, 2, 3]), ("7", [7]), ("1,5,9-10", [1, 5, 9, 10]), ("2,1-2", [2, 1])]
)
def test_seeds_are_read_as_ranges_and_lists(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "1-b", "-3"])
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError):
        parse_seeds(text)
