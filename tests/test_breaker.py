"""The circuit breaker on its own, with an injected clock."""

import tracemalloc

import pytest
from litellm_rust import breaker as breaker_module
from litellm_rust.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, percentile
from litellm_rust.config import BreakerSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def breaker(clock, **settings) -> CircuitBreaker:
    defaults = {
        "window_seconds": 10,
        "min_calls": 10,
        "max_error_rate": 0.1,
        "cool_off_seconds": 5,
        "probe_rate": 1.0,
        "probes_to_close": 2,
    }
    return CircuitBreaker(BreakerSettings(**{**defaults, **settings}), clock=clock)


def test_error_rate_at_the_threshold_keeps_it_closed(clock):
    b = breaker(clock)
    b.timing("rust", 1e-6, rust_calls_total=0)
    b.rust_error(rust_calls_total=100, reason="rust_error")  # 1 error in 100 calls: 1% <= 10%
    assert b.state == CLOSED


def test_error_rate_above_the_threshold_opens_it(clock):
    b = breaker(clock)
    b.timing("rust", 1e-6, rust_calls_total=0)
    for calls in (10, 11):
        b.rust_error(rust_calls_total=calls, reason="rust_error")
    assert b.state == OPEN
    assert "error rate 2/11" in b.transitions[-1].reason


def test_errors_leave_the_window(clock):
    b = breaker(clock)
    b.timing("rust", 1e-6, rust_calls_total=0)
    b.rust_error(rust_calls_total=20, reason="rust_error")
    clock.now += 11  # the first error is out of the 10 s window
    b.timing("rust", 1e-6, rust_calls_total=30)
    b.rust_error(rust_calls_total=40, reason="rust_error")
    assert b.state == CLOSED  # 1 error in the 20 calls of the window


def test_too_few_calls_give_no_verdict(clock):
    b = breaker(clock, min_calls=50)
    for calls in range(1, 6):
        b.rust_error(rust_calls_total=calls, reason="rust_error")
    assert b.state == CLOSED


def test_any_mismatch_opens_it_by_default(clock):
    b = breaker(clock)
    for _ in range(100):
        b.comparison(rust_calls_total=0, matched=True)
    b.comparison(rust_calls_total=0, matched=False)
    assert b.state == OPEN


def test_latency_regression_opens_it(clock):
    b = breaker(clock, min_latency_samples=20, max_latency_ratio=2.0)
    for _ in range(20):
        b.timing("python", 10e-6, rust_calls_total=0)
        b.timing("rust", 15e-6, rust_calls_total=0)
    clock.now += 1.5
    b.timing("rust", 15e-6, rust_calls_total=0)
    assert b.state == CLOSED  # 1.5x is within the 2x allowed
    for _ in range(40):
        b.timing("rust", 50e-6, rust_calls_total=0)
    clock.now += 1.5
    b.timing("rust", 50e-6, rust_calls_total=0)
    assert b.state == OPEN
    assert "p95" in b.transitions[-1].reason


def test_cool_off_then_probes_close_it(clock):
    b = breaker(clock)
    b.force_open("test")
    b.release("test")
    assert b.state == HALF_OPEN
    assert b.route_to_rust()
    b.probe_succeeded()
    assert b.state == HALF_OPEN
    b.probe_succeeded()
    assert b.state == CLOSED


def test_open_waits_for_the_cool_off(clock):
    b = breaker(clock)
    b.comparison(rust_calls_total=0, matched=False)
    assert not b.route_to_rust()
    clock.now += 5.1
    assert b.route_to_rust()
    assert b.state == HALF_OPEN


def test_forced_open_ignores_the_cool_off(clock):
    b = breaker(clock)
    b.force_open("alert")
    clock.now += 1_000
    assert not b.route_to_rust()
    assert b.state == OPEN and b.forced


def test_release_without_force_changes_nothing(clock):
    b = breaker(clock)
    b.release("nothing to release")
    assert b.state == CLOSED and list(b.transitions) == []


def test_every_transition_is_reported(clock):
    seen = []
    b = CircuitBreaker(
        BreakerSettings(cool_off_seconds=1, probe_rate=1.0, probes_to_close=1), on_transition=seen.append, clock=clock
    )
    b.comparison(rust_calls_total=0, matched=False)
    clock.now += 2
    b.route_to_rust()
    b.probe_succeeded()
    assert [(t.from_state, t.to_state) for t in seen] == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]
    assert [t.as_dict()["to"] for t in b.transitions] == [OPEN, HALF_OPEN, CLOSED]


def test_percentile_is_nearest_rank():
    samples = [float(i) for i in range(1, 101)]
    assert (percentile(samples, 0.5), percentile(samples, 0.95), percentile(samples, 0.99)) == (50.0, 95.0, 99.0)
    assert percentile([3.0], 0.99) == 3.0


# -- the window slides: what left it is not judged ---------------------------------------------


def test_errors_spread_thinner_than_the_threshold_keep_it_closed_as_they_age_out(clock):
    b = breaker(clock)  # 10 s window, 10% errors allowed
    calls = 0
    for second in range(100):  # 10 calls a second, one error every 2 s: 5 errors in the 100 calls of a window
        clock.now += 1
        calls += 10
        b.timing("rust", 1e-6, rust_calls_total=calls)
        if second % 2 == 0:
            b.rust_error(rust_calls_total=calls, reason="rust_error")
    assert b.state == CLOSED  # 50 errors in all, but never more than 6 in any window
    for _ in range(10):  # then 2 errors a second
        clock.now += 1
        calls += 10
        b.rust_error(rust_calls_total=calls, reason="rust_error")
        b.rust_error(rust_calls_total=calls, reason="rust_error")
    assert b.state == OPEN
    assert "error rate" in b.transitions[-1].reason


def test_mismatches_that_left_the_window_are_not_held_against_later_comparisons(clock):
    b = breaker(clock, max_mismatch_rate=0.2)
    for _ in range(9):
        b.comparison(rust_calls_total=1, matched=True)
    b.comparison(rust_calls_total=1, matched=False)
    assert b.state == CLOSED  # 1 in 10
    clock.now += 11
    for _ in range(4):
        b.comparison(rust_calls_total=1, matched=True)
    b.comparison(rust_calls_total=1, matched=False)
    assert b.state == CLOSED  # 1 in the 5 of the window: 20%, not 2 in 15 nor 2 in 5
    b.comparison(rust_calls_total=1, matched=False)
    assert b.state == OPEN
    assert "shadow mismatches 2/6" in b.transitions[-1].reason


def test_slow_rust_timings_that_left_the_window_do_not_open_it(clock):
    b = breaker(clock, min_latency_samples=20, max_latency_ratio=2.0)
    for _ in range(20):
        b.timing("rust", 500e-6, rust_calls_total=0)  # not judged yet: no Python timings
    clock.now += 11
    for _ in range(20):
        b.timing("python", 10e-6, rust_calls_total=0)
        b.timing("rust", 12e-6, rust_calls_total=0)
    assert b.state == CLOSED
    for _ in range(20):
        b.timing("rust", 500e-6, rust_calls_total=0)
    clock.now += 1.5
    b.timing("rust", 500e-6, rust_calls_total=0)
    assert b.state == OPEN


# -- bounded memory -----------------------------------------------------------------------------


def memory_held_by_the_breaker() -> int:
    """Bytes still allocated by code in breaker.py."""
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, breaker_module.__file__)])
    return sum(statistic.size for statistic in snapshot.statistics("filename"))


def shadowed_call_time(call: int) -> float:
    """5,000 calls a second for the first 50,000 calls (10 s), then 25,000 a second for 250,000 more (10 s)."""
    return 1_000 + (call / 5_000 if call <= 50_000 else 10 + (call - 50_000) / 25_000)


def test_memory_does_not_grow_with_the_call_rate(clock):
    b = breaker(clock, max_mismatch_rate=1.0)  # 10 s window; keep comparing whatever matches
    held = {}
    tracemalloc.start()
    try:
        for call in range(1, 300_001):
            clock.now = shadowed_call_time(call)
            b.comparison(rust_calls_total=call, matched=call % 1_000 != 0)
            if call % 10 == 0:
                b.timing("rust", 1e-5 * (1 + call // 10 % 7), rust_calls_total=call)
                b.timing("python", 2e-5 * (1 + call // 10 % 5), rust_calls_total=call)
            if call in (50_000, 300_000):  # the window is full of calls: 50,000 of them, then 250,000
                held[call] = memory_held_by_the_breaker()
    finally:
        tracemalloc.stop()
    assert b.state == CLOSED, b.transitions[-1].reason
    # One entry per call in the window would hold 200,000 x ~100 bytes more; a slice of the
    # window starting or ending between the two measures may add ~2%.
    assert held[300_000] <= held[50_000] * 1.05, held
