"""The routing component end to end (issue #4): a Router with 50 deployments, five of which always
fail (litellm's own `litellm.InternalServerError` mock) and cool down, driven by real
`acompletion` calls, per served strategy. In shadow mode Rust never disagrees with litellm; in rust
mode the workload leaves litellm's state (the strategy's cache entries, the usage counters, the
cooldown set) and the responses as python mode leaves them. Latency and usage-v2 draw at random,
and least-busy's and usage v1's picks follow when each call's callbacks land (in the background), so
for those each run's state must account for its own responses, and the runs share the kinds of
responses, not which deployment served which request."""

import asyncio
import random
import re
from collections import Counter

import litellm
import litellm_rust
import pytest
from litellm import Router
from litellm_rust import LiteLLMRustInstrumentor
from test_routing_health import cooling, settled

GROUP = "workload"
DEPLOYMENTS = 50
FAILING = {f"w{i}" for i in range(0, DEPLOYMENTS, 10)}
REQUESTS = 120
MESSAGES = [{"role": "user", "content": "hello there"}]
# Strategies whose picks differ from run to run even in python mode.
ORDER_DEPENDENT = {"latency-based-routing", "usage-based-routing", "usage-based-routing-v2", "least-busy"}
STRATEGIES = [
    "latency-based-routing",
    "usage-based-routing",
    "usage-based-routing-v2",
    "cost-based-routing",
    "least-busy",
]
# The minute litellm stamps into its keys (`%H-%M`, `%Y-%m-%d-%H-%M`): two runs may straddle one.
MINUTE = re.compile(r"(\d{4}-\d{2}-\d{2}-)?\d{2}-\d{2}$")


def make_router(strategy: str) -> Router:
    """Fifty deployments; the failing ones are the cheapest, so cost-based routing reaches them too."""
    model_list = []
    for i in range(DEPLOYMENTS):
        deployment_id = f"w{i}"
        failing = deployment_id in FAILING
        model_list.append(
            {
                "model_name": GROUP,
                "litellm_params": {
                    "model": "openai/gpt-4o",
                    "api_key": "x",
                    "mock_response": "litellm.InternalServerError" if failing else "hi",
                    "input_cost_per_token": 1e-9 if failing else 1e-6 * (1 + i % 7),
                    "output_cost_per_token": 1e-6,
                    "tpm": 1_000_000,
                    "rpm": 10_000,
                },
                "model_info": {"id": deployment_id},
            }
        )
    # allowed_fails=1: a failing deployment cools down at its second failure, for the whole test
    return Router(model_list=model_list, routing_strategy=strategy, num_retries=0, allowed_fails=1, cooldown_time=600)


def run_workload(strategy: str, mode: str, forget_strategy_handlers) -> tuple[Router, list]:
    """REQUESTS calls in `mode`, with a fixed seed; the router and each call's outcome."""
    forget_strategy_handlers()  # this router's strategy handler receives its own outcomes
    router = make_router(strategy)
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument(mode=mode)
    random.seed(20240611)

    async def drive() -> list:
        outcomes = []
        for _ in range(REQUESTS):
            try:
                response = await router.acompletion(model=GROUP, messages=MESSAGES)
            except litellm.InternalServerError as error:
                outcomes.append(("error", type(error).__name__, error.status_code))
            else:
                outcomes.append(
                    (
                        response._hidden_params["model_id"],
                        response.choices[0].message.content,
                        response.model,
                        response.usage.total_tokens,
                    )
                )
        await settled()
        return outcomes

    try:
        return router, asyncio.run(drive())
    finally:
        instrumentor.uninstrument()


def minute_free(key: str) -> str:
    return MINUTE.sub("minute", key)


def minutes_summed(fields: dict) -> dict:
    """A handler's per-deployment fields with its per-minute counters (`{minute: {"tpm": .., "rpm": ..}}`)
    added up under one key, so a run that crosses a wall-clock minute compares with one that does not."""
    collapsed = {}
    for field, data in fields.items():
        key = minute_free(field)
        if key != field and key in collapsed:
            data = {name: collapsed[key].get(name, 0) + data.get(name, 0) for name in {*collapsed[key], *data}}
        collapsed[key] = data
    return collapsed


def strategy_state(router: Router) -> dict:
    """What the strategy's handlers and the router core keep about the workload, minute keys
    collapsed: the strategy's cache entries and the tpm/rpm usage counters."""
    cache = router._core._cache.in_memory_cache
    entries = {}
    for key in (f"{GROUP}_map", f"cost_map:{GROUP}"):
        value = cache.get_cache(key)
        if value is not None:
            entries[key] = {deployment_id: minutes_summed(fields) for deployment_id, fields in value.items()}
    in_flight_prefix = f"{GROUP}_request_count:"
    entries["in_flight"] = {key: value for key, value in cache.cache_dict.items() if key.startswith(in_flight_prefix)}
    for key, value in cache.cache_dict.items():  # usage-based-routing v1's {id: count} per minute
        if key.startswith((f"{GROUP}:tpm:", f"{GROUP}:rpm:")):
            entries.setdefault(minute_free(key), Counter()).update(value)
    usage = Counter()
    for key, value in router._core._usage.snapshot().items():
        usage[minute_free(key)] += value
    entries["usage"] = dict(usage)
    return entries


def accounted(state: dict) -> dict:
    """What the callbacks counted: the core's usage counters summed per kind, usage-based-routing v1's
    per-minute maps, and the calls still in flight."""
    usage = Counter()
    for key, value in state["usage"].items():
        usage[key.split(":")[-2]] += value  # global_router:<id>:<model>:<tpm|rpm>:minute
    for key, counts in state.items():
        if key.startswith(f"{GROUP}:"):
            usage[f"v1 {key.split(':')[1]}"] += sum(counts.values())
    return {"usage": dict(usage), "in_flight": sum(state["in_flight"].values())}


def expected_accounting(strategy: str, outcomes: list) -> dict:
    """`accounted` as the run's responses imply it: every call counted as a request, a success's
    tokens counted (and, for v1, the success itself)."""
    successes = [o for o in outcomes if o[0] != "error"]
    tokens = sum(o[3] for o in successes)
    usage = {"tpm": tokens, "rpm": len(outcomes)}
    if strategy == "usage-based-routing":
        usage.update({"v1 tpm": tokens, "v1 rpm": len(successes)})
    return {"usage": usage, "in_flight": 0}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_shadow_mode_finds_no_mismatch_over_the_workload(strategy, own_strategy_callbacks, assert_no_mismatch):
    router, outcomes = run_workload(strategy, "shadow", own_strategy_callbacks)
    assert_no_mismatch()
    cooled = cooling(router)
    assert cooled and cooled <= FAILING
    # A cooled deployment failed twice; one the run reached only once failed once.
    assert 2 * len(cooled) <= Counter(outcome[0] for outcome in outcomes)["error"] <= 2 * len(FAILING)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_rust_mode_leaves_litellms_state_and_responses_as_python_mode(strategy, own_strategy_callbacks):
    python_router, python_outcomes = run_workload(strategy, "python", own_strategy_callbacks)
    fallbacks_before = Counter(litellm_rust.status()["routing"]["fallback_reasons"])  # kept across tests
    rust_router, rust_outcomes = run_workload(strategy, "rust", own_strategy_callbacks)
    assert Counter(litellm_rust.status()["routing"]["fallback_reasons"]) == fallbacks_before  # Rust served every pick

    # the failing deployments the strategy reached twice cooled down, in both modes (which ones, for
    # an order-dependent strategy, follows the run's timing)
    python_cooled, rust_cooled = cooling(python_router), cooling(rust_router)
    assert python_cooled and rust_cooled and python_cooled | rust_cooled <= FAILING
    python_state, rust_state = strategy_state(python_router), strategy_state(rust_router)
    if strategy in ORDER_DEPENDENT:
        # Picks follow when background callbacks land, even between two python runs (so does how
        # often a failing deployment is reached): each run's state accounts for its own responses.
        assert set(rust_state.get(f"{GROUP}_map", {})) == set(python_state.get(f"{GROUP}_map", {}))
        for state, outcomes in ((python_state, python_outcomes), (rust_state, rust_outcomes)):
            assert accounted(state) == expected_accounting(strategy, outcomes)
        assert {o[1:] for o in rust_outcomes} == {o[1:] for o in python_outcomes}
        served = {o[0] for o in rust_outcomes if o[0] != "error"}
        assert served and not served & FAILING
    else:
        assert rust_cooled == python_cooled
        assert rust_state == python_state
        assert rust_outcomes == python_outcomes
