"""Routing picks served by Rust, checked against litellm's own Router and strategy handlers.

State is driven through the handlers' own callbacks (successes with chosen latencies and usage,
timeouts, pre-call rpm counting) and through real `Router.acompletion(mock_response=...)` calls.
The random strategies are compared by the set litellm draws from and by a chi-square test of
the draw itself.
"""

import asyncio
import copy
import itertools
from collections import Counter
from datetime import datetime, timedelta

import litellm
import pytest
from litellm import ModelResponse, Router
from litellm.router_rust import core
from litellm.router_rust.steps import selection

import litellm_rust
from litellm_rust import LiteLLMRustInstrumentor
from litellm_rust.components import components

GROUP = "g"
MESSAGES = [{"role": "user", "content": "hello there"}]
# A second Router with the same strategy and args would share the first one's registered
# callback (litellm dedupes callbacks by class and primitive attributes): each gets its own ttl.
_distinct = itertools.count(3600)


@pytest.fixture
def routing():
    return components()["routing"]


@pytest.fixture
def instrumented_as():
    instrumentor = LiteLLMRustInstrumentor()

    def instrument(mode: str):
        instrumentor.instrument(mode=mode)
        return instrumentor

    yield instrument
    instrumentor.uninstrument()


def make_router(strategy: str, n: int, limits: bool = True) -> Router:
    """n mock deployments; with `limits`, some carry rpm/tpm limits (0 among them) and prices."""
    model_list = []
    for i in range(n):
        params = {"model": "openai/gpt-4o" if i % 2 else "openai/gpt-4o-mini", "api_key": "x", "mock_response": "hi"}
        if limits:
            if i % 3 == 0:
                params["rpm"] = 4
            if i % 4 == 1:
                params["tpm"] = 0 if i % 8 == 1 else 40
            if i % 5 == 2:
                params["input_cost_per_token"] = 0.000001 * (i % 3)
            if i % 6 == 1:
                params["api_base"] = f"https://b{i % 2}.example"
        model_list.append({"model_name": GROUP, "litellm_params": params, "model_info": {"id": f"d{i}"}})
    args = {"ttl": next(_distinct)} if strategy in ("latency-based-routing", "usage-based-routing-v2") else {}
    return Router(model_list=model_list, routing_strategy=strategy, routing_strategy_args=args)


def selector_of(router: Router):
    return router._core._selectors.default


def success_kwargs(deployment_id: str, model: str, tokens: int, stream: bool = False) -> dict:
    start = datetime.now()
    return {
        "litellm_params": {"metadata": {"model_group": GROUP}, "model_info": {"id": deployment_id}},
        "standard_logging_object": {
            "model_group": GROUP,
            "model_id": deployment_id,
            "hidden_params": {"litellm_model_name": model},
            "total_tokens": tokens,
        },
        "stream": stream,
        "completion_start_time": start + timedelta(seconds=0.05),
    }


def response(tokens: int) -> ModelResponse:
    return ModelResponse(usage={"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": tokens + 1})


async def drive_state(router: Router, rounds: int, seed: int) -> None:
    """Successes with varied latency and usage, timeouts and pre-call rpm counts, each through
    the strategy handler's own callbacks, plus a few real mock completions."""
    import random

    rng = random.Random(seed)
    selector = selector_of(router)
    deployments = router.registry().deployments(GROUP)
    for _ in range(rounds):
        deployment = rng.choice(deployments)
        deployment_id = deployment["model_info"]["id"]
        model = deployment["litellm_params"]["model"]
        tokens = rng.choice([1, 5, 5, 20])
        kwargs = success_kwargs(deployment_id, model, tokens, stream=rng.random() < 0.3)
        end = datetime.now()
        start = end - timedelta(seconds=rng.choice([0.1, 0.2, 0.2, 0.4]))
        if hasattr(selector, "async_log_success_event") and not isinstance(selector, litellm.router_strategy.least_busy.LeastBusyLoggingHandler):
            await selector.async_log_success_event(kwargs, response(tokens), start, end)
        if rng.random() < 0.1 and hasattr(selector, "async_log_failure_event"):
            failure = {**kwargs, "exception": litellm.Timeout("slow", model=model, llm_provider="openai")}
            await selector.async_log_failure_event(failure, None, start, end)
        if rng.random() < 0.3 and hasattr(selector, "async_pre_call_check"):
            try:
                await selector.async_pre_call_check(deployment, None)
            except litellm.RateLimitError:
                pass
    for _ in range(3):
        await router.acompletion(model=GROUP, messages=MESSAGES, mock_response="hi")


STRATEGIES = ["latency-based-routing", "usage-based-routing-v2", "cost-based-routing", "least-busy"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_shadow_finds_no_mismatch_over_many_picks(strategy, routing, instrumented_as):
    instrumented_as("shadow")
    router = make_router(strategy, 24)

    async def run():
        for round_ in range(40):
            await drive_state(router, 5, seed=round_)
            for _ in range(3):
                try:
                    await router.select(GROUP, {}, messages=MESSAGES)
                except (litellm.RateLimitError, ValueError):
                    pass  # every deployment over its limits: litellm's own error, in both modes
                if strategy != "cost-based-routing":
                    try:
                        router.get_available_deployment(GROUP, messages=MESSAGES)
                    except (litellm.RateLimitError, ValueError):
                        pass

    asyncio.run(run())
    status = litellm_rust.status()["routing"]
    assert status["shadow_mismatches"] == 0, status["mismatch_details"]
    assert status["shadow_comparisons"] >= 100
    assert set(status["fallback_reasons"]) <= {"no_deployment_available"}


def python_and_rust_picks(router: Router, routing, draws: int, is_async: bool, request=None):
    """`draws` picks over the same candidates and state by litellm's pick and by the replacement."""
    selector = selector_of(router)
    strategy = router.routing_strategy
    candidates = [copy.deepcopy(d) for d in router.registry().deployments(GROUP)]
    arguments = (strategy, selector, GROUP, candidates, MESSAGES, None, request)

    def ids(pick_function):
        picks = []
        for _ in range(draws):
            picked = pick_function(*arguments)
            picked = asyncio.run(picked) if is_async else picked
            picks.append(picked["model_info"]["id"] if picked is not None else None)
        return picks

    reference = routing.reference_async if is_async else routing.reference_sync
    replacement = selection.pick_async if is_async else selection.pick_sync
    return ids(reference), ids(replacement)


@pytest.mark.parametrize(
    ("strategy", "is_async"),
    # litellm has no sync cost-based pick
    [(strategy, is_async) for strategy in STRATEGIES for is_async in (True, False) if is_async or strategy != "cost-based-routing"],
)
def test_rust_mode_picks_from_litellms_set(strategy, is_async, routing, instrumented_as):
    router = make_router(strategy, 16)
    asyncio.run(drive_state(router, 60, seed=7))
    instrumented_as("rust")
    python, rust = python_and_rust_picks(router, routing, 200, is_async)
    assert set(rust) == set(python)
    status = litellm_rust.status()["routing"]
    assert status["rust_calls"] >= 200 and status["fallbacks"] == 0, status


def chi_square_homogeneity(first: Counter, second: Counter) -> tuple[float, int]:
    """Pearson's statistic for two samples over the same categories, and its degrees of freedom."""
    categories = sorted(set(first) | set(second))
    n1, n2 = sum(first.values()), sum(second.values())
    statistic = 0.0
    for category in categories:
        total = first[category] + second[category]
        for observed, n in ((first[category], n1), (second[category], n2)):
            expected = total * n / (n1 + n2)
            statistic += (observed - expected) ** 2 / expected
    return statistic, len(categories) - 1


# Upper 0.1% points of the chi-square distribution (standard tables), by degrees of freedom.
CHI_SQUARE_999 = {1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467, 5: 20.515, 6: 22.458, 7: 24.322, 8: 26.124}


def test_latency_buffer_draw_has_litellms_distribution(routing, instrumented_as):
    router = Router(
        model_list=[
            {"model_name": GROUP, "litellm_params": {"model": "openai/gpt-4o", "api_key": "x"}, "model_info": {"id": f"d{i}"}}
            for i in range(8)
        ],
        routing_strategy="latency-based-routing",
        routing_strategy_args={"lowest_latency_buffer": 0.5, "ttl": next(_distinct)},
    )
    selector = selector_of(router)
    end = datetime.now()
    for i, seconds in enumerate([1.0, 1.2, 1.4, 1.5, 1.6, 2.0, 3.0, 4.0]):
        kwargs = success_kwargs(f"d{i}", "openai/gpt-4o", 0)
        selector.log_success_event(kwargs, None, end - timedelta(seconds=seconds), end)
    instrumented_as("rust")
    python, rust = python_and_rust_picks(router, routing, 10_000, is_async=False)
    assert set(python) == set(rust) == {"d0", "d1", "d2", "d3"}  # within 1.0 + 0.5 * 1.0
    statistic, freedom = chi_square_homogeneity(Counter(python), Counter(rust))
    assert statistic < CHI_SQUARE_999[freedom]


def test_latency_side_effects_match_litellm(routing, instrumented_as):
    """Placeholders written into the latency map and `_latency_per_deployment` in the metadata."""
    router = make_router("latency-based-routing", 12)
    selector = selector_of(router)
    end = datetime.now()
    for i in range(5):  # the other seven have not been seen yet: a pick gives them placeholders
        selector.log_success_event(success_kwargs(f"d{i}", "m", 3), response(3), end - timedelta(seconds=0.1 * i), end)
    key = f"{GROUP}_map"
    before = copy.deepcopy(selector.router_cache.get_cache(key))
    assert len(before) == 5
    candidates = router.registry().deployments(GROUP)

    def pick(pick_function):
        selector.router_cache.set_cache(key, copy.deepcopy(before), ttl=3600)
        request = {"metadata": {}}
        pick_function("latency-based-routing", selector, GROUP, candidates, MESSAGES, None, request)
        return selector.router_cache.get_cache(key), request["metadata"]["_latency_per_deployment"]

    python_map, python_debug = pick(routing.reference_sync)
    instrumented_as("rust")
    rust_map, rust_debug = pick(selection.pick_sync)
    assert rust_map == python_map
    assert set(rust_debug) == set(python_debug)
    # Deployments sharing an api_base leave one of their latencies (litellm's random visit order).
    latencies = {base: set() for base in rust_debug}
    for deployment in candidates:
        samples = rust_map[deployment["model_info"]["id"]]["latency_normalized"]
        latencies[deployment["litellm_params"].get("api_base", "")].add(sum(samples) / len(samples))
    assert all(rust_debug[base] in latencies[base] for base in rust_debug)
    assert all(python_debug[base] in latencies[base] for base in python_debug)


def test_least_busy_reservations_steer_the_next_pick(routing, instrumented_as):
    router = make_router("least-busy", 4, limits=False)
    selector = selector_of(router)
    candidates = router.registry().deployments(GROUP)
    instrumented_as("rust")
    picked = [
        selection.pick_sync("least-busy", selector, GROUP, candidates, None, None, {"litellm_call_id": f"c{i}"}, reserve=True)
        for i in range(4)
    ]
    # Each reservation counts as in flight, so four reserving picks spread over four deployments.
    assert sorted(p["model_info"]["id"] for p in picked) == ["d0", "d1", "d2", "d3"]
    assert selector._reservations.get_cache("least_busy_picked:c0") == ("d0",)


def test_unserved_configurations_fall_back_and_are_counted(routing, instrumented_as):
    instrumented_as("rust")
    v1 = make_router("usage-based-routing", 4)
    assert v1.get_available_deployment(GROUP, messages=MESSAGES) is not None
    cost = make_router("cost-based-routing", 4)
    selection.pick_sync("cost-based-routing", selector_of(cost), GROUP, cost.registry().deployments(GROUP), MESSAGES, None, {})
    busy = make_router("least-busy", 4)
    cache = selector_of(busy).router_cache
    cache.redis_cache = object()  # stands for a configured Redis, which the Rust path does not read
    try:
        assert selection.pick_sync("least-busy", selector_of(busy), GROUP, busy.registry().deployments(GROUP), None, None, {})
    finally:
        cache.redis_cache = None
    reasons = litellm_rust.status()["routing"]["fallback_reasons"]
    assert reasons.get("unserved_strategy", 0) >= 2 and reasons.get("redis_cache") == 1


def test_instrument_and_uninstrument_rebind_every_pick_site(routing):
    originals = (routing.reference_async, routing.reference_sync)
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        for module in (selection, core):
            assert module.pick_async is routing.replacements()[originals[0]]
            assert module.pick_sync is routing.replacements()[originals[1]]
    finally:
        instrumentor.uninstrument()
    for module in (selection, core):
        assert (module.pick_async, module.pick_sync) == originals
