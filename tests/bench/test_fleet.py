"""The fleet model's arithmetic: a night's sync of each size, with and without the weekly reconciliation."""

from typing import Any

import pytest

from bench.fleet import EMULATED_ORGS, EmulatedOrg, profiles_from, reconciliation_calls
from bench.orgs import call_floor
from local.xero_emulator.generator import DEFAULT_AS_OF_MS, generate, resolve_counts
from local.xero_emulator.store import Organisation
from xero_sync.catalogue import CATALOGUE


def measured_org(calls: int, seconds: float, floor_calls: int, journals: int) -> dict[str, Any]:
    dynamodb = {"writeUnits": 3.0, "readUnits": 2.0}
    return {
        "counts": {"Journals": journals},
        "floorCalls": floor_calls,
        "storage": {"billedBytes": 1000},
        "incremental": {"ours": {"calls": calls, "unscaledSeconds": seconds, "aws": {"dynamodb": dynamodb}}},
    }


@pytest.mark.parametrize("latency_seconds", [0.1, 2.0])
def test_a_reconciliation_that_spends_minutes_waits_each_out_a_round_trip_after_it_began(latency_seconds) -> None:
    # Given a small organisation whose nightly sync made 30 calls in 4 s, and whose reconciliation re-reads 100 more
    # (its floor of 101 calls less one Journals page)
    orgs = {"small": measured_org(calls=30, seconds=4.0, floor_calls=101, journals=50)}

    # When the fleet model profiles it, for a run with this latency
    small = profiles_from(orgs, latency_seconds)["small"]

    # Then the reconciliation night's 130 calls spend two of Xero's minutes, each waited out from the first answer
    # in it, and the last goes at the measured pace
    assert small.reconciliation_calls == 100
    assert small.reconciliation_seconds == pytest.approx(2 * (60 + latency_seconds) + 4.0)
    assert small.seconds == 4.0 and small.source == "measured"


def test_a_size_not_measured_is_scaled_from_the_nearest_one_with_the_same_latency() -> None:
    # Given only the small organisation measured, with 1 s calls
    orgs = {"small": measured_org(calls=30, seconds=4.0, floor_calls=101, journals=50)}

    # When the model extrapolates the large one (many more changes a day: more than a minute of calls)
    large = profiles_from(orgs, 1.0)["large"]

    # Then its spent minutes each add the run's round trip
    assert large.source == "extrapolated from small"
    spent = -(-large.calls // 60) - 1
    assert spent >= 1
    assert large.seconds == pytest.approx(spent * 61.0 + 4.0, abs=0.1)


@pytest.mark.parametrize("size", ["tiny", "small", "medium"])  # the large one takes a quarter of a minute to build
def test_the_sizes_the_model_scales_by_are_the_organisations_the_emulator_builds(size: str) -> None:
    # Given the emulator's organisation of this size, built as the benchmark asks for it
    org = Organisation("bench", f"Bench {size} bench", ["bench-user"], "bench", size)
    generate(org, seed="bench", counts=resolve_counts(size, None), as_of_ms=DEFAULT_AS_OF_MS, name=org.name)
    counts = org.counts()

    # Then the model's figures for the size are its records and the calls that re-read it
    assert EMULATED_ORGS[size] == EmulatedOrg(
        records=sum(counts[spec.name] for spec in CATALOGUE),
        reconciliation_calls=reconciliation_calls(call_floor(counts), counts["Journals"]),
    )
