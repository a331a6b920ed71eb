"""Two router processes sharing a real redis-server on 127.0.0.1, both instrumented. The Rust picks
read the strategies' state as litellm's do with Redis: usage-based-routing-v2's counters from the
read litellm's pick makes through its DualCache (the request's prefetched read, or the sync pick's
own two reads), the latency and cost maps from memory when memory holds them (otherwise litellm's
pick reads Redis), usage-based-routing (v1)'s maps through the DualCache, least-busy's in-flight
counts from Redis as its picks read them (the async read awaited before the Rust pick).
Each process sees the other's state through Redis, and in shadow mode every served pick equals
litellm's in both processes."""

import json
import subprocess
import sys
import textwrap

import pytest

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
            elif command == "redis_set":
                # Another worker's shared state, written straight into Redis.
                key, _, value = argument.partition(" ")
                router.cache.redis_cache.set_cache(key, int(value))
                answer = {{}}
            elif command in ("picks", "apicks"):
                # The strategy's own pick (sync, or async), `argument` times, and the routing component's counts.
                pick_messages = [{{"role": "user", "content": "hi"}}]
                if command == "picks":
                    picked = [router.get_available_deployment({group!r}, messages=pick_messages) for _ in range(int(argument))]
                else:
                    picked = [await router.select({group!r}, {{}}, messages=pick_messages)
                              for _ in range(int(argument))]
                routing = status()["routing"]
                answer = {{"picked": [d["model_info"]["id"] for d in picked],
                          **{{key: routing[key] for key in ("rust_calls", "shadow_comparisons", "shadow_mismatches", "fallback_reasons")}}}}
            else:
                return
            print(json.dumps(answer), flush=True)

    asyncio.run(serve())
    """
)


class RouterProcess:
    def __init__(
        self, port: int, strategy: str = "usage-based-routing-v2", mode: str = "rust", deployments: int = DEPLOYMENTS
    ) -> None:
        script = ROUTER_PROCESS.format(group=GROUP, port=port, deployments=deployments, strategy=strategy, mode=mode)
        self.child = subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
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


def test_two_router_processes_share_usage_through_redis_and_rust_serves_the_picks(redis_server):
    first = second = None
    try:
        first, second = RouterProcess(redis_server.port), RouterProcess(redis_server.port)
        first.ask("send 5")
        assert second.ask("usage")["rpm"] == 5  # the first process's requests, read from Redis
        second.ask("send 3")
        assert second.ask("usage")["rpm"] == 8  # its increments answer with the shared total
        # litellm reads a counter this process holds from its own memory, refreshed by the shared
        # total each increment of it returns: the first process sees the second's three at its next
        assert first.ask("usage")["rpm"] == 5
        first.ask("send 1")
        for process, requests in ((first, 6), (second, 3)):
            usage = process.ask("usage")
            # Every strategy pick served by Rust, from litellm's read (the cooldown read before it
            # stays litellm's with Redis: `redis_cache` in the fallback reasons).
            assert usage["rust_calls"] == requests
        assert (first.ask("usage")["rpm"], first.ask("usage")["tpm"]) == (9, 9 * 30)
    finally:
        for process in (first, second):
            if process is not None:
                process.stop()


@pytest.mark.parametrize(
    "strategy", ["usage-based-routing-v2", "latency-based-routing", "least-busy", "cost-based-routing"]
)
def test_picks_with_redis_equal_litellms_in_both_processes(redis_server, strategy):
    processes = []
    try:
        first, second = (RouterProcess(redis_server.port, strategy, "shadow", deployments=3) for _ in range(2))
        processes = [first, second]
        first.ask("send 4")
        # The second process's maps and counters are in Redis only: litellm's reads fill its memory
        # (a latency or cost map memory lacks is litellm's pick to read).
        second.ask("send 2")
        sync_picks = 3 if strategy != "cost-based-routing" else 0  # litellm's cost-based pick is async only
        async_picks = 2
        for process in (first, second):
            # `rust_calls`: the Rust picks made (and, in shadow mode, compared with litellm's).
            before = process.ask("picks 0")["rust_calls"]
            process.ask("send 2")
            sent = process.ask("picks 0")["rust_calls"]
            counts = process.ask(f"picks {sync_picks}")
            assert counts["shadow_mismatches"] == 0
            # Once the state is in its memory, every pick is Rust's too.
            assert (sent - before, counts["rust_calls"] - sent) == (async_picks, sync_picks)
        if strategy == "least-busy":
            # Another worker holds five calls in flight on r0: both picks read that from Redis,
            # sync and async.
            second.ask("redis_set shared_request_count:r0 5")
            for command in ("picks", "apicks"):
                before = second.ask("picks 0")["rust_calls"]
                counts = second.ask(f"{command} 3")
                assert "r0" not in counts["picked"]
                assert (counts["rust_calls"] - before, counts["shadow_mismatches"]) == (3, 0)
    finally:
        for process in processes:
            process.stop()


def test_usage_routing_v1_picks_are_served_through_redis_and_equal_litellms_in_both_processes(redis_server):
    processes = []
    try:
        first, second = (
            RouterProcess(redis_server.port, "usage-based-routing", "shadow", deployments=3) for _ in range(2)
        )
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
