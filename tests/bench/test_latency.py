"""The timing loop and its noise rule, driven by a fake clock so the numbers are exact."""

import pytest

from effnet.bench.latency import measure, percentiles, time_calls


def fake_timer(durations_s):
    """A clock whose (start, end) reads are `durations_s` apart; between calls it stands still."""
    durations = iter(durations_s)
    state = {"t": 0.0, "start": True}

    def timer():
        if state["start"]:
            state["start"] = False
            return state["t"]
        state["start"] = True
        state["t"] += next(durations)
        return state["t"]

    return timer


def test_time_calls_warms_up_then_times_each_call():
    calls = []
    samples = time_calls(
        lambda: calls.append(1), runs=4, warmup=3, timer=fake_timer([0.001, 0.002, 0.003, 0.004])
    )
    assert len(calls) == 7
    assert samples == pytest.approx([1.0, 2.0, 3.0, 4.0])


def test_percentiles_are_ordered():
    median, p10, p90 = percentiles([5.0, 1.0, 2.0, 3.0, 4.0, 100.0])
    assert p10 <= median <= p90
    assert median == pytest.approx(3.5)


def test_quiet_measurement_is_not_repeated():
    timing = measure(lambda: None, runs=10, warmup=0, timer=fake_timer([0.010] * 9 + [0.011]))
    assert timing.attempts == 1 and not timing.noisy
    assert timing.median_ms == pytest.approx(10.0)
    assert timing.spread <= 1.5


def test_noisy_measurement_is_repeated_and_the_quiet_attempt_kept():
    # first attempt: 3 of 10 calls slowed 3x by another process (p90 / median = 3); second attempt quiet
    noisy = [0.010] * 7 + [0.030] * 3
    quiet = [0.008] * 10
    timing = measure(lambda: None, runs=10, warmup=0, timer=fake_timer(noisy + quiet))
    assert timing.attempts == 2
    assert not timing.noisy
    assert timing.median_ms == pytest.approx(8.0)
    assert timing.p90_ms == pytest.approx(8.0)


def test_always_noisy_stops_after_three_attempts_and_says_so():
    attempt = [0.010] * 7 + [0.040] * 3
    timing = measure(lambda: None, runs=10, warmup=0, timer=fake_timer(attempt * 3))
    assert timing.attempts == 3
    assert timing.noisy
    assert timing.spread > 1.5


def test_least_noisy_attempt_wins():
    first = [0.010] * 7 + [0.040] * 3  # spread 4
    second = [0.010] * 7 + [0.020] * 3  # spread 2
    third = [0.010] * 7 + [0.030] * 3  # spread 3
    timing = measure(lambda: None, runs=10, warmup=0, timer=fake_timer(first + second + third))
    assert timing.attempts == 3 and timing.noisy
    assert timing.spread == pytest.approx(2.0)


def test_runs_must_be_positive():
    with pytest.raises(ValueError, match="runs"):
        measure(lambda: None, runs=0)
