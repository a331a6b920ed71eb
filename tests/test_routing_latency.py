"""latency-based-routing's maps held in Rust (`components/routing/latency.py`), checked against
litellm's own pick on the same cache: in shadow mode every Rust pick is compared with litellm's,
and the mirror must follow every way `{group}_map` changes: the handler's success, failure and
stream callbacks, writes straight into the map, its entries and their lists, another map written,
expiry, flush, the minute rolling over, model-list changes."""

import asyncio
import copy
import random
from datetime import datetime, timedelta

import litellm
import pytest
from litellm import Router
from litellm.router_rust.steps import selection
from litellm.router_strategy import lowest_latency
from litellm_rust import _native
from test_routing import (
    GROUP,
    MESSAGES,
    _distinct,
    make_router,
    memory,
    mirror_counts,
    selector_of,
    with_model_list_change,
)
from test_routing import picks as routing_picks

STRATEGY = "latency-based-routing"
KEY = f"{GROUP}_map"
# The ids of the eight deployments each test's router has.
EVERY = {f"d{i}" for i in range(8)}


class _Clock(datetime):
    """`lowest_latency`'s `datetime`, whose `now()` (the handler's minute and the pick's) is set by the test."""

    moment = datetime(2026, 1, 1, 10, 0, 30)

    @classmethod
    def now(cls, tz=None):
        return cls.moment


@pytest.fixture
def minute_clock(monkeypatch):
    """Sets the minute both litellm's handler and the pick read; returns the function that moves it."""
    monkeypatch.setattr(lowest_latency, "datetime", _Clock)

    def at_minute(minute: int) -> None:
        monkeypatch.setattr(_Clock, "moment", datetime(2026, 1, 1, 10, minute, 30))

    at_minute(0)
    return at_minute


@pytest.fixture
def fresh_router(own_strategy_callbacks, minute_clock):
    """A latency router of eight deployments (each its own api_base) whose handler is the one
    litellm's callbacks reach; `routing_args` for the handler."""

    def make(**routing_args) -> Router:
        own_strategy_callbacks()
        model_list = [
            {
                "model_name": GROUP,
                "litellm_params": {
                    "model": "openai/gpt-4o",
                    "api_key": "x",
                    "mock_response": "hi",
                    "api_base": f"https://b{i}.example",
                    "rpm": 3,
                },
                "model_info": {"id": f"d{i}"},
            }
            for i in range(8)
        ]
        return Router(
            model_list=model_list,
            routing_strategy=STRATEGY,
            routing_strategy_args={"ttl": next(_distinct), **routing_args},
        )

    return make


@pytest.fixture
def shadowed(instrumented_as, routing, fresh_router):
    """A latency router in shadow mode, and its cache's mirror counts."""
    instrumented_as("shadow")
    random.seed(5)  # the draws among tied deployments (80 per `picks`) reach all eight
    router = fresh_router()
    return router, mirror_counts(routing.latency_mirrors, router)


def latency_map(router) -> dict:
    """The cached map itself, as the handler mutates it."""
    return memory(router).cache_dict[KEY]


def success(deployment_id: str, seconds: float, ttft: float | None = None) -> tuple:
    """The success callbacks' arguments for a call taking `seconds` (a stream's when `ttft`)."""
    end = datetime(2026, 1, 1, 10, 0, 0)
    start = end - timedelta(seconds=seconds)
    kwargs = {
        "litellm_params": {"metadata": {"model_group": GROUP}, "model_info": {"id": deployment_id}},
        "stream": ttft is not None,
    }
    if ttft is not None:
        kwargs["completion_start_time"] = start + timedelta(seconds=ttft)
    return kwargs, None, start, end


def succeed(router, deployment_id: str, seconds: float, ttft: float | None = None) -> None:
    """A success through the handler's own (sync) callback."""
    selector_of(router).log_success_event(*success(deployment_id, seconds, ttft))


def timeout(deployment_id: str) -> tuple:
    """The failure callback's arguments for a timeout (recorded as a 1000 s sample)."""
    kwargs = {
        "litellm_params": {"metadata": {"model_group": GROUP}, "model_info": {"id": deployment_id}},
        "exception": litellm.Timeout("slow", model="gpt-4o", llm_provider="openai"),
    }
    return kwargs, None, datetime.now(), datetime.now()


def time_out(router, deployment_id: str) -> None:
    """A timeout through the handler's failure callback."""
    asyncio.run(selector_of(router).async_log_failure_event(*timeout(deployment_id)))


def seed(router, fast: int) -> None:
    """One success per deployment: `d{fast}` in 0.1 s, the others in 1 s."""
    for index in range(8):
        succeed(router, f"d{index}", 0.1 if index == fast else 1.0)


def picks(router, rounds: int = 40, stream: bool = False) -> set[str]:
    """Sync and async picks with metadata (a stream's when `stream`); in shadow mode each is
    compared with litellm's on the same state."""
    return routing_picks(router, rounds, {"stream": True, "metadata": {}} if stream else {"metadata": {}})


def test_shadow_mirror_finds_no_mismatch_over_the_handlers_callbacks(
    instrumented_as, routing, own_strategy_callbacks, assert_no_mismatch
):
    own_strategy_callbacks()
    instrumented_as("shadow")
    router = make_router(STRATEGY, 24)  # limits, and deployments sharing an api_base
    counts = mirror_counts(routing.latency_mirrors, router)
    selector = selector_of(router)
    rng = random.Random(3)

    async def run():
        for round_ in range(20):
            for _ in range(5):
                deployment = f"d{rng.randrange(24)}"
                if rng.random() < 0.1:
                    await selector.async_log_failure_event(*timeout(deployment))
                else:
                    ttft = rng.uniform(0.01, 0.1) if rng.random() < 0.3 else None
                    await selector.async_log_success_event(*success(deployment, rng.uniform(0.05, 2.0), ttft))
            for _ in range(3):
                await router.select(GROUP, {"stream": round_ % 2 == 0, "metadata": {}}, messages=MESSAGES)
                router.get_available_deployment(GROUP, messages=MESSAGES, request_kwargs={"metadata": {}})

    asyncio.run(run())
    assert_no_mismatch()
    assert counts()["mirrored_picks"] >= 120
    # Entries are re-read where an event moved them, not on every pick.
    assert counts()["entry_reads"] < counts()["mirrored_picks"] * 24 / 4


def test_each_event_costs_the_next_pick_one_entry(shadowed, assert_no_mismatch):
    router, counts = shadowed
    seed(router, fast=0)
    picks(router, 2)
    before = counts()
    succeed(router, "d3", 0.5)
    assert picks(router, 1) == {"d0"}
    time_out(router, "d5")
    succeed(router, "d6", 0.5, ttft=0.2)
    assert picks(router, 1) == {"d0"}
    after = counts()
    assert after["entry_reads"] - before["entry_reads"] == 3
    assert after["resyncs"] == before["resyncs"]
    assert after["mirrored_picks"] - before["mirrored_picks"] == 4
    assert_no_mismatch()


def replace_the_list(entries: dict) -> None:
    entries["d5"]["latency_normalized"] = [0.01]


def append_in_place(entries: dict) -> None:
    entries["d5"]["latency_normalized"].extend([0.0] * 99)


def change_an_item_in_place(entries: dict) -> None:
    entries["d5"]["latency_normalized"][0] = 0.01  # same length, same list


def replace_the_entry(entries: dict) -> None:
    entries["d5"] = {"latency_normalized": [0.01]}


def delete_the_entry(entries: dict) -> None:
    del entries["d5"]  # a candidate the map lacks reads as a 0 placeholder


@pytest.mark.parametrize(
    "write", [replace_the_list, append_in_place, change_an_item_in_place, replace_the_entry, delete_the_entry]
)
def test_writes_straight_into_the_map_are_seen_by_the_next_pick(shadowed, write, assert_no_mismatch):
    router, counts = shadowed
    seed(router, fast=0)
    assert picks(router, 2) == {"d0"}
    mirrored = counts()["mirrored_picks"]
    write(latency_map(router))
    assert picks(router) == {"d5"}
    assert counts()["mirrored_picks"] == mirrored + 80
    assert_no_mismatch()


def test_another_map_written_through_the_cache_is_read_whole(shadowed, assert_no_mismatch):
    router, counts = shadowed
    seed(router, fast=0)
    assert picks(router, 2) == {"d0"}
    resyncs = counts()["resyncs"]
    rewritten = copy.deepcopy(latency_map(router))
    rewritten["d2"]["latency_normalized"] = [0.05]
    router.cache.set_cache(KEY, rewritten, ttl=3600)
    assert picks(router) == {"d2"}
    assert counts()["resyncs"] == resyncs + 1
    assert_no_mismatch()


def test_streams_compare_time_to_first_token(instrumented_as, routing, fresh_router, assert_no_mismatch):
    instrumented_as("shadow")
    random.seed(5)
    router = fresh_router(ttft_percentile=0.5)
    for index in range(8):
        succeed(router, f"d{index}", 1.0, ttft=0.01 if index == 2 else 0.5)
    assert picks(router, stream=True) == {"d2"}
    assert picks(router, stream=False) == EVERY  # the same latency everywhere
    latency_map(router)["d4"]["time_to_first_token_seconds"].append(0.0)  # p50 of [0.5, 0.0] is 0.0
    assert picks(router, stream=True) == {"d4"}
    assert_no_mismatch()


def test_this_minutes_counters_filter_and_roll_over(shadowed, minute_clock, assert_no_mismatch):
    router, _ = shadowed
    for index in range(8):  # d0 fastest, then d1, d2, ...; one request each this minute
        succeed(router, f"d{index}", 0.1 * (index + 1))
    assert picks(router, 2) == {"d0"}
    succeed(router, "d0", 0.1)
    succeed(router, "d0", 0.1)  # 3 requests: at its rpm limit of 3
    assert picks(router, 2) == {"d1"}
    minute = _Clock.moment.strftime("%Y-%m-%d-%H-%M")
    latency_map(router)["d1"][minute]["rpm"] = 3  # the counters dict written in place
    assert picks(router, 2) == {"d2"}
    minute_clock(1)  # a new minute: no counters yet
    assert picks(router, 2) == {"d0"}
    assert_no_mismatch()


def test_expiry_flush_and_model_list_changes_are_followed(shadowed, assert_no_mismatch):
    router, counts = shadowed
    seed(router, fast=3)
    assert picks(router, 2) == {"d3"}
    cache = memory(router)
    clock = cache._clock
    cache._clock = lambda: clock() + 10**6  # past the map's ttl, on the cache's own clock
    assert picks(router) == EVERY  # every candidate reads as an unseen placeholder
    cache._clock = clock
    seed(router, fast=6)
    assert picks(router, 2) == {"d6"}
    router.cache.flush_cache()
    assert picks(router) == EVERY
    seed(router, fast=1)
    with_model_list_change(router, 1)  # a new registry version: new records, new plans
    assert picks(router, 2) == {"d1"}
    assert_no_mismatch()
    assert counts()["mirrored_picks"] > 0


def test_state_litellm_reads_otherwise_is_left_to_it(shadowed, counted_since_start, assert_no_mismatch):
    router, _ = shadowed
    seed(router, fast=0)
    picks(router, 2)
    latency_map(router)["d4"]["latency_normalized"] = [True]  # a bool sums as 1 in Python
    assert picks(router, 2) == {"d0"}
    assert counted_since_start()["fallback_reasons"].get("unsupported_state", 0) >= 1
    assert_no_mismatch()


def workload(router, at_minute) -> list:
    """Events of every kind, direct writes and picks with metadata, a minute per round (a
    deployment with three events in a round is at its rpm limit); each pick's id and
    `_latency_per_deployment`. Latencies are distinct, so each pick's draw set is one deployment."""
    rng = random.Random(11)
    picked = []
    at_minute(0)
    for index in range(8):  # no deployment is left unseen: an unseen one ties at 0
        succeed(router, f"d{index}", rng.uniform(0.05, 2.0))
    for round_ in range(30):
        at_minute(round_)
        for _ in range(3):
            deployment = f"d{rng.randrange(8)}"
            kind = rng.random()
            if kind < 0.15:
                time_out(router, deployment)
            else:
                succeed(
                    router, deployment, rng.uniform(0.05, 2.0), ttft=rng.uniform(0.01, 0.05) if kind > 0.7 else None
                )
        if round_ % 7 == 3:
            latency_map(router)[f"d{rng.randrange(8)}"]["latency_normalized"].append(rng.uniform(0.05, 2.0))
        request = {"metadata": {}, "stream": round_ % 3 == 0}
        chosen = router.get_available_deployment(GROUP, messages=MESSAGES, request_kwargs=request)
        picked.append((chosen["model_info"]["id"], request["metadata"]["_latency_per_deployment"]))
        request = {"metadata": {}}
        chosen = asyncio.run(router.select(GROUP, request, messages=MESSAGES))
        picked.append((chosen["model_info"]["id"], request["metadata"]["_latency_per_deployment"]))
    return picked


def test_rust_mode_equals_python_mode(instrumented_as, routing, fresh_router, minute_clock):
    python = workload(fresh_router(ttft_percentile=0.9), minute_clock)
    instrumented_as("rust")
    router = fresh_router(ttft_percentile=0.9)
    counts = mirror_counts(routing.latency_mirrors, router)
    assert workload(router, minute_clock) == python
    assert counts()["mirrored_picks"] == 60  # every pick's state read from the mirror


@pytest.mark.parametrize("fault", ["error", "panic"])
def test_a_rust_fault_is_served_by_litellm_and_counted(
    instrumented_as, routing, fresh_router, counted_since_start, fault
):
    instrumented_as("rust")
    router = fresh_router()
    counts = mirror_counts(routing.latency_mirrors, router)
    seed(router, fast=2)
    assert picks(router, 2) == {"d2"}
    mirrored = counts()["mirrored_picks"]
    fallbacks = counted_since_start()["fallbacks"]
    _native.inject_fault(fault)
    assert picks(router, 2) == {"d2"}  # litellm's own picks
    assert counted_since_start()["fallbacks"] >= fallbacks + 4  # (the step glue's calls fail too)
    _native.inject_fault(None)
    latency_map(router)["d7"]["latency_normalized"] = [0.01]
    assert picks(router, 2) == {"d7"}  # the mirror after the fault follows what happened meanwhile
    assert counts()["mirrored_picks"] == mirrored + 4


def test_candidates_of_the_callers_own_are_read_in_place(instrumented_as, routing, fresh_router):
    instrumented_as("rust")
    router = fresh_router()
    seed(router, fast=4)
    candidates = copy.deepcopy(router.registry().deployments(GROUP))
    before = routing.latency_mirrors.status()["read_in_place"].get("caller_candidates", 0)
    picked = selection.pick_sync(STRATEGY, selector_of(router), GROUP, candidates, MESSAGES, None, {})
    assert picked["model_info"]["id"] == "d4"
    assert routing.latency_mirrors.status()["read_in_place"]["caller_candidates"] == before + 1
