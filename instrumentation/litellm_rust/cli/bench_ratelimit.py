"""`litellm-rust bench ratelimit`: litellm's own limit checks vs `litellm_rust.RateLimiter`.

Rows, measured interleaved in one process (ratios are what to read):
  * the router's `enforce_model_rate_limits` pre-call check (`ModelRateLimitingCheck`, sync and
    async, rpm + tpm on one deployment): litellm's own method vs the same method instrumented
    (the `rate_limits` component in rust mode), each over its own router cache; and the sync
    check again with `rate_limit_algorithm="gcra"` (token buckets) against litellm's own;
  * an rpm check on one deployment: litellm's router pre-call check vs `RateLimiter.check`;
  * the router's `max_parallel_requests` slot around an async attempt (litellm's whole slot path:
    the limit's lookup, enter and exit) and its lookup alone: litellm's own vs instrumented (the
    `parallel_slots` component in rust mode), on one router;
  * with redis-server on PATH: shared checks per second through Redis from one process and from
    four (a throwaway server on a free 127.0.0.1 port, stopped afterwards);
  * with litellm's proxy dependencies installed (`pip install 'litellm-rust[proxy]'`): the
    proxy's v3 limiter per request, litellm as is vs instrumented (see `bench_proxy_limiter`).
"""

import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager

from litellm_rust._bindings import rebind
from litellm_rust.cli.progress import Progress
from litellm_rust.cli.timing import time_per_call
from litellm_rust.components import components

_UNLIMITED = 10**12


def _deployment(**limits) -> dict:
    return {
        "model_name": "gpt-4o",
        "litellm_params": {"model": "openai/gpt-4o", **limits},
        "model_info": {"id": "deployment-1"},
    }


def _litellm_rpm_check():
    """litellm's own router check (as shipped, whether or not it is instrumented now)."""
    from litellm.caching.dual_cache import DualCache
    from litellm.router_utils.pre_call_checks.model_rate_limit_check import ModelRateLimitingCheck

    original = components()["rate_limits"].references["pre_call_check"]
    check = ModelRateLimitingCheck(dual_cache=DualCache())
    deployment = _deployment(rpm=_UNLIMITED)
    return lambda: original(check, deployment)


def _completed(start_coroutine):
    """A call running a coroutine that never suspends (an in-memory check) to completion."""

    def call():
        coroutine = start_coroutine()
        try:
            coroutine.send(None)
        except StopIteration:
            return
        raise RuntimeError("the check suspended")

    return call


def _router_check_rows() -> list[tuple]:
    """litellm's `ModelRateLimitingCheck` methods as litellm ships them vs as instrumented."""
    from litellm.caching.dual_cache import DualCache
    from litellm.router_utils.pre_call_checks.model_rate_limit_check import ModelRateLimitingCheck

    originals = components()["rate_limits"].references
    litellm_check, our_check = ModelRateLimitingCheck(DualCache()), ModelRateLimitingCheck(DualCache())
    deployment = _deployment(rpm=_UNLIMITED, tpm=_UNLIMITED)
    return [
        (
            "router check (rpm+tpm), sync",
            lambda: originals["pre_call_check"](litellm_check, deployment),
            lambda: our_check.pre_call_check(deployment),
        ),
        (
            "router check (rpm+tpm), async",
            _completed(lambda: originals["async_pre_call_check"](litellm_check, deployment)),
            _completed(lambda: our_check.async_pre_call_check(deployment)),
        ),
    ]


def _slot_rows() -> list[tuple]:
    """The router core's `max_parallel_requests` slot around an async chat attempt, as litellm
    takes it (`enter_deployment_slot`: the limit's lookup, the `ExitStack`, acquire, and release on
    exit) vs instrumented (the `parallel_slots` component in rust mode), and the lookup alone.
    One router; the deployment dict as an attempt hands it over (a plain copy)."""
    import copy

    import litellm
    from litellm.router_rust.invoke import slots
    from litellm.router_rust.invoke.endpoints import PLANS

    originals = components()["parallel_slots"].references
    model_list = [
        {
            "model_name": "gpt-4o",
            "litellm_params": {"model": "openai/gpt-4o", "api_key": "k", "max_parallel_requests": _UNLIMITED},
        }
    ]
    router = litellm.Router(model_list=model_list)
    port, plan = router._port, PLANS["acompletion"]
    deployment = copy.deepcopy(router.registry().deployments("gpt-4o")[0])
    kwargs = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "metadata": {"model_group": "gpt-4o"}}

    def slot_held(enter):
        def call():
            with enter(port, plan, deployment, kwargs):
                pass

        return call

    return [
        (
            "router slot: lookup + enter + exit",
            slot_held(originals["enter_deployment_slot"]),
            slot_held(slots.enter_deployment_slot),
            "parallel_slots",
        ),
        (
            "router slot: lookup alone",
            lambda: originals["max_parallel_requests_limit"](port, deployment, kwargs),
            lambda: slots.max_parallel_requests_limit(port, deployment, kwargs),
        ),
    ]


@contextmanager
def _as_shipped(component: str | None = None):
    """litellm's bindings as shipped while its side of a row is timed: litellm's
    `enter_deployment_slot` reaches the lookup through its module, which instrumenting replaces."""
    if component is None:
        yield
        return
    replacements = components()[component].replacements()
    rebind({new: old for old, new in replacements.items()})
    try:
        yield
    finally:
        rebind(replacements)


def _print_proxy_rows(quick: bool, progress: Progress) -> None:
    print()
    try:
        import litellm.proxy.hooks.parallel_request_limiter_v3  # noqa: F401
    except ImportError as missing:
        print(f"proxy limiter rows skipped: litellm's proxy needs {missing.name!r} (pip install 'litellm-rust[proxy]')")
        return
    from litellm_rust.cli.bench_proxy_limiter import print_proxy_limiter_table, proxy_limiter_rows

    requests, rounds = (200, 3) if quick else (2_000, 5)
    progress(f"proxy limiter (v3, in memory): {requests} requests per column, {rounds} rounds, then the decisions")
    print_proxy_limiter_table(proxy_limiter_rows(requests=requests, rounds=rounds))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_REDIS_WORKER = """
import sys, time
from litellm_rust import RateLimiter
limiter = RateLimiter(rpm={limit}, redis_url={url!r}, redis_timeout=1.0)
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
for _ in range({checks}):
    limiter.check("bench-key")
print({checks} / (time.perf_counter() - start), flush=True)
"""


def _redis_rates(url: str, checks: int) -> dict[int, float]:
    """Checks per second through Redis, from one process and from four at once."""
    rates = {}
    for processes in (1, 4):
        program = textwrap.dedent(_REDIS_WORKER.format(limit=_UNLIMITED, url=url, checks=checks))
        workers = [
            subprocess.Popen([sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(processes)
        ]
        for worker in workers:
            worker.stdout.readline()
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        rates[processes] = sum(float(worker.communicate(timeout=300)[0]) for worker in workers)
    return rates


def _print_row(name: str, litellm_call, ours_call, shipped: str | None = None, *, rounds: int, budget: float) -> None:
    """One row: litellm's call (with `shipped`'s bindings as litellm ships them) vs ours."""
    samples = {"litellm": [], "ours": []}
    for _ in range(rounds):
        with _as_shipped(shipped):
            samples["litellm"].append(time_per_call(litellm_call, budget))
        samples["ours"].append(time_per_call(ours_call, budget))
    litellm_ns, ours_ns = (statistics.median(samples[side]) * 1e9 for side in ("litellm", "ours"))
    print(f"{name:<40} {litellm_ns:>14,.0f} {ours_ns:>16,.0f} {litellm_ns / ours_ns:>7.1f}x")


def run_ratelimit_benchmark(quick: bool = False) -> None:
    from litellm_rust import LiteLLMRustInstrumentor, RateLimiter, configure

    progress = Progress("ratelimit")
    rounds, budget = (3, 0.05) if quick else (7, 0.2)
    ours_check = RateLimiter(rpm=_UNLIMITED)
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument(mode="rust")
    try:
        rows = [
            *_router_check_rows(),
            ("rpm check, one deployment", _litellm_rpm_check(), lambda: ours_check.check("deployment-1")),
            *_slot_rows(),
        ]
        print(f"{'local check':<40} {'litellm py ns':>14} {'litellm-rust ns':>16} {'py/ours':>8}")
        print("-" * 81)
        for number, row in enumerate(rows, 1):
            progress(f"{row[0]}: litellm vs litellm-rust ({number}/{len(rows)})")
            _print_row(*row, rounds=rounds, budget=budget)
        _, litellm_sync, ours_sync = rows[0]  # the sync router check, timed again under gcra
        progress("router check (rpm+tpm), gcra: litellm vs litellm-rust")
        configure("rate_limits", rate_limit_algorithm="gcra")
        try:
            _print_row("router check (rpm+tpm), gcra", litellm_sync, ours_sync, rounds=rounds, budget=budget)
        finally:
            configure("rate_limits", rate_limit_algorithm="parity")
    finally:
        instrumentor.uninstrument()

    _print_proxy_rows(quick, progress)
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        print("\nredis-server not installed: shared (Redis) rows skipped")
        return
    port = _free_port()
    with tempfile.TemporaryDirectory() as directory:
        server = subprocess.Popen(
            [
                redis_server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                directory,
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.3)
            progress(f"shared checks through redis-server on 127.0.0.1:{port}, from 1 process then 4")
            rates = _redis_rates(f"redis://127.0.0.1:{port}/0", 2_000 if quick else 10_000)
        finally:
            server.terminate()
            server.wait()
    print()
    print("shared through Redis (one Lua script per check, loopback):")
    print(f"  1 process   {rates[1]:>10,.0f} checks/s")
    print(f"  4 processes {rates[4]:>10,.0f} checks/s")
