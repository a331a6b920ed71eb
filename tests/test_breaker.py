"""The circuit breaker on its own, with an injected clock."""

import pytest
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
