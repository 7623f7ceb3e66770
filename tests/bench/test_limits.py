"""The benchmark's arithmetic against Xero's limits: the floor, the windows replayed from a call timeline, and the
projection of a run on a faster minute onto real minutes."""

from bench.limits import Call, project, rate_floor_seconds, windows


def calls_at(times: list[float], latency: float = 0.1, status: int = 200) -> list[Call]:
    return [Call(t, t + latency, status) for t in times]


def test_the_floor_is_the_longer_of_60_calls_a_minute_and_5_in_flight():
    assert rate_floor_seconds(120, 0.1) == 120.0  # two minutes
    assert rate_floor_seconds(120, 0.1, minute_seconds=1.0) == 2.4  # a fast minute: 120 calls x 0.1 s / 5
    assert rate_floor_seconds(0, 0.1) == 0


def test_windows_start_with_the_first_call_after_the_last_one_ended():
    found = windows(calls_at([0, 1, 14.9, 15.0, 16, 40]), minute_seconds=15)
    assert [(w.start, w.admitted) for w in found] == [(0, 3), (15.0, 2), (40, 1)]


def test_a_spent_fast_minute_becomes_a_real_one_and_its_overshoot_stays_real_time():
    # Given a client that spends each 15-second minute (60 calls in 3 s), then resumes 0.75 s after it ends (a
    # round trip, or a whole second of Retry-After, less the latency: real time, whatever the minute lasts)
    times = [i * 0.05 for i in range(60)] + [15.75 + i * 0.05 for i in range(20)]
    calls = calls_at(times)
    # When its 16.85 s run is projected onto real minutes
    projection = project(16.85, calls, scale=4)
    # Then the spent window lasts 60 s and its overshoot 0.75 s, and the last window stays as measured
    assert projection.windows == 2 and projection.spent_windows == 1 and projection.client_paced_windows == 0
    assert abs(projection.seconds - (60.75 + 1.1)) < 1e-6


def test_a_minute_the_client_did_not_spend_takes_its_own_pace_but_no_more_than_60_calls_a_minute():
    # Given a slow client: 45 calls in each 15-second minute (one every third of a second), 90 calls in all
    calls = calls_at([i / 3 for i in range(90)], latency=0.25)
    projection = project(30.0, calls, scale=4)
    # Then its first minute, 45 calls, takes 45 s with real minutes (60 a minute), not the 15 s it took
    assert projection.client_paced_windows == 1
    assert abs(projection.seconds - (30.0 + 45 - 15)) < 1e-6


def test_on_the_real_minute_nothing_is_projected():
    calls = calls_at([i * 0.05 for i in range(60)] + [60.5 + i for i in range(5)])
    assert project(65.0, calls, scale=1).seconds == 65.0
