"""The router's `enforce_model_rate_limits` check served from Rust: the same admissions, errors
and counts as litellm's own check, in shadow and in rust mode, with fallbacks counted."""

import asyncio
import random
import threading
from datetime import UTC, datetime

import litellm
import pytest
from accounting import counted, counted_since
from litellm.caching.dual_cache import DualCache
from litellm.caching.in_memory_cache import InMemoryCache
from litellm.router_utils.pre_call_checks.model_rate_limit_check import ModelRateLimitingCheck
from litellm_rust import LiteLLMRustInstrumentor, _native, set_mode
from litellm_rust.components import components

METHODS = ("pre_call_check", "async_pre_call_check", "log_success_event", "async_log_success_event")

# Each limit where litellm reads it: top level, litellm_params, model_info; 0 is a limit.
DEPLOYMENTS = [
    {"model_name": "a", "litellm_params": {"model": "openai/a0", "rpm": 3}, "model_info": {"id": "d0"}},
    {"model_name": "a", "tpm": 100, "litellm_params": {"model": "openai/a1"}, "model_info": {"id": "d1", "rpm": 5}},
    {
        "model_name": "b",
        "litellm_params": {"model": "openai/b2", "rpm": 10, "rpd": 6, "tpd": 300, "daily_reset_time": "06:30"},
        "model_info": {"id": "d2"},
    },
    {"model_name": "b", "litellm_params": {"model": "openai/b3"}, "model_info": {"id": "d3"}},
    {"model_name": "c", "litellm_params": {"model": "openai/c4", "rpm": 0}, "model_info": {"id": "d4"}},
    {"model_name": "c", "litellm_params": {"model": "openai/c5", "tpm": 50, "tpd": 120}, "model_info": {"id": "d5"}},
    {"model_name": "c", "litellm_params": {"model": "openai/c6", "rpd": 2}, "model_info": {"id": "d6"}},
]


@pytest.fixture
def rate_limits():
    return components()["rate_limits"]


def recorded_sequence(seed: int, length: int = 1500) -> list[tuple]:
    """Bursts of checks (sync and async), successes charging tokens, and a clock that crosses
    minute, reset-time and day boundaries."""
    rng = random.Random(seed)
    events = []
    for _ in range(length):
        roll = rng.random()
        if roll < 0.55:
            events.append(("check", rng.randrange(len(DEPLOYMENTS)), rng.random() < 0.5))
        elif roll < 0.8:
            events.append(("success", rng.randrange(len(DEPLOYMENTS)), rng.choice([1, 7, 30, 64]), rng.random() < 0.5))
        elif roll < 0.98:
            events.append(("advance", rng.choice([0.5, 3, 11, 29, 59.5])))
        else:
            events.append(("advance", rng.choice([3600 * 5, 86_400 - 20])))
    return events


def replay(events: list[tuple]) -> list[str]:
    """Every check's outcome, as litellm's check (whichever serves it) reports it."""
    now = [datetime(2026, 11, 27, 6, 28, 50, tzinfo=UTC).timestamp()]
    cache = DualCache(in_memory_cache=InMemoryCache(clock=lambda: now[0]))
    check = ModelRateLimitingCheck(cache, clock=lambda: datetime.fromtimestamp(now[0], UTC))
    outcomes = []

    async def run():
        for event in events:
            if event[0] == "advance":
                now[0] += event[1]
            elif event[0] == "check":
                deployment = DEPLOYMENTS[event[1]]
                try:
                    if event[2]:
                        returned = await check.async_pre_call_check(deployment)
                    else:
                        returned = check.pre_call_check(deployment)
                    outcomes.append(f"admitted {returned is deployment}")
                except litellm.RateLimitError as error:
                    response = error.response
                    outcomes.append(
                        f"{error.message} | {response.text} | retry-after={response.headers['retry-after']} "
                        f"| num_retries={error.num_retries}"
                    )
            else:
                _, index, tokens, is_async = event
                deployment = DEPLOYMENTS[index]
                kwargs = {
                    "standard_logging_object": {
                        "model_id": deployment["model_info"]["id"],
                        "total_tokens": tokens,
                        "hidden_params": {"litellm_model_name": deployment["litellm_params"]["model"]},
                    },
                    "litellm_params": deployment["litellm_params"],
                }
                if is_async:
                    await check.async_log_success_event(kwargs, None, None, None)
                else:
                    check.log_success_event(kwargs, None, None, None)

    asyncio.run(run())
    return outcomes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_decides_like_litellm_in_shadow_and_in_rust_mode(seed, rate_limits):
    events = recorded_sequence(seed)
    reference = replay(events)
    refused = sum(not outcome.startswith("admitted") for outcome in reference)
    assert 0 < refused < len(reference), "the sequence must exercise both admissions and refusals"
    assert {kind for kind in ("TPM", "RPM", "TPD", "RPD") if any(f" {kind} limit" in o for o in reference)} == {
        "TPM",
        "RPM",
        "TPD",
        "RPD",
    }

    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        set_mode("rate_limits", "shadow")
        before = counted(rate_limits)
        assert replay(events) == reference
        checks = len(reference)
        assert counted_since(rate_limits, before) == {"rust_calls": checks, "comparisons": checks}, (
            rate_limits.control.status()["mismatch_details"]
        )

        set_mode("rate_limits", "rust")
        before = counted(rate_limits)
        assert replay(events) == reference
        assert counted_since(rate_limits, before) == {"rust_calls": checks}
    finally:
        instrumentor.uninstrument()


def test_instrument_replaces_the_methods_on_the_class_and_uninstrument_restores_them():
    originals = {name: vars(ModelRateLimitingCheck)[name] for name in METHODS}
    check = ModelRateLimitingCheck(DualCache())
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        for name in METHODS:
            assert vars(ModelRateLimitingCheck)[name] is not originals[name]
            assert vars(ModelRateLimitingCheck)[name].__wrapped__ is originals[name]
        assert type(check) is ModelRateLimitingCheck
    finally:
        instrumentor.uninstrument()
    assert {name: vars(ModelRateLimitingCheck)[name] for name in METHODS} == originals


def refusals_through_router(mode: str | None) -> list[str]:
    """A real Router with the check enabled and one deployment (so the pick is not random)."""
    model_list = [{"model_name": "g", "litellm_params": {"model": "openai/m", "api_key": "k", "rpm": 3}}]
    router = litellm.Router(
        model_list=model_list, optional_pre_call_checks=["enforce_model_rate_limits"], num_retries=0
    )
    # One minute for the whole run: a wall-clock minute ending mid-run would open a second window.
    [check] = [callback for callback in litellm.callbacks if isinstance(callback, ModelRateLimitingCheck)]
    check.clock = lambda: datetime(2026, 11, 27, 10, 5, tzinfo=UTC)
    if mode:
        set_mode("rate_limits", mode)
    outcomes = []
    for _ in range(8):
        try:
            response = router.completion(model="g", messages=[{"role": "user", "content": "hi"}], mock_response="ok")
            outcomes.append(response.choices[0].message.content)
        except litellm.RateLimitError as error:
            outcomes.append(type(error).__name__)
    return outcomes


def test_a_router_enforces_the_same_limits(rate_limits, no_earlier_routers):
    reference = refusals_through_router(None)
    assert reference == ["ok"] * 3 + ["RateLimitError"] * 5
    litellm.callbacks.clear()
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        before = counted(rate_limits)
        assert refusals_through_router("rust") == reference
        assert counted_since(rate_limits, before) == {"rust_calls": 8}
        litellm.callbacks.clear()
        before = counted(rate_limits)
        assert refusals_through_router("shadow") == reference
        assert counted_since(rate_limits, before) == {"rust_calls": 8, "comparisons": 8}
    finally:
        instrumentor.uninstrument()


@pytest.mark.parametrize(
    ("deployment", "reason"),
    [
        (
            {"model_name": "a", "litellm_params": {"model": "m", "itpm": 10}, "model_info": {"id": "x"}},
            "io_token_limits",
        ),
        (
            {"model_name": "a", "litellm_params": {"model": "m", "rpm": "5"}, "model_info": {"id": "x"}},
            "unusual_limits",
        ),
        (
            {"model_name": "a", "litellm_params": {"model": "m", "rpm": True}, "model_info": {"id": "x"}},
            "unusual_limits",
        ),
        (
            {"model_name": "a", "litellm_params": {"model": "m", "tpm": 10**30}, "model_info": {"id": "x"}},
            "unusual_limits",
        ),
        ({"model_name": "a", "litellm_params": None, "model_info": {"id": "x"}}, "unusual_deployment"),
        (
            {"model_name": "a", "litellm_params": {"model": "m", "rpm": 1}, "model_info": {"id": 7}},
            "unusual_deployment",
        ),
        (
            {
                "model_name": "a",
                "litellm_params": {"model": "m", "rpd": 1, "daily_reset_time": "6pm"},
                "model_info": {"id": "x"},
            },
            "unusual_deployment",
        ),
    ],
)
def test_what_litellm_would_read_differently_falls_back_counted(deployment, reason, rate_limits, instrumented):
    check = ModelRateLimitingCheck(DualCache())
    expected = ModelRateLimitingCheck.pre_call_check.__wrapped__(ModelRateLimitingCheck(DualCache()), deployment)
    before = counted(rate_limits)
    assert check.pre_call_check(deployment) == expected
    assert counted_since(rate_limits, before) == {f"fallback:{reason}": 1}


@pytest.mark.parametrize("limits", [{"rpm": -1}, {"rpd": -5}, {"tpm": -1, "rpm": 2}, {"rpm": 2**62}])
def test_negative_and_huge_limits_decide_like_litellm(limits, rate_limits, instrumented):
    deployment = {"model_name": "a", "litellm_params": {"model": "m", **limits}, "model_info": {"id": "x"}}
    original = ModelRateLimitingCheck.pre_call_check.__wrapped__
    reference_check, check = ModelRateLimitingCheck(DualCache()), ModelRateLimitingCheck(DualCache())

    def outcome(run) -> str:
        try:
            return f"admitted {run() is deployment}"
        except litellm.RateLimitError as error:
            return error.message

    before = counted(rate_limits)
    for _ in range(3):
        assert outcome(lambda: check.pre_call_check(deployment)) == outcome(
            lambda: original(reference_check, deployment)
        )
    assert counted_since(rate_limits, before) == {"rust_calls": 3}


def test_a_cache_shared_through_redis_or_with_usage_routing_falls_back(rate_limits, instrumented, no_earlier_routers):
    before = counted(rate_limits)
    router = litellm.Router(
        model_list=[{"model_name": "g", "litellm_params": {"model": "openai/m", "api_key": "k", "rpm": 5}}],
        optional_pre_call_checks=["enforce_model_rate_limits"],
        routing_strategy="usage-based-routing-v2",
    )
    router.completion(model="g", messages=[{"role": "user", "content": "hi"}], mock_response="ok")
    assert counted_since(rate_limits, before) == {"fallback:shared_with_usage_routing": 1}

    class FakeRedis:  # litellm's check reads through it; its failure makes litellm admit
        def get_cache(self, **kwargs):
            raise ConnectionError("no redis here")

    cache = DualCache()
    cache.redis_cache = FakeRedis()
    deployment = {"model_name": "a", "litellm_params": {"model": "m", "tpm": 1}, "model_info": {"id": "x"}}
    before = counted(rate_limits)
    assert ModelRateLimitingCheck(cache).pre_call_check(deployment) is deployment
    assert counted_since(rate_limits, before) == {"fallback:redis_cache": 1}


@pytest.mark.parametrize("fault", ["error", "panic"])
def test_a_rust_failure_is_served_by_litellm_and_counted(fault, rate_limits, instrumented):
    deployment = {"model_name": "a", "litellm_params": {"model": "m", "rpm": 1}, "model_info": {"id": "x"}}
    check = ModelRateLimitingCheck(DualCache())
    _native.inject_fault(fault)
    before = counted(rate_limits)
    assert check.pre_call_check(deployment) is deployment
    with pytest.raises(litellm.RateLimitError):
        check.pre_call_check(deployment)  # litellm's own count served both calls
    assert counted_since(rate_limits, before) == {f"fallback:rust_{fault}": 2}


def test_shadow_mode_catches_a_wrong_rust_decision(rate_limits, instrumented):
    set_mode("rate_limits", "shadow")
    deployment = {"model_name": "a", "litellm_params": {"model": "m", "rpm": 100}, "model_info": {"id": "x"}}
    check = ModelRateLimitingCheck(DualCache())
    _native.inject_fault("wrong_result")
    before = counted(rate_limits)
    for _ in range(3):
        assert check.pre_call_check(deployment) is deployment  # Python still decides
    # The first mismatch opens the breaker: Rust is not asked again until it half-opens.
    assert counted_since(rate_limits, before) == {"rust_calls": 1, "comparisons": 1, "mismatches": 1}
    assert rate_limits.control.breaker.state == "open"


def test_threads_sharing_a_router_never_admit_more_than_the_limit(rate_limits, instrumented):
    deployment = {"model_name": "a", "litellm_params": {"model": "m", "rpm": 5_000}, "model_info": {"id": "x"}}
    # A still clock: one window for the whole test, however long it runs.
    still = datetime(2026, 11, 27, 10, 5, tzinfo=UTC)
    check = ModelRateLimitingCheck(DualCache(in_memory_cache=InMemoryCache(clock=lambda: 0.0)), clock=lambda: still)
    admitted = []

    def hammer() -> None:
        mine = 0
        for _ in range(2_000):
            try:
                check.pre_call_check(deployment)
                mine += 1
            except litellm.RateLimitError:
                pass
        admitted.append(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 5_000


def test_python_mode_serves_litellms_own_check(rate_limits, instrumented):
    set_mode("rate_limits", "python")
    deployment = {"model_name": "a", "litellm_params": {"model": "m", "rpm": 1}, "model_info": {"id": "x"}}
    check = ModelRateLimitingCheck(DualCache(), clock=lambda: datetime(2026, 11, 27, 10, 5, tzinfo=UTC))
    before = counted(rate_limits)
    assert asyncio.run(check.async_pre_call_check(deployment)) is deployment
    with pytest.raises(litellm.RateLimitError, match="RPM limit=1, current usage=2"):
        asyncio.run(check.async_pre_call_check(deployment))
    assert counted_since(rate_limits, before) == {}
    assert rate_limits.control.status()["calls"]["python/python"] >= 2
    assert check.dual_cache.get_cache(key="x:m:rpm:10-05") == 1  # litellm's own counter
