"""`litellm-rust bench ratelimit`: litellm's own limit checks vs `litellm_rust.RateLimiter`.

Rows, measured interleaved in one process (ratios are what to read):
  * the router's `enforce_model_rate_limits` pre-call check (`ModelRateLimitingCheck`, sync and
    async, rpm + tpm on one deployment): litellm's own method vs the same method instrumented
    (the `rate_limits` component in rust mode), each over its own router cache; and the sync
    check again with `rate_limit_algorithm="gcra"` (token buckets) against litellm's own;
  * an rpm check on one deployment: litellm's router pre-call check vs `RateLimiter.check`;
  * a parallel-request slot: litellm's `MaxParallelRequestsLimit.acquire` + `release` vs ours;
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

from litellm_rust.bench import _time_per_call

_UNLIMITED = 10**12


def _deployment(**limits) -> dict:
    return {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", **limits}, "model_info": {"id": "deployment-1"}}


def _litellm_rpm_check():
    """litellm's own router check (as shipped, whether or not it is instrumented now)."""
    from litellm.caching.dual_cache import DualCache
    from litellm.router_utils.pre_call_checks.model_rate_limit_check import ModelRateLimitingCheck

    from litellm_rust.components import components

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

    from litellm_rust.components import components

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


def _litellm_slot():
    from litellm.router_utils.client_initalization_utils import MaxParallelRequestsLimit

    slots = MaxParallelRequestsLimit(_UNLIMITED, model_id="deployment-1", model_group="gpt-4o")

    def acquire_release():
        slots.acquire()
        slots.release()

    return acquire_release


def _print_proxy_rows(quick: bool) -> None:
    print()
    try:
        import litellm.proxy.hooks.parallel_request_limiter_v3  # noqa: F401
    except ImportError as missing:
        print(f"proxy limiter rows skipped: litellm's proxy needs {missing.name!r} (pip install 'litellm-rust[proxy]')")
        return
    from litellm_rust.bench_proxy_limiter import print_proxy_limiter_table, proxy_limiter_rows

    print_proxy_limiter_table(proxy_limiter_rows(requests=200 if quick else 2_000, rounds=3 if quick else 5))


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
        workers = [subprocess.Popen([sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
        for worker in workers:
            worker.stdout.readline()
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        rates[processes] = sum(float(worker.communicate(timeout=300)[0]) for worker in workers)
    return rates


def _print_row(name: str, litellm_call, ours_call, rounds: int, budget: float) -> None:
    samples = {"litellm": [], "ours": []}
    for _ in range(rounds):
        samples["litellm"].append(_time_per_call(litellm_call, budget))
        samples["ours"].append(_time_per_call(ours_call, budget))
    litellm_ns, ours_ns = (statistics.median(samples[side]) * 1e9 for side in ("litellm", "ours"))
    print(f"{name:<40} {litellm_ns:>14,.0f} {ours_ns:>16,.0f} {litellm_ns / ours_ns:>7.1f}x")


def run_ratelimit_benchmark(quick: bool = False) -> None:
    from litellm_rust import LiteLLMRustInstrumentor, RateLimiter, configure

    rounds, budget = (3, 0.05) if quick else (7, 0.2)
    ours_check = RateLimiter(rpm=_UNLIMITED)
    ours_slots = RateLimiter(max_parallel_requests=_UNLIMITED)

    def our_slot():
        ours_slots.acquire("deployment-1")
        ours_slots.release("deployment-1")

    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument(mode="rust")
    try:
        print(f"{'local check':<40} {'litellm py ns':>14} {'litellm-rust ns':>16} {'py/ours':>8}")
        print("-" * 81)
        for row in _router_check_rows():
            _print_row(*row, rounds, budget)
        _, litellm_sync, ours_sync = _router_check_rows()[0]
        configure("rate_limits", rate_limit_algorithm="gcra")
        try:
            _print_row("router check (rpm+tpm), gcra", litellm_sync, ours_sync, rounds, budget)
        finally:
            configure("rate_limits", rate_limit_algorithm="parity")
        _print_row("rpm check, one deployment", _litellm_rpm_check(), lambda: ours_check.check("deployment-1"), rounds, budget)
        _print_row("parallel-request slot acquire+release", _litellm_slot(), our_slot, rounds, budget)
    finally:
        instrumentor.uninstrument()

    _print_proxy_rows(quick)
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        print("\nredis-server not installed: shared (Redis) rows skipped")
        return
    port = _free_port()
    with tempfile.TemporaryDirectory() as directory:
        server = subprocess.Popen(
            [redis_server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.3)
            rates = _redis_rates(f"redis://127.0.0.1:{port}/0", 2_000 if quick else 10_000)
        finally:
            server.terminate()
            server.wait()
    print()
    print("shared through Redis (one Lua script per check, loopback):")
    print(f"  1 process   {rates[1]:>10,.0f} checks/s")
    print(f"  4 processes {rates[4]:>10,.0f} checks/s")
