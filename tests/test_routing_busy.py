"""least-busy's in-flight counts read from the router cache's native mirror
(`components/routing/mirrors.py`, the same `_native.UsageMirror` usage-v2's counters use), checked
against litellm's own pick on the same state: in shadow mode every Rust pick is compared with
litellm's, and the mirror must follow every way the counts change: the handler's callbacks (pre-call,
success, failure, sync and async, streamed or not), writes through the cache and straight into its
dicts, expiry, `flush_cache`, model-list changes."""

import asyncio
import copy
import math

import pytest
from litellm.router_rust.steps import selection
from litellm.router_strategy import least_busy
from litellm_rust import _native
from test_routing import (
    GROUP,
    MESSAGES,
    make_router,
    memory,
    mirror_counts,
    picks,
    selector_of,
    with_model_list_change,
)

STRATEGY = "least-busy"
EVERY = {f"d{i}" for i in range(8)}


@pytest.fixture
def shadowed(instrumented_as, routing):
    """A least-busy router of eight deployments in shadow mode, and its cache's mirror counts."""
    instrumented_as("shadow")
    router = make_router(STRATEGY, 8, limits=False)
    return router, mirror_counts(routing.usage_mirrors, router)


def count_key(index: int) -> str:
    return f"{GROUP}_request_count:d{index}"


def call_kwargs(index: int, call_id: str | None, stream: bool = False) -> dict:
    """A call's kwargs as least-busy's callbacks read them (`_deployment_ref`, `call_id_of`)."""
    kwargs = {
        "litellm_params": {"metadata": {"model_group": GROUP, "model_info": {"id": f"d{index}"}}},
        "stream": stream,
    }
    return kwargs if call_id is None else {**kwargs, "litellm_call_id": call_id}


def busy_except(router, free: int) -> None:
    """Every deployment but `free` has calls in flight, counted as the handler counts them."""
    for index in range(8):
        if index != free:
            selector_of(router).router_cache.increment_cache(
                count_key(index), 2 + index, local_only=True, ttl=least_busy.IN_FLIGHT_COUNT_TTL_SECONDS
            )


async def drive_callbacks(router, round_: int) -> None:
    """Calls started and ended through the handler's own callbacks, sync and async, successes and
    failures, streamed or not, some left in flight; and real mock completions."""
    selector = selector_of(router)
    for offset in range(4):
        index = (round_ * 3 + offset) % 8
        call_id = f"r{round_}-{offset}" if offset != 3 else None
        kwargs = call_kwargs(index, call_id, stream=offset == 1)
        selector.log_pre_api_call(GROUP, MESSAGES, kwargs)
        if offset == 0:
            selector.log_success_event(kwargs, None, None, None)
        elif offset == 1:
            await selector.async_log_failure_event(kwargs, None, None, None)
        elif offset == 2 and round_ % 2:
            await selector.async_log_success_event(kwargs, None, None, None)
        # offset 3 (no call id) and even rounds' offset 2 stay in flight
    await router.acompletion(model=GROUP, messages=MESSAGES, mock_response="hi")
    response = await router.acompletion(model=GROUP, messages=MESSAGES, mock_response="hi", stream=True)
    async for _ in response:
        pass
    router.completion(model=GROUP, messages=MESSAGES, mock_response="hi")


def test_shadow_mirror_finds_no_mismatch_over_the_handlers_callbacks(shadowed, assert_no_mismatch):
    router, counts = shadowed

    async def run():
        for round_ in range(12):
            await drive_callbacks(router, round_)
            for _ in range(3):
                await router.select(GROUP, {}, messages=MESSAGES)
                router.get_available_deployment(GROUP, messages=MESSAGES)

    asyncio.run(run())
    assert_no_mismatch()
    # the callbacks' writes were copied as they happened: the cache was read whole only once
    assert counts()["mirrored_picks"] >= 72 and counts()["resyncs"] == 1
    assert any(memory(router).get_cache(count_key(index)) for index in range(8))  # calls left in flight


def test_writes_through_the_cache_are_copied_without_rereading_it(shadowed, assert_no_mismatch):
    router, counts = shadowed
    picks(router, 2)
    busy_except(router, free=5)
    assert picks(router) == {"d5"}
    selector_of(router).router_cache.set_cache(count_key(5), 50, local_only=True)
    assert picks(router) == {"d0"}
    assert_no_mismatch()
    assert counts()["resyncs"] == 1


def test_writes_straight_into_the_dicts_are_seen_by_the_next_pick(shadowed, assert_no_mismatch):
    router, counts = shadowed
    picks(router, 2)
    for index in range(8):
        if index != 3:
            memory(router).cache_dict[count_key(index)] = 4  # bypasses every cache method
    assert picks(router) == {"d3"}
    assert_no_mismatch()
    assert counts()["resyncs"] == 2


def test_an_expired_count_is_read_in_place_and_removed_as_litellm_removes_it(shadowed, assert_no_mismatch):
    router, counts = shadowed
    busy_except(router, free=0)
    assert picks(router, 2) == {"d0"}
    cache = memory(router)
    now = cache._clock()
    cache._clock = lambda: now + least_busy.IN_FLIGHT_COUNT_TTL_SECONDS + 1  # on the cache's own clock
    router.get_available_deployment(GROUP, messages=MESSAGES)
    assert counts()["read_in_place"] == 1
    assert not any(
        "_request_count:" in key for key in cache.cache_dict
    )  # removed by the read, as litellm's read removes them
    assert picks(router) == {"d0"}  # every count is 0 again: the first deployment
    assert_no_mismatch()


def test_flush_and_model_list_changes_are_followed(shadowed, assert_no_mismatch):
    router, counts = shadowed
    busy_except(router, free=2)
    assert picks(router, 2) == {"d2"}
    selector_of(router).router_cache.flush_cache()
    assert picks(router) == {"d0"}
    busy_except(router, free=6)
    assert picks(router) == {"d6"}
    with_model_list_change(router, 6)  # a new registry version: new records, new plans
    assert picks(router) == {"d6"}
    selector_of(router).router_cache.increment_cache(count_key(6), 100, local_only=True)
    assert picks(router) == {"d0"}
    assert_no_mismatch()
    assert counts()["resyncs"] == 1


@pytest.mark.parametrize("value", ["7", True, 2**60, math.inf, None])
def test_counts_that_are_not_plain_numbers_are_litellms_to_read(shadowed, value, assert_no_mismatch):
    router, counts = shadowed
    picks(router, 2)
    memory(router).set_cache(count_key(0), value)
    try:
        picks(router)
    except (ValueError, TypeError, OverflowError):
        pass  # litellm's own error on such a count, in both
    assert_no_mismatch()
    if value is not None and value is not math.inf:
        assert counts()["read_in_place"] >= 1


def workload(router) -> list[str]:
    """Reserving picks with call ids, each call started and most ended through the handler's
    callbacks; the id each pick chose."""
    selector = selector_of(router)
    candidates = router.registry().deployments(GROUP)
    chosen = []

    async def run():
        for round_ in range(30):
            call_id = f"c{round_}"
            picked = selection.pick_sync(
                STRATEGY, selector, GROUP, candidates, None, None, {"litellm_call_id": call_id}, reserve=True
            )
            index = int(picked["model_info"]["id"][1:])
            chosen.append(picked["model_info"]["id"])
            kwargs = call_kwargs(index, call_id)
            selector.log_pre_api_call(GROUP, MESSAGES, kwargs)
            if round_ % 3 == 0:
                await selector.async_log_success_event(kwargs, None, None, None)
            elif round_ % 3 == 1 and round_ % 2:
                selector.log_failure_event(kwargs, None, None, None)
            chosen.append((await router.select(GROUP, {}, messages=MESSAGES))["model_info"]["id"])

    asyncio.run(run())
    return chosen


def before_litellms_read(monkeypatch, land) -> None:
    """`land(handler)` runs inside litellm's own pick just before it reads the counts: where another
    thread's callback or pick lands after the shadow pick read them."""
    select = least_busy.LeastBusyLoggingHandler._select

    def landed_first(self, *args):
        land(self)
        return select(self, *args)

    monkeypatch.setattr(least_busy.LeastBusyLoggingHandler, "_select", landed_first)


def calls_started(handler) -> None:
    """Four calls started on d0 (from another thread), making it busier than d1."""
    for n in range(4):
        handler.log_pre_api_call(GROUP, MESSAGES, call_kwargs(0, f"landed-{n}"))


def picks_reserved(handler) -> None:
    """Four picks of d0 reserved (by another thread's picks), making it busier than d1."""
    now = handler._clock()
    handler._store_reservations(
        "d0", (*handler._live_reservations("d0", now), *[(now, f"other-{n}") for n in range(4)])
    )


@pytest.mark.parametrize("land", [calls_started, picks_reserved])
@pytest.mark.parametrize("entry", ["strategy", "router"])
def test_state_moved_between_the_two_picks_is_not_a_mismatch(shadowed, monkeypatch, counted_since_start, land, entry):
    router, _ = shadowed
    busy_except(router, free=0)
    before_litellms_read(monkeypatch, land)
    if entry == "strategy":
        deployments = copy.deepcopy(list(router.registry().all()))
        picked = selection.pick_sync(STRATEGY, selector_of(router), GROUP, deployments, MESSAGES, None, None, True)
    else:
        picked = router.get_available_deployment(GROUP, messages=MESSAGES)
    assert picked["model_info"]["id"] == "d1"  # litellm's pick read what landed, the shadow's could not
    counted = counted_since_start()
    assert counted["shadow_mismatches"] == 0
    # the router's pick and the strategy pick inside it are each compared
    assert counted["shadow_uncompared"] == {"strategy": 1, "router": 2}[entry]


def test_rust_mode_equals_python_mode(instrumented_as, routing):
    python = workload(make_router(STRATEGY, 8, limits=False))
    assert len(set(python)) > 4  # the calls in flight spread the picks
    instrumented_as("rust")
    router = make_router(STRATEGY, 8, limits=False)
    counts = mirror_counts(routing.usage_mirrors, router)
    assert workload(router) == python
    # every router pick's counts read from the mirror (the reserving picks list candidates of
    # their own, read in place)
    assert counts()["mirrored_picks"] == 30


@pytest.mark.parametrize("fault", ["error", "panic"])
def test_a_rust_fault_is_served_by_litellm_and_counted(instrumented_as, routing, counted_since_start, fault):
    instrumented_as("rust")
    router = make_router(STRATEGY, 8, limits=False)
    counts = mirror_counts(routing.usage_mirrors, router)
    busy_except(router, free=2)
    assert picks(router, 2) == {"d2"}
    mirrored = counts()["mirrored_picks"]
    fallbacks = counted_since_start()["fallbacks"]
    _native.inject_fault(fault)
    try:
        assert picks(router, 2) == {"d2"}  # litellm's own picks
        selector_of(router).router_cache.increment_cache(count_key(2), 100, local_only=True)
    finally:
        _native.inject_fault(None)
    assert counted_since_start()["fallbacks"] >= fallbacks + 4
    assert picks(router, 2) == {"d0"}  # the mirror after the fault follows what happened meanwhile
    assert counts()["mirrored_picks"] == mirrored + 4


def test_candidates_of_the_callers_own_are_read_in_place(instrumented_as, routing):
    instrumented_as("rust")
    router = make_router(STRATEGY, 8, limits=False)
    busy_except(router, free=4)
    candidates = copy.deepcopy(router.registry().deployments(GROUP))
    before = routing.usage_mirrors.status()["read_in_place"].get("caller_candidates", 0)
    picked = selection.pick_sync(STRATEGY, selector_of(router), GROUP, candidates, MESSAGES, None, {})
    assert picked["model_info"]["id"] == "d4"
    assert routing.usage_mirrors.status()["read_in_place"]["caller_candidates"] == before + 1
