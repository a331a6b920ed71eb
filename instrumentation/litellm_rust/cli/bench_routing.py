"""`litellm-rust bench routing`: litellm Router picks and requests, litellm as shipped vs instrumented.

For each routing strategy and number of deployments, a fresh process (litellm keeps one selector per
strategy and process, so routers must not share one) builds a `litellm.Router` whose deployments carry
rpm/tpm limits and cost overrides, gives the strategy some state through litellm's own callbacks, then
times, interleaved round by round, a sync pick (`Router.get_available_deployment`), an async pick
(`Router.select`, awaited inside a running loop as an application's picks are) and a mock-response
`Router.acompletion`, as CPU time per call with the instrumentor off and then in mode "rust". The
"rust share" column is the share of instrumented calls Rust served (the rest fell back to litellm,
counted by reason in `status()`).
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
# Async picks per `run_until_complete`: a loop's start and stop per pick would be timed as the pick's.
_ASYNC_PICKS = 20


def _router(strategy: str, deployments: int):
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
    return Router(model_list=model_list, routing_strategy=strategy, num_retries=0)


def _worker(strategy: str, deployments: int, rounds: int, budget: float, started: float) -> dict:
    """Runs in its own process; returns µs per call by phase and mode. `started`: the parent's
    progress origin."""
    import litellm

    from litellm_rust import LiteLLMRustInstrumentor, status

    litellm.suppress_debug_info = True
    router = _router(strategy, deployments)
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

    # phase -> (the timed call, picks per call)
    phases = {"async pick": (async_pick, _ASYNC_PICKS), "request": (request, 1)}
    if strategy not in _NO_SYNC_PICK:
        phases["sync pick"] = (sync_pick, 1)
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
                before = status().get("routing", {})
            try:
                for phase, (call, per_call_picks) in phases.items():
                    for _ in range(3):  # first calls build per-process caches (the token counter's BPE, ...)
                        call()
                    per_call = time_per_call(call, budget, clock=time.process_time)
                    samples[(phase, mode)].append(per_call / per_call_picks)
            finally:
                if mode == "rust":
                    after = status().get("routing", {})
                    instrumentor.uninstrument()
            if mode == "rust" and after:
                served["rust"] += after["rust_calls"] - before["rust_calls"]
                served["all"] += (
                    after["rust_calls"] + after["python_calls"] - before["rust_calls"] - before["python_calls"]
                )
    loop.close()
    return {
        "us": {f"{phase}|{mode}": statistics.median(values) * 1e6 for (phase, mode), values in samples.items()},
        "rust_share": served["rust"] / served["all"] if served["all"] else 0.0,
    }


def _measure(strategy: str, deployments: int, rounds: int, budget: float, progress: Progress) -> dict:
    program = (
        "import json, sys; from litellm_rust.cli.bench_routing import _worker; "
        f"print(json.dumps(_worker({strategy!r}, {deployments}, {rounds}, {budget}, {progress.started!r})))"
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
    runs = [(strategy, deployments) for strategy in STRATEGIES for deployments in sizes]
    for number, (strategy, deployments) in enumerate(runs, 1):
        progress(f"{strategy} n={deployments}: a fresh process builds the Router ({number}/{len(runs)})")
        measured = _measure(strategy, deployments, rounds, budget, progress)
        for phase in ("sync pick", "async pick", "request"):
            litellm_us = measured["us"].get(f"{phase}|python")
            ours_us = measured["us"].get(f"{phase}|rust")
            if litellm_us is None:
                row = f"{'–':>11} {'–':>16} {'–':>13}"
            else:
                row = f"{litellm_us:>11,.0f} {ours_us:>16,.0f} {litellm_us / ours_us:>12.1f}x"
            print(f"{strategy:<24} {deployments:>5} {phase:<10} {row} {measured['rust_share']:>10.0%}")
