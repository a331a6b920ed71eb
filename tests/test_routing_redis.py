"""Two router processes sharing a real redis-server on 127.0.0.1, both instrumented. With
usage-based-routing-v2 the routing component leaves every pick to litellm (`redis_cache`, counted),
and each process sees the other's counts through Redis, as litellm shares them. With
usage-based-routing (v1), whose maps the Rust pick reads through litellm's own DualCache (memory,
then Redis), the picks are served, and in shadow mode equal litellm's in both processes."""

import json
import subprocess
import sys
import textwrap

from test_rate_limiter_redis import RedisServer

GROUP = "shared"
# One deployment, so every request of both processes lands on the same counters whatever the pick
# (litellm refreshes a counter from Redis when it increments it; see the test).
DEPLOYMENTS = 1

ROUTER_PROCESS = textwrap.dedent(
    """
    import asyncio, json, os, sys
    os.environ.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_OFFLINE_MODE="true", HF_HUB_OFFLINE="1")
    from datetime import timedelta
    import litellm
    from litellm.redis.stores.router_usage.types import UsageCounter
    from litellm.router_strategy.lowest_tpm_rpm_v2 import get_utc_datetime
    from litellm_rust import LiteLLMRustInstrumentor, status

    LiteLLMRustInstrumentor().instrument(mode={mode!r})
    model_list = [
        {{"model_name": {group!r}, "litellm_params": {{"model": "openai/gpt-4o", "api_key": "x", "mock_response": "hi",
          "tpm": 1_000_000, "rpm": 10_000}}, "model_info": {{"id": f"r{{i}}"}}}}
        for i in range({deployments})
    ]
    router = litellm.Router(model_list=model_list, routing_strategy={strategy!r},
                            redis_host="127.0.0.1", redis_port={port})

    async def serve():
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "send":
                for _ in range(int(argument)):
                    await router.acompletion(model={group!r}, messages=[{{"role": "user", "content": "hi"}}])
                await litellm.litellm_core_utils.logging_worker.GLOBAL_LOGGING_WORKER.flush()
                answer = {{}}
            elif command == "usage":
                # The counters usage-based-routing-v2's pick reads (the core's usage store, Redis
                # first), this minute and the last one, in case the test straddles a minute.
                now = get_utc_datetime()
                minutes = {{(now - timedelta(minutes=back)).strftime("%H-%M") for back in (0, 1)}}
                kinds = ("tpm", "rpm")
                counters = [UsageCounter(f"r{{i}}", "openai/gpt-4o", minute, kind)
                            for i in range({deployments}) for minute in minutes for kind in kinds]
                values = await router._core._usage.get_many(counters)
                totals = {{kind: sum(v or 0 for c, v in zip(counters, values) if c.kind == kind) for kind in kinds}}
                routing = status()["routing"]
                answer = {{**totals, "rust_calls": routing["rust_calls"], "fallback_reasons": routing["fallback_reasons"]}}
            elif command == "picks":
                # usage-based-routing v1's own pick, `argument` times, and the routing component's counts.
                picked = [router.get_available_deployment({group!r}, messages=[{{"role": "user", "content": "hi"}}])
                          for _ in range(int(argument))]
                routing = status()["routing"]
                answer = {{"picked": [d["model_info"]["id"] for d in picked],
                          **{{key: routing[key] for key in ("rust_calls", "shadow_comparisons", "shadow_mismatches")}}}}
            else:
                return
            print(json.dumps(answer), flush=True)

    asyncio.run(serve())
    """
)


class RouterProcess:
    def __init__(self, port: int, strategy: str = "usage-based-routing-v2", mode: str = "rust", deployments: int = DEPLOYMENTS) -> None:
        script = ROUTER_PROCESS.format(group=GROUP, port=port, deployments=deployments, strategy=strategy, mode=mode)
        self.child = subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def ask(self, command: str) -> dict:
        self.child.stdin.write(command + "\n")
        self.child.stdin.flush()
        line = self.child.stdout.readline()
        assert line, f"router process exited ({self.child.wait()})"
        return json.loads(line)

    def stop(self) -> None:
        self.child.stdin.close()
        self.child.wait(timeout=30)


def test_two_router_processes_share_usage_through_redis_and_litellm_keeps_the_picks(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    first = second = None
    try:
        first, second = RouterProcess(server.port), RouterProcess(server.port)
        first.ask("send 5")
        assert second.ask("usage")["rpm"] == 5  # the first process's requests, read from Redis
        second.ask("send 3")
        assert second.ask("usage")["rpm"] == 8  # its increments answer with the shared total
        # litellm reads a counter this process holds from its own memory, refreshed by the shared
        # total each increment of it returns: the first process sees the second's three at its next
        assert first.ask("usage")["rpm"] == 5
        first.ask("send 1")
        for process in (first, second):
            usage = process.ask("usage")
            assert usage["rust_calls"] == 0  # every pick went to litellm ...
            assert usage["fallback_reasons"].get("redis_cache", 0) >= 3  # ... counted by reason
        assert (first.ask("usage")["rpm"], first.ask("usage")["tpm"]) == (9, 9 * 30)
    finally:
        for process in (first, second):
            if process is not None:
                process.stop()
        server.stop()


def test_usage_routing_v1_picks_are_served_through_redis_and_equal_litellms_in_both_processes(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    processes = []
    try:
        first, second = (RouterProcess(server.port, "usage-based-routing", "shadow", deployments=3) for _ in range(2))
        processes = [first, second]
        first.ask("send 4")
        # The second process holds no map in memory yet: its pick reads the first's counts from Redis.
        shared = second.ask("picks 3")
        # The first process's first request went to r0 (all at zero), so a pick that reads its counts
        # finds r0 is not the least used; one that saw none would take r0, the first.
        assert "r0" not in shared["picked"]
        second.ask("send 2")
        for process in processes:
            counts = process.ask("picks 2")
            assert counts["shadow_mismatches"] == 0 and counts["shadow_comparisons"] >= 2
        assert shared["shadow_comparisons"] >= 3 and shared["shadow_mismatches"] == 0
    finally:
        for process in processes:
            process.stop()
        server.stop()
