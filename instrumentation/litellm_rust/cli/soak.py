"""`litellm-rust soak`: a long Router workload with every component instrumented, first in mode rust,
then in mode shadow, while the model list changes and Redis restarts under it. Prints the process's
RSS, the workload's errors and each component's Rust calls, fallbacks and shadow mismatches every
interval, so a leak, a crash or a wrong answer shows over time. Not a test: a tool to run and read.

Two routers share the process: one in memory (latency-based routing, `enforce_model_rate_limits`,
`max_parallel_requests`: the paths Rust serves) and one on a local redis-server (usage-based-routing-v2:
the paths that decline with Redis), plus a standalone `RateLimiter` shared through the same Redis.
"""

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import closing, contextmanager

from litellm_rust.cli.progress import Progress
from litellm_rust.redis_health import REDIS_HEALTH

_CHAT = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Summarise the dispatch times of our three warehouses."},
]


def _free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Redis:
    """A redis-server on 127.0.0.1 that can be restarted on the same port."""

    def __init__(self, directory: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("litellm-rust soak needs redis-server (make system-deps installs it)")
        self.command = [binary, "--bind", "127.0.0.1", "--port", str(_free_port()), "--save", "", "--dir", directory]
        self.port = int(self.command[4])
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@contextmanager
def _redis():
    with tempfile.TemporaryDirectory() as directory:
        server = _Redis(directory)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def _deployments(prefix: str, count: int) -> list[dict]:
    return [
        {
            "model_name": "soak",
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_key": "soak",
                "mock_response": "ok",
                "rpm": 10_000,
                "tpm": 10_000_000,
                "max_parallel_requests": 64,
            },
            "model_info": {"id": f"{prefix}-{index}"},
        }
        for index in range(count)
    ]


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_soak(minutes: float, deployments: int, interval: float) -> int:
    """The workload for `minutes` (half in mode rust, half in shadow); exit status 1 when a shadow
    mismatch or a Rust error happened."""
    import litellm
    from litellm import Router

    from litellm_rust import LiteLLMRustInstrumentor, RateLimiter, configure, status

    litellm.suppress_debug_info = True
    progress = Progress("soak")
    totals = {"requests": 0, "errors": 0, "limiter_checks": 0}
    error_kinds: dict[str, int] = {}
    with _redis() as redis:
        instrumentor = LiteLLMRustInstrumentor()
        instrumentor.instrument()
        memory_router = Router(
            model_list=_deployments("memory", deployments),
            routing_strategy="latency-based-routing",
            optional_pre_call_checks=["enforce_model_rate_limits"],
            num_retries=0,
        )
        redis_router = Router(
            model_list=_deployments("redis", deployments),
            routing_strategy="usage-based-routing-v2",
            redis_host="127.0.0.1",
            redis_port=redis.port,
            num_retries=0,
        )
        limiter = RateLimiter(rpm=1_000_000, redis_url=f"redis://127.0.0.1:{redis.port}/0", redis_timeout=0.05)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        async def request(router) -> None:
            try:
                await router.acompletion(model="soak", messages=_CHAT)
                litellm.token_counter(model="gpt-4o", messages=_CHAT)
            except Exception as error:
                totals["errors"] += 1
                error_kinds[type(error).__name__] = error_kinds.get(type(error).__name__, 0) + 1
            totals["requests"] += 1

        async def wave() -> None:
            await asyncio.gather(*(request(memory_router) for _ in range(8)), request(redis_router))

        started = time.monotonic()
        ends = started + minutes * 60
        next_report = started
        next_model_change = started + 60
        next_redis_restart = started + 90
        shadowing = False
        try:
            while (now := time.monotonic()) < ends:
                if not shadowing and now >= started + minutes * 30:
                    configure(mode="shadow")
                    shadowing = True
                    progress("switched every component to mode shadow")
                if now >= next_model_change:
                    # One deployment replaced: the registry version moves, every kept answer is redone.
                    model_list = _deployments("memory", deployments)
                    model_list[0]["model_info"]["id"] = f"memory-changed-{int(now)}"
                    memory_router.set_model_list(model_list)
                    next_model_change = now + 60
                    progress("model list changed")
                if now >= next_redis_restart:
                    redis.stop()
                    redis.start()
                    next_redis_restart = now + 90
                    progress("redis-server restarted")
                loop.run_until_complete(wave())
                limiter.check("soak")
                totals["limiter_checks"] += 1
                if now >= next_report:
                    _report(progress, status(), totals, error_kinds, shadowing)
                    next_report = now + interval
            _report(progress, status(), totals, error_kinds, shadowing)
        finally:
            loop.close()
            instrumentor.uninstrument()
    final = status()
    for name, state in final.items():
        uncompared = state.get("shadow_uncompared", 0)
        if state["fallback_reasons"] or uncompared:
            reasons = ", ".join(f"{reason} {count}" for reason, count in state["fallback_reasons"].items())
            progress(f"{name}: fallbacks by reason: {reasons or 'none'}; shadow calls not compared: {uncompared}")
    faults = sum(
        state["shadow_mismatches"]
        + state["fallback_reasons"].get("rust_error", 0)
        + state["fallback_reasons"].get("rust_panic", 0)
        for state in final.values()
    )
    return 1 if faults else 0


def _report(progress: Progress, state: dict, totals: dict, error_kinds: dict, shadowing: bool) -> None:
    components = "  ".join(
        f"{name} rust={s['rust_calls']} fb={s['fallbacks']} mm={s['shadow_mismatches']}" for name, s in state.items()
    )
    progress(
        f"mode {'shadow' if shadowing else 'rust'}  rss {_rss_mb():.0f} MB  requests {totals['requests']}  "
        f"errors {totals['errors']} {error_kinds or ''}  limiter checks {totals['limiter_checks']}  "
        f"redis errors {REDIS_HEALTH.errors}\n    {components}"
    )
