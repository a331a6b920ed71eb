"""The strategy handlers' router-cache reads and writes served without litellm's debug text
(`components/routing/router_cache.py`), against litellm's own `DualCache` calls on a twin router."""

import asyncio
import copy
import random
from datetime import datetime, timedelta

import litellm
import pytest
from litellm.caching import dual_cache
from litellm.router_strategy import lowest_latency
from test_routing import (
    GROUP,
    MESSAGES,
    make_router,
    response,
    selector_of,
    success_kwargs,
)
from test_routing_health import settled

KEY = f"{GROUP}_map"
_FROZEN_NOW = datetime(2026, 3, 4, 5, 6, 7)


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz=None):
        return _FROZEN_NOW


@pytest.fixture
def frozen_time(monkeypatch):
    """The latency handler's minute stamps and both caches' ttl clocks held still, so two routers
    fed the same events hold equal state, expiry times included."""
    monkeypatch.setattr(lowest_latency, "datetime", _FrozenDatetime)

    def hold(router) -> None:
        router._core._cache.in_memory_cache._clock = lambda: 1_000_000.0

    return hold


@pytest.fixture
def verbose_calls(monkeypatch):
    """How many times the router cache called litellm's `print_verbose` (it formats its text first)."""
    calls = []
    monkeypatch.setattr(dual_cache, "print_verbose", lambda *args: calls.append(args))
    return calls


def served_router(hold):
    """A latency router whose handler had a pick served in the current (rust or shadow) mode."""
    router = make_router("latency-based-routing", 4, limits=False)
    hold(router)
    router.get_available_deployment(model=GROUP, messages=MESSAGES)
    return router


def litellms_router(hold):
    """The same router, no pick served: its cache calls are litellm's own."""
    router = make_router("latency-based-routing", 4, limits=False)
    hold(router)
    return router


def feed(selector, event: int, rng: random.Random) -> None:
    """One outcome through the handler's own callbacks: async and sync successes (streamed or not,
    with and without completion tokens) and timeouts, enough per deployment to roll its samples."""
    deployment_id = f"d{rng.randrange(4)}"
    tokens = rng.choice([0, 1, 5, 20])
    kwargs = success_kwargs(deployment_id, "openai/gpt-4o", tokens, stream=rng.random() < 0.3)
    kwargs["completion_start_time"] = _FROZEN_NOW + timedelta(seconds=0.05)
    start = _FROZEN_NOW
    end = start + timedelta(seconds=0.1 * (1 + event % 7))
    kind = rng.random()
    if kind < 0.6:
        asyncio.run(selector.async_log_success_event(kwargs, response(tokens), start, end))
    elif kind < 0.85:
        selector.log_success_event(kwargs, response(tokens), start, end)
    else:
        failure = {**kwargs, "exception": litellm.Timeout("slow", model="openai/gpt-4o", llm_provider="openai")}
        asyncio.run(selector.async_log_failure_event(failure, None, start, end))


def cache_state(router) -> tuple:
    memory = router._core._cache.in_memory_cache
    return copy.deepcopy(memory.get_cache(KEY)), memory.ttl_dict.get(KEY), sorted(memory.expiration_heap)


def test_served_calls_leave_the_latency_state_as_litellms_calls(instrumented_as, frozen_time, verbose_calls):
    instrumented_as("rust")
    served, litellms = served_router(frozen_time), litellms_router(frozen_time)
    selector_of(litellms).routing_args.ttl = selector_of(served).routing_args.ttl  # `make_router` makes them differ
    rng_served, rng_litellms = random.Random(7), random.Random(7)
    for event in range(80):
        feed(selector_of(litellms), event, rng_litellms)
        formatted = len(verbose_calls)
        feed(selector_of(served), event, rng_served)
        assert len(verbose_calls) == formatted  # served: no text built
        assert cache_state(served) == cache_state(litellms)
    assert formatted > 0
    samples = cache_state(served)[0]
    assert max(len(fields["latency_normalized"]) for fields in samples.values()) == 10  # rolled


def test_requests_reach_the_served_calls(instrumented_as, frozen_time, verbose_calls, own_strategy_callbacks):
    """Real `acompletion` calls: the handler's success callback reads and writes through the served
    calls (`test_routing_workload` compares the state requests leave with python mode's)."""
    # litellm's logging worker carries logging tasks an earlier test's loop left into the next loop,
    # where they would run this router's handler: they are run before it exists (and their own
    # routers' cache calls are not this test's).
    asyncio.run(settled())
    verbose_calls.clear()
    own_strategy_callbacks()
    instrumented_as("rust")
    router = served_router(frozen_time)
    memory = router._core._cache.in_memory_cache

    async def requests() -> None:
        for _ in range(20):
            await router.acompletion(model=GROUP, messages=MESSAGES, mock_response="hi")
        await settled()

    asyncio.run(requests())
    latency_map = memory.get_cache(KEY)
    assert sum(fields[_FROZEN_NOW.strftime("%Y-%m-%d-%H-%M")]["rpm"] for fields in latency_map.values()) == 20
    assert memory.ttl_dict[KEY] == 1_000_000.0 + selector_of(router).routing_args.ttl
    assert not [call for call in verbose_calls if KEY in str(call)]


def test_shadow_mode_compares_every_served_read(instrumented_as, frozen_time, counted_since_start):
    instrumented_as("shadow")
    router = served_router(frozen_time)
    comparisons = counted_since_start("router_cache")["shadow_comparisons"]
    rng = random.Random(3)
    for event in range(30):
        feed(selector_of(router), event, rng)
    counted = counted_since_start("router_cache")
    assert counted["shadow_mismatches"] == 0, counted["mismatch_details"]
    assert counted["shadow_comparisons"] - comparisons >= 30


def test_verbose_printing_and_other_modes_are_litellms_calls(instrumented_as, frozen_time, verbose_calls, monkeypatch):
    instrumented_as("rust")
    router = served_router(frozen_time)
    cache = router._core._cache
    monkeypatch.setattr(litellm._logging, "set_verbose", True)
    cache.get_cache(KEY)
    assert verbose_calls
    monkeypatch.setattr(litellm._logging, "set_verbose", False)
    verbose_calls.clear()
    instrumented_as("rust").uninstrument()
    instrumented_as("python")
    asyncio.run(cache.async_set_cache(KEY, {"d0": {}}))
    assert verbose_calls


def test_a_failing_in_memory_read_is_answered_as_litellm_answers_it(instrumented_as, frozen_time, monkeypatch):
    """litellm logs the exception and answers None."""
    instrumented_as("rust")
    cache = served_router(frozen_time)._core._cache

    def broken(*args, **kwargs):
        raise RuntimeError("broken tier")

    monkeypatch.setattr(cache.in_memory_cache, "get_cache", broken)
    assert asyncio.run(cache.async_get_cache(KEY)) is None
    assert cache.get_cache(KEY) is None


def test_uninstrument_restores_litellms_cache_methods(instrumented_as):
    originals = {name: vars(dual_cache.DualCache)[name] for name in ("async_get_cache", "get_cache", "async_set_cache")}
    instrumented_as("rust").uninstrument()
    assert {name: vars(dual_cache.DualCache)[name] for name in originals} == originals
