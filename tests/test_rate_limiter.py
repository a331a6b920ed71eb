"""`litellm_rust.RateLimiter` on its own: exact under concurrency, both algorithms, bad input."""

import asyncio
import threading

import pytest
from litellm_rust import ManualClock, RateLimiter


def test_named_limits_report_what_is_left_in_limit_order():
    limiter = RateLimiter(rpm=2, tpm=100, clock=ManualClock())
    result = limiter.check("key", tokens=40)
    assert (result.allowed, result.remaining, result.refused_by) == (True, {"rpm": 1, "tpm": 60}, None)


def test_a_refusal_names_the_limit_and_charges_nothing():
    limiter = RateLimiter(rpm=5, tpm=100, clock=ManualClock())
    limiter.check("key", tokens=90)
    refused = limiter.check("key", tokens=20)
    assert (refused.allowed, refused.refused_by, refused.remaining) == (False, "tpm", {"rpm": 4, "tpm": 10})
    assert refused.retry_after == pytest.approx(60.0)
    assert limiter.check("key", tokens=10).allowed


def test_keys_are_independent():
    limiter = RateLimiter(rpm=1, clock=ManualClock())
    assert limiter.check("alice").allowed and limiter.check("bob").allowed
    assert not limiter.check("alice").allowed


def test_fixed_window_starts_at_the_first_hit():
    clock = ManualClock()
    limiter = RateLimiter(rpm=2, clock=clock)
    clock.set(10)
    assert limiter.check("key").allowed and limiter.check("key").allowed
    clock.set(69.9)
    assert not limiter.check("key").allowed
    clock.set(70.0)
    assert limiter.check("key").allowed


def test_gcra_spreads_the_limit_where_a_fixed_window_allows_a_double_burst():
    # A window opened at t=0 ends at t=60: 59 requests just before and 60 just after all pass the
    # fixed window (119 within two seconds); the token bucket admits only what its rate refilled.
    admitted = {}
    for algorithm in ("fixed_window", "gcra"):
        clock = ManualClock()
        limiter = RateLimiter(rpm=60, algorithm=algorithm, clock=clock)
        count = 0
        for at, requests in ((0.0, 1), (59.0, 59), (61.0, 60)):
            clock.set(at)
            count += sum(limiter.check("key").allowed for _ in range(requests))
        admitted[algorithm] = count
    assert admitted == {"fixed_window": 120, "gcra": 63}


def test_eight_threads_never_get_more_than_the_limit():
    for algorithm in ("fixed_window", "gcra"):
        limiter = RateLimiter(rpm=1_000, algorithm=algorithm, clock=ManualClock())
        admitted = []

        def hammer(limiter=limiter, admitted=admitted):
            admitted.append(sum(limiter.check("shared").allowed for _ in range(10_000)))

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(admitted) == 1_000, algorithm


def test_usage_known_after_the_response_is_charged_beyond_the_limit_and_refunds():
    limiter = RateLimiter(tpm=100, clock=ManualClock())
    assert limiter.check("key", tokens=10).allowed
    limiter.record_usage("key", tokens=150)
    assert limiter.check("key", tokens=1).refused_by == "tpm"
    limiter.record_usage("key", tokens=-100)
    assert limiter.check("key", tokens=40).allowed


def test_parallel_request_slots():
    limiter = RateLimiter(max_parallel_requests=2)
    assert limiter.acquire("key") and limiter.acquire("key")
    assert not limiter.acquire("key")
    limiter.release("key")
    assert limiter.slots_in_use("key") == 1
    assert limiter.acquire("key")


def test_async_calls_mirror_the_sync_ones():
    async def scenario():
        limiter = RateLimiter(rpm=1, max_parallel_requests=1, clock=ManualClock())
        first, second = await limiter.acheck("key"), await limiter.acheck("key")
        slot = await limiter.aacquire("key")
        await limiter.arelease("key")
        await limiter.arecord_usage("key", 5)
        return first.allowed, second.allowed, slot

    assert asyncio.run(scenario()) == (True, False, True)


def test_idle_keys_are_evicted():
    clock = ManualClock()
    limiter = RateLimiter(rpm=10, max_parallel_requests=1, idle_seconds=60, clock=clock)
    limiter.check("idle")
    limiter.acquire("busy")
    clock.advance(61)
    assert limiter.evict_idle() == 1
    assert len(limiter) == 1


def test_a_limit_over_the_longest_period_still_refuses_beyond_its_amount():
    century = 100 * 365.25 * 86_400
    for algorithm in ("gcra", "fixed_window"):
        limiter = RateLimiter(limits=[("century", "requests", 1, century)], algorithm=algorithm, clock=ManualClock())
        assert limiter.check("key").allowed and not limiter.check("key").allowed, algorithm


def test_a_zero_limit_admits_nothing():
    assert not RateLimiter(rpm=0, clock=ManualClock()).check("key").allowed


@pytest.mark.parametrize(
    "settings, error, message",
    [
        ({"rpm": -1}, ValueError, "rpm: must be between 0"),
        ({"tpm": 2**64}, ValueError, "tpm: must be between 0"),
        ({"rpm": 1.5}, TypeError, "rpm: expected a whole number"),
        ({"rpm": True}, TypeError, "rpm: expected a whole number"),
        ({"limits": [("rps", "requests", 1, 0)]}, ValueError, "rps: the period must be a positive number"),
        # Beyond a century a GCRA tolerance would overflow and admit everything.
        (
            {"limits": [("eon", "requests", 1, 2e10)], "algorithm": "gcra"},
            ValueError,
            "eon: the period must be at most",
        ),
        ({"limits": [("x", "bytes", 1, 1)]}, ValueError, "unit must be 'requests' or 'tokens'"),
        ({"limits": [("rpm", "requests", 1, 60)], "rpm": 2}, ValueError, "rpm: defined twice"),
        ({"rpm": 1, "algorithm": "leaky"}, ValueError, "algorithm must be"),
        ({}, ValueError, "at least one limit"),
    ],
)
def test_bad_limits_are_clear_errors(settings, error, message):
    with pytest.raises(error, match=message):
        RateLimiter(**settings)


@pytest.mark.parametrize("key", ["", "\x00\x01", "ключ🔑", "a" * 10_000, "key with spaces/and:colons"])
def test_odd_keys_work(key):
    limiter = RateLimiter(rpm=1, clock=ManualClock())
    assert limiter.check(key).allowed and not limiter.check(key).allowed


@pytest.mark.parametrize("key, error", [("bad \ud800", ValueError), (b"bytes", TypeError), (None, TypeError)])
def test_unusable_keys_are_clear_errors(key, error):
    with pytest.raises(error):
        RateLimiter(rpm=1).check(key)
