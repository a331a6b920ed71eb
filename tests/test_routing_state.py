"""usage-based-routing-v2's counters mirrored in Rust (`components/routing/mirrors.py`), checked
against litellm's own pick on the same cache: in shadow mode every Rust pick is compared with
litellm's, and the mirror must follow every way litellm's in-memory cache changes: the handler's
callbacks, a user's `router.cache.set_cache`, writes straight into its dicts, expiry, eviction,
`flush_cache`, the minute rolling over, model-list changes."""

import asyncio
import random
from datetime import UTC, datetime

import litellm
import pytest
from litellm.router_strategy import lowest_tpm_rpm_v2
from test_routing import (
    GROUP,
    MESSAGES,
    drive_state,
    make_router,
    memory,
    mirror_counts,
    picks,
    with_model_list_change,
)

STRATEGY = "usage-based-routing-v2"
# The ids of the eight deployments each test's router has.
EVERY = {f"d{i}" for i in range(8)}


@pytest.fixture
def shadowed(instrumented_as, routing, own_strategy_callbacks):
    """A usage-v2 router in shadow mode, and its cache's mirror counts since the test began; the
    callbacks it registers with litellm are dropped after the test."""
    own_strategy_callbacks()
    instrumented_as("shadow")
    random.seed(4)  # the draws among tied deployments (80 per `picks`) reach all eight
    router = make_router(STRATEGY, 8, limits=False)
    return router, mirror_counts(routing.usage_mirrors, router)


def counter_key(router, index: int, kind: str = "tpm") -> str:
    deployment = router.registry().deployments(GROUP)[index]
    minute = lowest_tpm_rpm_v2.get_utc_datetime().strftime("%H-%M")
    return f"{deployment['model_info']['id']}:{deployment['litellm_params']['model']}:{kind}:{minute}"


def busy_except(router, free: int) -> None:
    """Every deployment but `free` has used 100 tokens this minute, written as the handler writes."""
    for index in range(len(router.registry().deployments(GROUP))):
        if index != free:
            router.cache.increment_cache(counter_key(router, index), 100, ttl=60)


def test_shadow_mirror_finds_no_mismatch_over_the_handlers_callbacks(shadowed, routing, assert_no_mismatch):
    router, counts = shadowed

    async def run():
        for round_ in range(20):
            await drive_state(router, 5, seed=round_)
            for _ in range(3):
                await router.select(GROUP, {}, messages=MESSAGES)
                router.get_available_deployment(GROUP, messages=MESSAGES)

    asyncio.run(run())
    assert_no_mismatch()
    # the callbacks' writes were copied as they happened: the cache was read whole only once
    assert counts()["mirrored_picks"] >= 120 and counts()["resyncs"] == 1


def test_writes_through_the_cache_are_copied_without_rereading_it(shadowed, assert_no_mismatch):
    router, counts = shadowed
    picks(router, 2)
    busy_except(router, free=5)  # `router.cache.increment_cache`, as a user or another component would
    assert picks(router, 40) == {"d5"}
    assert_no_mismatch()
    assert counts()["resyncs"] == 1


def test_writes_straight_into_the_dicts_are_seen_by_the_next_pick(shadowed, assert_no_mismatch):
    router, counts = shadowed
    picks(router, 2)
    cache = memory(router)
    for index in range(8):
        if index != 3:
            cache.cache_dict[counter_key(router, index)] = 100  # bypasses every cache method
    assert picks(router, 40) == {"d3"}
    assert_no_mismatch()
    assert counts()["resyncs"] == 2


def test_an_expired_counter_is_read_in_place_and_removed_as_litellm_removes_it(shadowed, assert_no_mismatch):
    router, counts = shadowed
    busy_except(router, free=0)
    assert picks(router, 2) == {"d0"}
    cache = memory(router)
    now = cache._clock()
    cache._clock = lambda: now + 120  # past the counters' 60 s ttl, on the cache's own clock
    # (an async pick in shadow mode reads the counters litellm's cooldown read prefetched)
    router.get_available_deployment(GROUP, messages=MESSAGES)
    assert counts()["read_in_place"] == 1
    assert not any(":tpm:" in key for key in cache.cache_dict)  # removed by the read, as litellm's read removes them
    assert picks(router, 40) == EVERY
    assert_no_mismatch()


def test_eviction_and_flush_are_followed(shadowed, assert_no_mismatch):
    router, counts = shadowed
    busy_except(router, free=2)
    assert picks(router, 2) == {"d2"}
    cache = memory(router)
    for index in range(cache.max_size_in_memory):  # litellm evicts the earliest expiries first
        cache.set_cache(f"filler-{index}", index, ttl=3600)
    assert picks(router, 40) == EVERY
    router.cache.flush_cache()
    busy_except(router, free=6)
    assert picks(router, 40) == {"d6"}
    router.cache.flush_cache()
    assert picks(router, 40) == EVERY
    assert_no_mismatch()
    assert counts()["resyncs"] == 1


def at_minute(monkeypatch, minute: int) -> None:
    moment = datetime(2026, 1, 1, 10, minute, tzinfo=UTC)
    monkeypatch.setattr(lowest_tpm_rpm_v2, "get_utc_datetime", lambda: moment)


def roll_the_minute_over(router, monkeypatch) -> set[str]:
    at_minute(monkeypatch, 1)
    return EVERY  # the new minute's counters are unset


def change_the_busy_deployment(router, monkeypatch) -> set[str]:
    with_model_list_change(router, 4)  # a new registry version: new records, new plans
    return {"d4"}


@pytest.mark.parametrize("change", [roll_the_minute_over, change_the_busy_deployment])
def test_changes_outside_the_cache_are_followed(shadowed, monkeypatch, change, assert_no_mismatch):
    router, _ = shadowed
    at_minute(monkeypatch, 0)
    busy_except(router, free=4)
    assert picks(router, 2) == {"d4"}
    expected = change(router, monkeypatch)
    assert picks(router, 40) == expected
    assert_no_mismatch()


@pytest.mark.parametrize("value", ["7", True, None, 2**60])
def test_counters_that_are_not_plain_numbers_are_litellms_to_read(shadowed, value, assert_no_mismatch):
    router, counts = shadowed
    picks(router, 2)
    router.cache.set_cache(counter_key(router, 0), value, ttl=60)
    try:
        picks(router, 40)
    except (litellm.RateLimitError, ValueError, TypeError):
        pass  # litellm's own error on such a counter, in both
    assert_no_mismatch()
    if value is not None:
        assert counts()["read_in_place"] >= 1


def test_instrument_replaces_the_cache_writes_and_uninstrument_restores_them(instrumented_as):
    from litellm.caching.in_memory_cache import InMemoryCache

    names = ("set_cache", "_remove_key", "flush_cache")
    originals = {name: vars(InMemoryCache)[name] for name in names}
    instrumentor = instrumented_as("rust")
    assert all(vars(InMemoryCache)[name] is not originals[name] for name in names)
    instrumentor.uninstrument()
    assert {name: vars(InMemoryCache)[name] for name in names} == originals
