"""`litellm-rust bench routing`: litellm Router picks and requests, litellm as shipped vs instrumented.

For each routing strategy and number of deployments, a fresh process (litellm keeps one selector per
strategy and process, so routers must not share one) builds a `litellm.Router` whose deployments carry
rpm/tpm limits and cost overrides, gives the strategy some state through litellm's own callbacks, then
times, interleaved round by round, a sync pick (`Router.get_available_deployment`), an async pick
(`Router.select`, awaited inside a running loop as an application's picks are) and a mock-response
`Router.acompletion`, as CPU time per call with the instrumentor off and then in mode "rust". The
"rust share" column is the share of instrumented calls Rust served (the rest fell back to litellm,
counted by reason in `status()`).

Then latency-based routing with `enable_pre_call_checks` (n = 10 and 100; at 1,000 litellm spends
~0.25 s per request on it): the pre-call step's facts for one request (`PreCallFacts` over every
deployment, as the router core builds them, each deployment's window included) and a request. Its
"rust share" is the share of window lookups answered from the `precall_facts` component's store.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

from litellm_rust.cli.progress import Progress
from litellm_rust.cli.timing import time_per_call

STRATEGIES = (
    "simple-shuffle",
    "least-busy",
    "latency-based-routing",
    "usage-based-routing",
    "usage-based-routing-v2",
    "cost-based-routing",
)
_GROUP = "bench-group"
_MESSAGES = [{"role": "user", "content": "Which warehouse ships fastest?"}]
_NO_SYNC_PICK = ("cost-based-routing",)
_PRE_CALL_STRATEGY = "latency-based-routing"
_PRE_CALL_SIZES = (10, 100)
# Async picks per `run_until_complete`: a loop's start and stop per pick would be timed as the pick's.
_ASYNC_PICKS = 20


def _router(strategy: str, deployments: int, pre_call_checks: bool = False):
    from litellm import Router

    model_list = [
        {
            "model_name": _GROUP,
            "litellm_params": {
                "model": "openai/gpt-4o-mini",
                "api_key": "sk-bench",
                "rpm": 10_000_000 + index,
                "tpm": 10_000_000_000,
                "input_cost_per_token": 1e-7 * (1 + index % 7),
                "output_cost_per_token": 4e-7 * (1 + index % 5),
            },
            "model_info": {"id": f"deployment-{index}"},
        }
        for index in range(deployments)
    ]
    return Router(
        model_list=model_list, routing_strategy=strategy, num_retries=0, enable_pre_call_checks=pre_call_checks
    )


def _worker(
    strategy: str, deployments: int, rounds: int, budget: float, started: float, pre_call_checks: bool = False
) -> dict:
    """Runs in its own process; returns µs per call by phase and mode. `started`: the parent's
    progress origin. With `pre_call_checks`, the phases are the pre-call facts and a request."""
    import litellm

    from litellm_rust import LiteLLMRustInstrumentor, status

    litellm.suppress_debug_info = True
    router = _router(strategy, deployments, pre_call_checks)
    loop = asyncio.new_event_loop()

    async def warm(requests: int) -> None:
        for _ in range(requests):
            await router.acompletion(model=_GROUP, messages=_MESSAGES, mock_response="ok")

    def sync_pick():
        router.get_available_deployment(model=_GROUP, messages=_MESSAGES)

    async def async_picks() -> None:
        before = asyncio.all_tasks()
        for _ in range(_ASYNC_PICKS):
            await router.select(_GROUP, {}, messages=_MESSAGES)
            await asyncio.sleep(0)  # the tasks this pick spawned run now, as in a serving loop
        spawned = asyncio.all_tasks() - before  # `before` holds this task itself
        if spawned:
            await asyncio.wait(spawned)

    def async_pick():
        loop.run_until_complete(async_picks())

    def request():
        loop.run_until_complete(router.acompletion(model=_GROUP, messages=_MESSAGES, mock_response="ok"))

    ids = [f"deployment-{index}" for index in range(deployments)]
    step = {"model_group": _GROUP, "model": _GROUP, "candidates": ids, "pool": ids}

    def pre_call_facts():
        router._core._pre_call_facts(step, {"messages": _MESSAGES}, _MESSAGES, None)

    # phase -> (the timed call, picks per call)
    if pre_call_checks:
        phases = {"pre-call": (pre_call_facts, 1), "request": (request, 1)}
    else:
        phases = {"async pick": (async_pick, _ASYNC_PICKS), "request": (request, 1)}
        if strategy not in _NO_SYNC_PICK:
            phases["sync pick"] = (sync_pick, 1)
    component = "precall_facts" if pre_call_checks else "routing"
    loop.run_until_complete(warm(min(2 * deployments, 300)))
    instrumentor = LiteLLMRustInstrumentor()
    samples = {(phase, mode): [] for phase in phases for mode in ("python", "rust")}
    served = {"rust": 0, "all": 0}
    progress = Progress("routing", started)
    for round_number in range(1, rounds + 1):
        for mode in ("python", "rust"):
            side = "litellm as shipped" if mode == "python" else "instrumented"
            progress(f"{strategy} n={deployments}, {side}: {', '.join(phases)} (round {round_number}/{rounds})")
            if mode == "rust":
                instrumentor.instrument(mode="rust")
                before = _served(status().get(component, {}))
            try:
                for phase, (call, per_call_picks) in phases.items():
                    for _ in range(3):  # first calls build per-process caches (the token counter's BPE, ...)
                        call()
                    per_call = time_per_call(call, budget, clock=time.process_time)
                    samples[(phase, mode)].append(per_call / per_call_picks)
            finally:
                if mode == "rust":
                    after = _served(status().get(component, {}))
                    instrumentor.uninstrument()
            if mode == "rust":
                served["rust"] += after[0] - before[0]
                served["all"] += after[1] - before[1]
    loop.close()
    return {
        "us": {f"{phase}|{mode}": statistics.median(values) * 1e6 for (phase, mode), values in samples.items()},
        "rust_share": served["rust"] / served["all"] if served["all"] else 0.0,
    }


def _served(component_status: dict) -> tuple[int, int]:
    """(calls Rust answered, all calls) in a component's `status()`: for `precall_facts`, the window
    lookups its store answered, of all it was asked (its answers are kept Python values, see the
    component)."""
    if not component_status:
        return 0, 0
    if "windows" in component_status:
        windows = component_status["windows"]
        served = windows.get("served", 0)
        return served, served + windows.get("kept", 0) + windows.get("relogged", 0) + component_status["fallbacks"]
    rust = component_status["rust_calls"]
    return rust, rust + component_status["python_calls"]


def _measure(
    strategy: str, deployments: int, rounds: int, budget: float, progress: Progress, pre_call_checks: bool = False
) -> dict:
    program = (
        "import json, sys; from litellm_rust.cli.bench_routing import _worker; "
        f"print(json.dumps(_worker({strategy!r}, {deployments}, {rounds}, {budget}, {progress.started!r}, "
        f"{pre_call_checks!r})))"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    # The worker's stderr is this process's: its progress lines, and its traceback if it fails.
    output = subprocess.run([sys.executable, "-c", program], env=env, stdout=subprocess.PIPE, text=True, timeout=1800)
    if output.returncode != 0:
        raise RuntimeError(f"{strategy} n={deployments} failed (its traceback is above)")
    return json.loads(output.stdout.strip().splitlines()[-1])


def run_routing_benchmark(quick: bool = False) -> None:
    sizes, rounds, budget = ((10, 100), 3, 0.05) if quick else ((10, 100, 1000), 5, 0.2)
    header = (
        f"{'strategy':<24} {'n':>5} {'phase':<10} {'litellm µs':>11} {'instrumented µs':>16} "
        f"{'litellm/ours':>13} {'rust share':>11}"
    )
    print(header)
    print("-" * len(header))
    progress = Progress("routing")
    runs = [(strategy, deployments, False) for strategy in STRATEGIES for deployments in sizes]
    runs += [(_PRE_CALL_STRATEGY, deployments, True) for deployments in _PRE_CALL_SIZES]
    for number, (strategy, deployments, pre_call_checks) in enumerate(runs, 1):
        progress(f"{strategy} n={deployments}: a fresh process builds the Router ({number}/{len(runs)})")
        measured = _measure(strategy, deployments, rounds, budget, progress, pre_call_checks)
        label = "latency-based + pre-call" if pre_call_checks else strategy
        for phase in ("pre-call", "request") if pre_call_checks else ("sync pick", "async pick", "request"):
            litellm_us = measured["us"].get(f"{phase}|python")
            ours_us = measured["us"].get(f"{phase}|rust")
            if litellm_us is None:
                row = f"{'–':>11} {'–':>16} {'–':>13}"
            else:
                row = f"{litellm_us:>11,.0f} {ours_us:>16,.0f} {litellm_us / ours_us:>12.1f}x"
            print(f"{label:<24} {deployments:>5} {phase:<10} {row} {measured['rust_share']:>10.0%}")
