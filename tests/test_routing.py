"""Routing picks served by Rust, checked against litellm's own Router and strategy handlers.

State is driven through the handlers' own callbacks (successes with chosen latencies and usage,
timeouts, pre-call rpm counting) and through real `Router.acompletion(mock_response=...)` calls.
The random strategies are compared by the set litellm draws from and by a chi-square test of
the draw itself.
"""

import asyncio
import copy
import itertools
import random
from collections import Counter
from datetime import datetime, timedelta

import litellm
import pytest
from litellm import ModelResponse, Router
from litellm.router_api import ChangeSet
from litellm.router_rust import core
from litellm.router_rust.steps import selection
from litellm.types.router import Deployment
from litellm_rust import LiteLLMRustInstrumentor

GROUP = "g"
MESSAGES = [{"role": "user", "content": "hello there"}]
# A second Router with the same strategy and args would share the first one's registered
# callback (litellm dedupes callbacks by class and primitive attributes): each gets its own ttl.
_distinct = itertools.count(3600)


def make_router(strategy: str, n: int, limits: bool = True, id_prefix: str = "d", **router_args) -> Router:
    """n mock deployments (ids `{id_prefix}{i}`); with `limits`, some carry rpm/tpm limits (0 among
    them) and prices."""
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
        model_list.append({"model_name": GROUP, "litellm_params": params, "model_info": {"id": f"{id_prefix}{i}"}})
    args = {"ttl": next(_distinct)} if strategy in ("latency-based-routing", "usage-based-routing-v2") else {}
    return Router(model_list=model_list, routing_strategy=strategy, routing_strategy_args=args, **router_args)


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
        if hasattr(selector, "async_log_success_event") and not isinstance(
            selector, litellm.router_strategy.least_busy.LeastBusyLoggingHandler
        ):
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


STRATEGIES = [
    "latency-based-routing",
    "usage-based-routing",
    "usage-based-routing-v2",
    "cost-based-routing",
    "least-busy",
]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_shadow_finds_no_mismatch_over_many_picks(strategy, routing, instrumented_as, counted_since_start):
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
    status = counted_since_start()
    assert status["shadow_mismatches"] == 0, status["mismatch_details"]
    assert status["shadow_comparisons"] >= 100
    assert set(status["fallback_reasons"]) <= {"no_deployment_available"}


def python_and_rust_picks(router: Router, routing, draws: int, is_async: bool, request=None):
    """`draws` picks over the same candidates and state by litellm's pick and by the replacement."""
    selector = selector_of(router)
    strategy = router.settings().routing_strategy
    candidates = [copy.deepcopy(d) for d in router.registry().deployments(GROUP)]
    arguments = (strategy, selector, GROUP, candidates, MESSAGES, None, request)

    def ids(pick_function):
        picks = []
        for _ in range(draws):
            picked = pick_function(*arguments)
            picked = asyncio.run(picked) if is_async else picked
            picks.append(picked["model_info"]["id"] if picked is not None else None)
        return picks

    reference = routing.strategies.reference_async if is_async else routing.strategies.reference_sync
    replacement = selection.pick_async if is_async else selection.pick_sync
    return ids(reference), ids(replacement)


@pytest.mark.parametrize(
    ("strategy", "is_async"),
    # litellm has no sync cost-based pick
    [
        (strategy, is_async)
        for strategy in STRATEGIES
        for is_async in (True, False)
        if is_async or strategy != "cost-based-routing"
    ],
)
def test_rust_mode_picks_from_litellms_set(strategy, is_async, routing, instrumented_as, counted_since_start):
    router = make_router(strategy, 16)
    asyncio.run(drive_state(router, 60, seed=7))
    instrumented_as("rust")
    python, rust = python_and_rust_picks(router, routing, 200, is_async)
    assert set(rust) == set(python)
    status = counted_since_start()
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
            {
                "model_name": GROUP,
                "litellm_params": {"model": "openai/gpt-4o", "api_key": "x"},
                "model_info": {"id": f"d{i}"},
            }
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

    python_map, python_debug = pick(routing.strategies.reference_sync)
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
        selection.pick_sync(
            "least-busy", selector, GROUP, candidates, None, None, {"litellm_call_id": f"c{i}"}, reserve=True
        )
        for i in range(4)
    ]
    # Each reservation counts as in flight, so four reserving picks spread over four deployments.
    assert sorted(p["model_info"]["id"] for p in picked) == ["d0", "d1", "d2", "d3"]
    assert selector._reservations.get_cache("least_busy_picked:c0") == ("d0",)


def test_unserved_configurations_fall_back_and_are_counted(routing, instrumented_as, counted_since_start):
    instrumented_as("rust")
    cost = make_router("cost-based-routing", 4)
    selection.pick_sync(
        "cost-based-routing", selector_of(cost), GROUP, cost.registry().deployments(GROUP), MESSAGES, None, {}
    )
    latency = make_router("latency-based-routing", 4)
    cache = selector_of(latency).router_cache
    # Stands for a configured Redis: the latency map memory lacks is litellm's pick to read there
    # (litellm's DualCache logs the failed read of this stand-in and answers None).
    cache.redis_cache = object()
    try:
        deployments = latency.registry().deployments(GROUP)
        assert selection.pick_sync("latency-based-routing", selector_of(latency), GROUP, deployments, None, None, {})
    finally:
        cache.redis_cache = None
    reasons = counted_since_start()["fallback_reasons"]
    assert reasons.get("unserved_strategy", 0) >= 1 and reasons.get("redis_cache") == 1


def test_instrument_and_uninstrument_rebind_every_pick_site(routing):
    originals = (routing.strategies.reference_async, routing.strategies.reference_sync)
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


# -- the step glue around a served pick (`steps`) -----------------------------------------


STEP_REPLACED = ("_strategy_inputs", "_answer_cache", "_answer_cache_sync", "_usage_read_scope")
# Every failure cools its deployment down, for the rest of the test.
COOLING = {"allowed_fails": 0, "cooldown_time": 60}


def cool_down(router: Router, failures: int) -> None:
    """Rate-limit errors through litellm's own failure handling: each cools its deployment down."""

    async def fail():
        for _ in range(failures):
            error = litellm.RateLimitError("slow down", llm_provider="openai", model="gpt-4o")
            with pytest.raises(litellm.RateLimitError):
                await router.acompletion(model=GROUP, messages=MESSAGES, mock_response=error, num_retries=0)

    asyncio.run(fail())


def cooling_ids(router: Router) -> set[str]:
    return {key.split(":")[1] for key in router._core._cooldowns.cooldown_store.snapshot()}


def strategy_step(router: Router, ids: list[str]) -> dict:
    """A strategy select step as router-core sends it for the router's own strategy."""
    return {
        "kind": "select",
        "stage": "strategy",
        "strategy": router._core._resolved.routing_strategy,
        "model_group": GROUP,
        "model": GROUP,
        "scope": "default",
        "group": None,
        "candidates": ids,
        "pool": [],
        "events": [],
    }


def cooldown_step(ids: list[str]) -> dict:
    return {
        "kind": "cache",
        "op": "batch_get",
        "key": None,
        "keys": [f"deployment:{i}:cooldown" for i in ids],
        "value": None,
        "ttl": None,
        "local": False,
        "events": [],
    }


def memory(router):
    """The router's in-memory cache, where the strategy handlers keep their state."""
    return router._core._cache.in_memory_cache


def picks(router, rounds: int = 10, request: dict | None = None) -> set[str]:
    """Sync and async picks; in shadow mode each is compared with litellm's on the same state.
    With `request`, each pick is given a copy of it (the async pick as its request, the sync pick
    as its `request_kwargs`)."""
    chosen = set()

    async def run():
        for _ in range(rounds):
            if request is None:
                chosen.add((await router.select(GROUP, {}, messages=MESSAGES))["model_info"]["id"])
                chosen.add(router.get_available_deployment(GROUP, messages=MESSAGES)["model_info"]["id"])
            else:
                chosen.add((await router.select(GROUP, copy.deepcopy(request), messages=MESSAGES))["model_info"]["id"])
                picked = router.get_available_deployment(
                    GROUP, messages=MESSAGES, request_kwargs=copy.deepcopy(request)
                )
                chosen.add(picked["model_info"]["id"])

    asyncio.run(run())
    return chosen


def mirror_counts(mirrors, router):
    """The counts of the mirror `mirrors` (the routing component's usage or latency mirrors) keeps
    of the router's in-memory cache ({} while it keeps none)."""

    def counts() -> dict:
        mirror = mirrors._mirrors.get(id(memory(router)))
        return mirror.counts() if mirror is not None else {}

    return counts


def with_model_list_change(router: Router, index: int) -> None:
    """Moves the registry version: one deployment's rpm limit changes."""
    deployment = copy.deepcopy(router.registry().deployments(GROUP)[index])
    deployment["litellm_params"]["rpm"] = 1000 + index
    router.apply(ChangeSet(upsert=[Deployment(**deployment)]))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_shadow_finds_no_mismatch_with_cooldowns_and_model_list_changes(strategy, instrumented_as, counted_since_start):
    router = make_router(strategy, 16, **COOLING)
    instrumented_as("shadow")

    async def picks():
        for _ in range(4):
            for pick in (
                router.select(GROUP, {}, messages=MESSAGES),
                router.acompletion(model=GROUP, messages=MESSAGES),
            ):
                try:
                    await pick
                except (litellm.RateLimitError, ValueError):
                    pass
            if strategy != "cost-based-routing":
                try:
                    router.get_available_deployment(GROUP, messages=MESSAGES)
                except (litellm.RateLimitError, ValueError):
                    pass

    for round_ in range(6):
        asyncio.run(drive_state(router, 5, seed=round_))
        cool_down(router, 1)
        with_model_list_change(router, round_)
        asyncio.run(picks())
    assert cooling_ids(router)  # the cooldown reads compared saw deployments cooling
    status = counted_since_start()
    assert status["shadow_mismatches"] == 0, status["mismatch_details"]
    assert status["shadow_comparisons"] >= 60
    assert set(status["fallback_reasons"]) <= {"no_deployment_available"}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_rust_mode_never_picks_a_cooling_deployment(strategy, instrumented_as, counted_since_start):
    router = make_router(strategy, 8, limits=False, **COOLING)
    cool_down(router, 4)
    cooling = cooling_ids(router)
    assert 0 < len(cooling) < 8
    instrumented_as("rust")

    async def picks():
        return [(await router.select(GROUP, {}, messages=MESSAGES))["model_info"]["id"] for _ in range(40)]

    picked = set(asyncio.run(picks()))
    if strategy != "cost-based-routing":
        picked |= {router.get_available_deployment(GROUP, messages=MESSAGES)["model_info"]["id"] for _ in range(40)}
    assert picked and not picked & cooling
    status = counted_since_start()
    assert status["rust_calls"] >= 40 and status["fallbacks"] == 0, status


def test_cooldown_answer_is_litellms(routing, instrumented_as):
    router = make_router("latency-based-routing", 8, limits=False, **COOLING)
    cool_down(router, 3)
    ids = ["d7", "d0", "d1", "d0", "unknown", *sorted(cooling_ids(router))]
    step = cooldown_step(ids)
    core_ = router._core
    expected = routing.steps.reference["_answer_cache_sync"](core_, step)
    instrumented_as("rust")
    assert core_._answer_cache_sync(step) == expected
    assert asyncio.run(core_._answer_cache(step)) == expected
    assert sum(value is not None for value in expected) >= len(cooling_ids(router))


def test_a_pick_over_shared_records_hands_back_a_fresh_dict(instrumented_as, counted_since_start):
    router = make_router("least-busy", 6)
    core_ = router._core
    step = strategy_step(router, [f"d{i}" for i in range(6)])
    instrumented_as("rust")
    strategy, selector, model, candidates = core_._strategy_inputs(step, {})
    picked = selection.pick_sync(strategy, selector, model, candidates, None, None, {})
    assert all(picked is not candidate for candidate in candidates)
    assert picked == dict(core_._handle.deployment(picked["model_info"]["id"]))
    picked["litellm_params"]["rpm"] = -1  # the caller's own dict: the shared records are untouched
    assert all(record["litellm_params"].get("rpm") != -1 for record in core_._strategy_inputs(step, {})[3])
    assert counted_since_start()["fallbacks"] == 0


def test_shared_records_follow_model_list_changes(instrumented_as):
    router = make_router("latency-based-routing", 4)
    core_ = router._core
    step = strategy_step(router, ["d0", "d1", "d2", "d3"])
    instrumented_as("rust")
    before = core_._strategy_inputs(step, {})[3]
    with_model_list_change(router, 2)
    after = core_._strategy_inputs(step, {})[3]
    assert after[2]["litellm_params"]["rpm"] == 1002 != before[2]["litellm_params"].get("rpm")
    assert after == [dict(core_._handle.deployment(f"d{i}")) for i in range(4)]


def test_declined_strategy_steps_are_litellms_and_counted(routing, instrumented_as, counted_since_start):
    router = make_router("latency-based-routing", 3)
    core_ = router._core
    step = strategy_step(router, ["d0", "d1", "d2"])
    reference = routing.steps.reference["_strategy_inputs"]
    instrumented_as("rust")
    pinned = {"_encrypted_content_affinity_pinned": True}
    assert core_._strategy_inputs(step, pinned) == reference(core_, step, pinned)
    with_records = {**step, "records": [core_._handle.deployment("d0"), core_._handle.deployment("d0")]}
    assert core_._strategy_inputs(with_records, {}) == reference(core_, with_records, {})
    reasons = counted_since_start()["fallback_reasons"]
    assert reasons == {"encrypted_content_pin": 1, "duplicate_ids": 1}


def test_usage_read_scope_is_skipped_only_where_no_usage_is_read(instrumented_as):
    latency, usage = make_router("latency-based-routing", 3), make_router("usage-based-routing-v2", 3)
    instrumented_as("rust")

    def reads_usage(router: Router, request: dict) -> bool:
        with router._core._usage_read_scope(GROUP, request):
            return core._USAGE_READ.get() is not None

    assert not reads_usage(latency, {})
    assert reads_usage(latency, {"routing_strategy": "usage-based-routing-v2"})
    assert reads_usage(usage, {})


def test_uninstrument_restores_the_core_step_methods(routing):
    originals = {name: vars(core.RustCore)[name] for name in STEP_REPLACED}
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        for name, original in originals.items():
            assert vars(core.RustCore)[name] is routing.replacements()[original]
    finally:
        instrumentor.uninstrument()
    assert {name: vars(core.RustCore)[name] for name in STEP_REPLACED} == originals


def _pick_context():
    """A routing component's `PickContext` of its own (counter keys and plans start empty)."""
    from litellm_rust import _native

    return _native.PickContext(
        stats=_native.CallStats(), randrange=random.randrange, compensated_sum=False, reservation_ttl=1.0
    )


def test_remembered_counter_keys_follow_the_minute_and_the_group():
    """One `PickContext`'s counter keys reused across picks: a new minute (usage-v2) or another
    model group (least-busy) reads that minute's or group's counters, not the remembered keys'."""
    from litellm.caching.in_memory_cache import InMemoryCache
    from litellm_rust import _native

    context = _pick_context()
    deployments = [{"litellm_params": {"model": "m"}, "model_info": {"id": f"d{i}"}} for i in range(2)]
    usage = InMemoryCache()
    usage.set_cache("d0:m:tpm:10-00", 5)
    usage.set_cache("d1:m:tpm:10-00", 1)
    usage.set_cache("d0:m:tpm:10-01", 0)
    usage.set_cache("d1:m:tpm:10-01", 3)

    def least_used(minute: str) -> list:
        return _native.least_used(
            deployments,
            minute=minute,
            cache=usage,
            prefetched_keys=None,
            prefetched_values=None,
            count_input_tokens=lambda: 0,
            context=context,
        )

    assert least_used("10-00") == [deployments[1]]
    assert least_used("10-01") == [deployments[0]]
    assert least_used("10-00") == [deployments[1]]

    counts, reservations = InMemoryCache(), InMemoryCache()
    counts.set_cache("a_request_count:d0", 2)
    counts.set_cache("b_request_count:d1", 2)

    def least_busy(group: str) -> int | None:
        return _native.least_busy(
            deployments,
            request=_native.LeastBusyRequest(
                group=group, counts=counts, reservations=reservations, now=0.0, shared_in_flight=None
            ),
            context=context,
        )

    assert least_busy("a") == 1
    assert least_busy("b") == 0
    assert least_busy("a") == 1


def test_candidate_plans_follow_the_listed_dicts_and_the_group():
    """One `PickContext`'s plans reused across picks over shared records read a list of other dicts
    (same ids, other limits), another order or another group as that list, not as the plan kept for
    the first one."""
    from litellm.caching.in_memory_cache import InMemoryCache
    from litellm_rust import _native

    context = _pick_context()

    def records(tpm_limits: list) -> list:
        return [
            {"litellm_params": {"model": "m", "tpm": limit}, "model_info": {"id": f"d{i}"}}
            for i, limit in enumerate(tpm_limits)
        ]

    roomy, tight = records([1000, 1000]), records([5, 1000])
    tpm = {"d0": 1, "d1": 3}

    def lowest_tpm(deployments: list, with_plans: bool) -> int | None:
        return _native.lowest_tpm(
            deployments,
            tpm=dict(tpm),
            rpm=None,
            count_input_tokens=lambda: 10,
            commit=False,
            context=context,
            shared_records=with_plans,
        )

    for deployments in (roomy, tight, roomy, list(reversed(tight)), tight):
        assert lowest_tpm(deployments, True) == lowest_tpm(deployments, False)
    assert (lowest_tpm(roomy, True), lowest_tpm(tight, True)) == (0, 1)

    counts, reservations = InMemoryCache(), InMemoryCache()
    counts.set_cache("a_request_count:d0", 2)
    counts.set_cache("b_request_count:d1", 2)

    def least_busy(deployments: list, group: str) -> int | None:
        return _native.least_busy(
            deployments,
            request=_native.LeastBusyRequest(
                group=group, counts=counts, reservations=reservations, now=0.0, shared_in_flight=None
            ),
            context=context,
            shared_records=True,
        )

    assert [least_busy(roomy, "a"), least_busy(roomy, "b"), least_busy(roomy, "a")] == [1, 0, 1]
    assert least_busy(list(reversed(roomy)), "a") == 0
    counts.set_cache("a_request_count:d1", 5)
    assert least_busy(roomy, "a") == 0  # the counts are read on every pick, only the keys are kept


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_pick_litellm_makes_otherwise_on_an_unmoved_state_is_a_mismatch(
    instrumented_as, counted_since_start, monkeypatch, strategy
):
    """What litellm's own pick writes does not count as the state moving: a pick differing from the
    shadow's on a state nobody else changed is a mismatch, not an uncompared call."""
    instrumented_as("shadow")
    router = make_router(strategy, 8)

    async def warm_up():  # every deployment seen, every map made (cost-based-routing picks async only)
        for _ in range(4):
            await router.select(GROUP, {}, messages=MESSAGES)

    asyncio.run(warm_up())
    before = counted_since_start()
    elsewhere = {"model_name": GROUP, "model_info": {"id": "elsewhere"}}
    handler = type(selector_of(router))
    # usage-based-routing's async pick calls its sync one; cost-based-routing has only an async one
    pick, async_pick = (
        getattr(handler, name, None) for name in ("get_available_deployments", "async_get_available_deployments")
    )

    def otherwise(self, *args, **kwargs):
        pick(self, *args, **kwargs)
        return elsewhere

    async def otherwise_async(self, *args, **kwargs):
        await async_pick(self, *args, **kwargs)
        return elsewhere

    for name, original, replaced in (
        ("get_available_deployments", pick, otherwise),
        ("async_get_available_deployments", async_pick, otherwise_async),
    ):
        if original is not None:
            monkeypatch.setattr(handler, name, replaced)
    deployments = copy.deepcopy(list(router.registry().all()))
    arguments = (strategy, selector_of(router), GROUP, deployments, MESSAGES, None, None)
    assert asyncio.run(selection.pick_async(*arguments)) is elsewhere
    counted = counted_since_start()
    assert counted["shadow_mismatches"] - before["shadow_mismatches"] == 1
    assert counted["shadow_uncompared"] == before["shadow_uncompared"]
