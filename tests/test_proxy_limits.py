"""The proxy rate limiter's in-memory path (`parallel_request_limiter_v3`) served natively: the
same store answers and the same admission decisions as litellm's, in shadow and rust mode."""

import asyncio
import random
import threading
import time
from datetime import datetime, timedelta

import litellm
import pytest
from accounting import counted, counted_since
from litellm.litellm_core_utils import token_counter
from litellm.redis.stores.rate_limits import CounterIncrement, RateLimitScope, RateLimitStore
from litellm.rust_bridge._native import NativeRateLimits
from litellm_rust import LiteLLMRustInstrumentor, _native, set_mode
from litellm_rust.components import components

# Importing litellm's proxy modules registers its budget limiter in `litellm.callbacks`, which would
# change every later test's routers: the list is put back after the import and after each test.
_callbacks = list(litellm.callbacks)
v3 = pytest.importorskip(
    "litellm.proxy.hooks.parallel_request_limiter_v3", reason="litellm's proxy extras (the `proxy` extra)"
)
from litellm_rust.cli import bench_proxy_limiter as proxy  # noqa: E402  (needs litellm's proxy too)

litellm.callbacks[:] = _callbacks

METHODS = ("local", "set_local", "get", "increment", "increment_many", "increment_many_post_call")


@pytest.fixture(autouse=True)
def callbacks_kept():
    saved = list(litellm.callbacks)
    yield
    litellm.callbacks[:] = saved


@pytest.fixture
def proxy_limits():
    return components()["proxy_limits"]


def _instrumented(mode: str):
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    set_mode("proxy_limits", mode)
    return instrumentor


def _store() -> RateLimitStore:
    return RateLimitStore(NativeRateLimits(None, None))


# -- the store ---------------------------------------------------------------------------------


def _entries():
    scopes = [RateLimitScope("api_key", "k1"), RateLimitScope("api_key", "k:2"), RateLimitScope("user", "k1")]
    return [
        entry
        for scope in scopes
        for entry in (scope.window, scope.gauge, scope.counter("requests"), scope.counter("tokens"))
    ]


def _operations(seed: int, count: int):
    """A recorded sequence of store calls: the value types and calls the v3 limiter makes, plus
    increments landing on text and slots."""
    rng = random.Random(seed)
    entries = _entries()
    counters = [entry for entry in entries if type(entry).__name__ == "RateLimitCounter"]
    values = [
        lambda: rng.randint(0, 50),
        lambda: rng.random() * 10,
        lambda: str(rng.randint(10**9, 2 * 10**9)),
        lambda: {f"slot-{rng.randint(0, 3)}": rng.random() * 100},
    ]
    operations = []
    for _ in range(count):
        entry, roll = rng.choice(entries), rng.random()
        if roll < 0.25:
            operations.append(("local", (rng.sample(entries, rng.randint(1, 4)),)))
        elif roll < 0.4:
            operations.append(("set_local", (entry, rng.choice(values)(), rng.choice([None, 60, 3600.5]))))
        elif roll < 0.5:
            operations.append(("get", (entry,)))
        elif roll < 0.8:
            amount = rng.choice([1, 1, 7, 0.25, -1])
            operations.append(("increment", (CounterIncrement(rng.choice(counters), amount, rng.choice([None, 60])),)))
        else:
            many = [CounterIncrement(rng.choice(counters), rng.randint(1, 100), 60) for _ in range(rng.randint(0, 3))]
            operations.append((rng.choice(["increment_many", "increment_many_post_call"]), (many,)))
    return operations


def _replay_on_store(operations) -> list:
    store = _store()

    async def replay():
        answers = []
        for name, args in operations:
            answer = getattr(store, name)(*args)
            answers.append(
                await answer if name in ("get", "increment", "increment_many", "increment_many_post_call") else answer
            )
        # What every entry holds at the end, with its type (an int stays an int).
        answers.append([(repr(value), type(value)) for value in store.local(_entries())])
        return answers

    return asyncio.run(replay())


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("mode", ["shadow", "rust"])
def test_store_answers_as_litellms_native_store(seed, mode, proxy_limits):
    operations = _operations(seed, 2_000)
    expected = _replay_on_store(operations)
    before = counted(proxy_limits)
    instrumentor = _instrumented(mode)
    try:
        served = _replay_on_store(operations)
    finally:
        instrumentor.uninstrument()
    assert served == expected
    since = counted_since(proxy_limits, before)
    assert "mismatches" not in since and not any(name.startswith("fallback:") for name in since), since
    assert since["comparisons" if mode == "shadow" else "rust_calls"] >= len(operations)


def test_entries_expire_as_in_litellms_store(instrumented):
    """TTLs in seconds from the write; an increment without a TTL keeps the entry's own. One store
    written in python mode (litellm's entries), one in rust mode (ours)."""
    scope = RateLimitScope("api_key", "k1")
    entries = [scope.window, scope.gauge, scope.counter("requests"), scope.counter("tokens")]

    async def write(store):
        store.set_local(scope.window, "1700000000", 0.5)
        store.set_local(scope.gauge, {"slot": 1.0}, 30)
        await store.increment(CounterIncrement(scope.counter("requests"), 1, 1))
        await store.increment(CounterIncrement(scope.counter("requests"), 1, None))
        await store.increment(CounterIncrement(scope.counter("tokens"), 5, None))

    stores = {"python": _store(), "rust": _store()}
    for mode, store in stores.items():
        set_mode("proxy_limits", mode)
        asyncio.run(write(store))
    time.sleep(1.5)
    read = {}
    for mode, store in stores.items():
        set_mode("proxy_limits", mode)
        read[mode] = store.local(entries)
    assert read["rust"] == read["python"] == (None, {"slot": 1.0}, None, 5)


def test_values_litellms_store_refuses_are_refused_alike(instrumented, proxy_limits):
    scope = RateLimitScope("api_key", "k1")
    store = _store()
    before = counted(proxy_limits)
    for bad in (True, 2**64, [1], None):
        with pytest.raises(TypeError) as litellms:
            NativeRateLimits(None, None).set_local(scope.window, bad, 60)
        with pytest.raises(TypeError) as ours:
            store.set_local(scope.window, bad, 60)
        assert str(ours.value) == str(litellms.value)
    # litellm's own store raised them; Rust declined without counting a failure.
    assert counted_since(proxy_limits, before) == {"fallback:unusual_value": 4}


def test_a_store_with_redis_stays_litellms(instrumented, proxy_limits, redis_server):
    from litellm.caching.redis_cache import RedisCache
    from litellm.redis.stores.connection import connect

    store = RateLimitStore(connect(RedisCache(host="127.0.0.1", port=redis_server.port)).rate_limits())
    scope = RateLimitScope("api_key", "k1")
    before = counted(proxy_limits)
    store.set_local(scope.gauge, {"slot": 1.0}, 30)
    assert store.local([scope.gauge]) == ({"slot": 1.0},)  # litellm's own entry, written and read by litellm
    assert counted_since(proxy_limits, before) == {"fallback:redis_cache": 2}


# -- the limiter --------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.now


def _limits(rng: random.Random):
    return [
        proxy._api_key(
            proxy._KeyLimits(
                rpm=rng.randint(2, 8), tpm=rng.randint(300, 2_000), max_parallel_requests=rng.randint(1, 3)
            )
        )
        for _ in range(3)
    ]


def _replay_requests(seed: int, steps: int) -> list[str]:
    """Requests for three keys (their own limits) arriving, held open and finishing in a random
    order while the clock moves past window boundaries; every admission decision, in order."""
    rng = random.Random(seed)
    clock = _Clock()
    handler, keys = proxy._proxy_limiter(time_provider=clock), _limits(rng)

    async def replay():
        decisions, open_requests = [], []
        for _ in range(steps):
            if open_requests and rng.random() < 0.45:
                await open_requests.pop(rng.randrange(len(open_requests))).finish()
                continue
            key = rng.choice(keys)
            request = proxy._ProxyRequest(handler, key)
            decision = await request.admit()
            decisions.append(f"{key.key_alias}:{key.rpm_limit}:{decision}")
            if decision == "admitted":
                open_requests.append(request)
            clock.now += timedelta(seconds=rng.choice([0, 0, 1, 7, 31]))
        for request in open_requests:
            await request.finish()
        return decisions

    return asyncio.run(replay())


@pytest.mark.parametrize("seed", [5, 6])
def test_limiter_admits_as_litellm_does(seed, proxy_limits):
    expected = _replay_requests(seed, 300)
    before = counted(proxy_limits)
    assert {"admitted"} < {decision.rpartition(":")[2] for decision in expected}, "the schedule must hit limits"
    for mode in ("shadow", "rust"):
        instrumentor = _instrumented(mode)
        try:
            assert _replay_requests(seed, 300) == expected, mode
        finally:
            instrumentor.uninstrument()
    since = counted_since(proxy_limits, before)
    assert "mismatches" not in since and not any(name.startswith("fallback:") for name in since), since
    assert since["rust_calls"] > since["comparisons"] > 0


def _estimate_threads(data: dict) -> tuple[int, set[int]]:
    """The limiter's estimate for `data`, and the threads its estimates ran on."""
    handler = proxy._proxy_limiter()
    threads = set()
    original = handler._estimate_tokens_for_request

    def recording(*args, **kwargs):
        threads.add(threading.get_ident())
        return original(*args, **kwargs)

    recording.__qualname__ = original.__qualname__

    async def estimate():
        return await token_counter.offload_token_count(recording)(data=data, model="gpt-4o")

    handler._estimate_tokens_for_request = recording
    return asyncio.run(estimate()), threads


def test_small_estimates_run_inline_and_large_ones_on_litellms_threads(instrumented, proxy_limits):
    small = proxy._request_data("call-1")
    large = {**small, "messages": [{"role": "user", "content": "x" * 20_000}]}
    assert v3.offload_token_count is not token_counter.offload_token_count.__wrapped__
    before = counted(proxy_limits)
    tokens, threads = _estimate_threads(small)
    assert threads == {threading.get_ident()}
    large_tokens, large_threads = _estimate_threads(large)
    assert threading.get_ident() not in large_threads
    assert counted_since(proxy_limits, before) == {"fallback:large_request": 1}
    instrumented.uninstrument()
    assert _estimate_threads(small)[0] == tokens and _estimate_threads(large)[0] == large_tokens


def test_other_offloaded_counts_keep_litellms_threads(instrumented):
    threads = set()

    def count(text):
        threads.add(threading.get_ident())
        return len(text)

    assert asyncio.run(token_counter.offload_token_count(count)("short")) == 5
    assert threading.get_ident() not in threads


def test_rust_failure_falls_back_to_litellms_store(instrumented, proxy_limits):
    scope = RateLimitScope("api_key", "k1")
    store = _store()
    before = counted(proxy_limits)
    _native.inject_fault("error")
    store.set_local(scope.window, "1", 60)
    assert store.local([scope.window]) == ("1",)  # litellm's own store served both calls
    assert counted_since(proxy_limits, before) == {"fallback:rust_error": 2}


def test_uninstrument_restores_every_binding(proxy_limits):
    originals = {name: vars(RateLimitStore)[name] for name in METHODS}
    offload = v3.offload_token_count
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        assert all(vars(RateLimitStore)[name] is not originals[name] for name in METHODS)
        assert v3.offload_token_count is not offload and token_counter.offload_token_count is not offload
    finally:
        instrumentor.uninstrument()
    assert {name: vars(RateLimitStore)[name] for name in METHODS} == originals
    assert v3.offload_token_count is offload is token_counter.offload_token_count
