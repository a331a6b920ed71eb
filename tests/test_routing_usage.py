"""The group usage counters' names served once per model list and minute
(`components/routing/group_usage.py`), against litellm's own `_group_usage_counters` and usage reads."""

import asyncio
from datetime import UTC, datetime

import litellm_rust
import pytest
from litellm import Router
from litellm.redis.stores.router_usage import UsageCounter
from litellm.router_rust.surface import model_info
from litellm_rust.components import components
from test_routing import GROUP, MESSAGES, make_router


def litellms_function():
    """litellm's `_group_usage_counters` (held by the component: a module global would be a binding
    site that instrumenting rebinds)."""
    return components()["group_usage"].reference


@pytest.fixture
def clock(monkeypatch):
    """The minute litellm's usage reads name (`get_utc_datetime`, where `model_info` reads it)."""
    now = {"at": datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)}
    monkeypatch.setattr(model_info, "get_utc_datetime", lambda: now["at"])

    def at(hour: int, minute: int) -> str:
        now["at"] = datetime(2026, 3, 4, hour, minute, 7, tzinfo=UTC)
        return f"{hour:02d}-{minute:02d}"

    return at


def hosted(router: Router):
    return router._core._hosted


def count(router: Router, deployment_id: str, model: str, minute: str, tokens: int, requests: int) -> None:
    """Usage written as litellm's async success path writes it, into the router's own store (and Redis)."""
    store = hosted(router)._core_usage_store

    async def increment() -> None:
        await store.increment(UsageCounter(deployment_id, model, minute, "tpm"), tokens, 120)
        await store.increment(UsageCounter(deployment_id, model, minute, "rpm"), requests, 120)

    asyncio.run(increment())


def litellm_deployment(deployment_id: str, params: dict, group: str = GROUP):
    from litellm.types.router import Deployment

    return Deployment(model_name=group, litellm_params=params, model_info={"id": deployment_id})


def reads(router: Router) -> tuple:
    """Every usage read litellm makes of the group: the names, current and remaining, async and sync."""
    registry = hosted(router)
    return (
        registry._group_usage_counters(GROUP),
        asyncio.run(registry._core_get_model_group_usage(GROUP)),
        registry._core_get_model_group_usage_sync(GROUP),
        asyncio.run(registry._core_get_remaining_model_group_usage(GROUP)),
        registry._core_get_remaining_model_group_usage_sync(GROUP, router._core.io_token_usage_sync),
    )


def litellms_reads(router: Router) -> tuple:
    """The same reads with litellm's own function bound."""
    current = vars(model_info.HostModelInfo)["_group_usage_counters"]
    model_info.HostModelInfo._group_usage_counters = litellms_function()
    try:
        return reads(router)
    finally:
        model_info.HostModelInfo._group_usage_counters = current


def usage_counters() -> dict:
    return litellm_rust.status()["group_usage"]["usage_counters"]


def some_usage(router: Router, minute: str) -> None:
    for index, deployment in enumerate(hosted(router)._core_get_model_list(model_name=GROUP)):
        if index % 3:
            count(
                router, deployment["model_info"]["id"], deployment["litellm_params"]["model"], minute, 7 * index, index
            )


@pytest.mark.parametrize("mode", ["rust", "shadow"])
def test_usage_reads_are_litellms_with_limits_on_some_deployments(instrumented_as, clock, counted_since_start, mode):
    router = make_router("latency-based-routing", 12)
    some_usage(router, clock(5, 6))
    instrumented_as(mode)
    served = usage_counters().get("served", 0)
    first, again = reads(router), reads(router)
    assert first == again == litellms_reads(router)
    assert first[3]["x-ratelimit-limit-requests"] > first[3]["x-ratelimit-remaining-requests"]
    counted = counted_since_start("group_usage")
    if mode == "rust":
        assert usage_counters()["served"] > served
    else:
        assert counted["shadow_comparisons"] > 0
    assert counted["shadow_mismatches"] == 0, counted["mismatch_details"]


def test_usage_reads_of_a_group_without_limits_are_litellms(instrumented_as, clock):
    router = make_router("latency-based-routing", 6, limits=False)
    some_usage(router, clock(5, 6))
    instrumented_as("rust")
    assert reads(router) == reads(router) == litellms_reads(router)
    assert reads(router)[3] == {}


def test_counters_are_named_again_when_the_minute_rolls_over(instrumented_as, clock):
    router = make_router("latency-based-routing", 8)
    some_usage(router, clock(5, 6))
    instrumented_as("rust")
    during = reads(router)
    some_usage(router, clock(5, 7))
    count(router, "d0", "openai/gpt-4o-mini", "05-07", 1000, 3)
    after = reads(router)
    assert after == litellms_reads(router)
    assert after != during
    assert {counter.minute for kind in after[0] for counter in kind} == {"05-07"}


def test_counters_follow_model_list_changes(instrumented_as, clock):
    router = make_router("latency-based-routing", 6)
    minute = clock(5, 6)
    some_usage(router, minute)
    instrumented_as("rust")
    reads(router)
    router.add_deployment(litellm_deployment("d-new", {"model": "openai/gpt-4o", "api_key": "x", "rpm": 9, "tpm": 99}))
    count(router, "d-new", "openai/gpt-4o", minute, 50, 2)
    added = reads(router)
    assert added == litellms_reads(router)
    assert "d-new" in {counter.deployment_id for counter in added[0][0]}
    hosted(router)._core_model_list[0]["model_info"]["id"] = "d0-renamed"  # an in-place edit of a held entry
    count(router, "d0-renamed", "openai/gpt-4o-mini", minute, 5, 1)
    renamed = reads(router)
    assert renamed == litellms_reads(router)
    assert "d0-renamed" in {counter.deployment_id for counter in renamed[0][0]}


def test_aliases_read_their_target_groups_counters(instrumented_as, clock):
    router = make_router("latency-based-routing", 4)
    some_usage(router, clock(5, 6))
    instrumented_as("rust")
    registry = hosted(router)
    assert registry._group_usage_counters("an-alias") == litellms_function()(registry, "an-alias")
    router.model_group_alias = {"an-alias": GROUP}
    assert registry._group_usage_counters("an-alias") == litellms_function()(registry, "an-alias") != ((), ())


def test_a_router_with_routing_groups_is_litellms_counted(instrumented_as, clock):
    router = make_router(
        "latency-based-routing",
        4,
        routing_groups=[{"group_name": "chosen", "models": [GROUP], "routing_strategy": "simple-shuffle"}],
    )
    some_usage(router, clock(5, 6))
    instrumented_as("rust")
    before = litellm_rust.status()["group_usage"]["fallback_reasons"].get("routing_groups", 0)
    assert reads(router) == litellms_reads(router)
    assert litellm_rust.status()["group_usage"]["fallback_reasons"]["routing_groups"] > before


def test_a_redis_routers_usage_is_read_through_redis_by_litellms_store(instrumented_as, clock, redis_server):
    """The names are kept; the values are litellm's store's read, which asks Redis: another router's
    counts on the same server show up."""
    routers = [
        make_router("latency-based-routing", 6, redis_host="127.0.0.1", redis_port=redis_server.port) for _ in range(2)
    ]
    assert all(hosted(router)._core_usage_store.has_redis for router in routers)
    minute = clock(5, 6)
    instrumented_as("rust")
    named = hosted(routers[1])._group_usage_counters(GROUP)  # kept before the count (no value read yet)
    count(routers[0], "d0", "openai/gpt-4o-mini", minute, 40, 2)
    shared = reads(routers[1])
    assert shared == litellms_reads(routers[1])
    assert shared[0] is named
    assert shared[1] == (40, 2)  # the other router's counts, read from Redis by litellm's store
    assert usage_counters()["served"] > 0


def test_response_headers_carry_litellms_remaining_usage(instrumented_as):
    # Deployment ids of its own: litellm's usage counters are per deployment id and minute, process-wide,
    # and other tests' requests to a `d1` (tpm 0) this minute would have its rate check refuse it here.
    router = make_router("latency-based-routing", 6, id_prefix="headers-")
    instrumented_as("rust")
    for _ in range(4):
        response = asyncio.run(router.acompletion(model=GROUP, messages=MESSAGES, mock_response="ok"))
    headers = response._hidden_params["additional_headers"]
    remaining = litellms_reads(router)[3]
    # The last response was stamped before its own success was counted, as litellm stamps it.
    assert headers["x-ratelimit-limit-requests"] == remaining["x-ratelimit-limit-requests"]
    assert headers["x-ratelimit-remaining-requests"] >= remaining["x-ratelimit-remaining-requests"]


# -- whether a deployment's usage is counted ---------------------------------------------------


def litellms_tracks_usage(router: Router, deployment_id, model_group) -> bool:
    return components()["group_usage"].reference_tracks(router._core, deployment_id, model_group)


def tracked_counts() -> dict:
    return litellm_rust.status()["group_usage"]["deployment_tracks_usage"]


def tracking_router() -> Router:
    """More keys than litellm's 64-entry cache holds, limits on some deployments, a model the cost map lacks."""
    router = make_router("latency-based-routing", 40)
    router.add_deployment(litellm_deployment("unmapped", {"model": "openai/not-a-mapped-model", "api_key": "x"}))
    return router


def asked_keys(router: Router) -> list:
    ids = [deployment["model_info"]["id"] for deployment in hosted(router)._core_get_model_list(model_name=GROUP)]
    models = ("openai/gpt-4o", "openai/gpt-4o-mini", "openai/not-a-mapped-model", GROUP)
    return [(deployment_id, model) for deployment_id in ids for model in models] + [(None, GROUP), ("d1", None)]


@pytest.mark.parametrize("mode", ["rust", "shadow"])
def test_tracks_usage_answers_are_litellms(instrumented_as, counted_since_start, mode):
    router = tracking_router()
    expected = [litellms_tracks_usage(router, *key) for key in asked_keys(router)]
    assert True in expected and False in expected
    instrumented_as(mode)
    served = tracked_counts().get("served", 0)
    for _ in range(2):
        assert [router._core.deployment_tracks_usage(*key) for key in asked_keys(router)] == expected
    counted = counted_since_start("group_usage")
    if mode == "rust":
        assert tracked_counts()["served"] > served
    else:
        assert counted["shadow_comparisons"] > 0
    assert counted["shadow_mismatches"] == 0, counted["mismatch_details"]


def test_tracks_usage_answers_are_asked_again_after_litellm_empties_its_cache(instrumented_as):
    router = tracking_router()
    instrumented_as("rust")
    router._core.deployment_tracks_usage("d0", GROUP)
    asked = tracked_counts()["asked"]
    router._core.deployment_tracks_usage("d0", GROUP)
    assert tracked_counts()["asked"] == asked
    hosted(router)._invalidate_model_group_info_cache()
    router._core.deployment_tracks_usage("d0", GROUP)
    assert tracked_counts()["asked"] == asked + 1


def test_tracks_usage_follows_model_list_changes(instrumented_as):
    router = tracking_router()
    instrumented_as("rust")
    assert (
        router._core.deployment_tracks_usage("d-new", GROUP) is litellms_tracks_usage(router, "d-new", GROUP) is False
    )
    router.add_deployment(litellm_deployment("d-new", {"model": "openai/gpt-4o", "api_key": "x", "rpm": 3}))
    assert router._core.deployment_tracks_usage("d-new", GROUP) is litellms_tracks_usage(router, "d-new", GROUP) is True


def test_an_answer_litellms_cache_raised_for_is_not_kept(instrumented_as):
    router = tracking_router()
    instrumented_as("rust")
    assert router._core.deployment_tracks_usage("d0", GROUP) is True

    def unmapped(deployment_id, model_group):
        raise ValueError("model not mapped yet")  # as `_core_get_router_model_info` raises

    hosted(router).cached_deployment_tracks_usage = unmapped
    asked = tracked_counts()["asked"]
    for _ in range(3):
        assert router._core.deployment_tracks_usage("d0", GROUP) is litellms_tracks_usage(router, "d0", GROUP) is False
    assert tracked_counts()["asked"] == asked + 3


# -- the prompt-management check ----------------------------------------------------------------


def prompt_router() -> Router:
    return Router(
        model_list=[
            *({"model_name": "many", "litellm_params": {"model": "openai/gpt-4o", "api_key": "x"}} for _ in range(3)),
            {"model_name": "one", "litellm_params": {"model": "openai/gpt-4o", "api_key": "x"}},
            {"model_name": "prompted", "litellm_params": {"model": "langfuse/gpt-4o", "api_key": "x"}},
            {"model_name": "bare", "litellm_params": {"model": "gpt-4o", "api_key": "x"}},
        ],
        routing_strategy="latency-based-routing",
    )


def prompt_answers(router: Router) -> list:
    from litellm.router_rust.invoke import prompt_management

    return [
        prompt_management.is_prompt_management_model(router._core._port, name)
        for name in ("many", "one", "prompted", "bare", "unknown", "an-alias")
    ]


def litellms_prompt_answers(router: Router) -> list:
    from litellm.router_rust.invoke import prompt_management

    current = prompt_management.is_prompt_management_model
    prompt_management.is_prompt_management_model = components()["group_usage"].reference_prompt
    try:
        return prompt_answers(router)
    finally:
        prompt_management.is_prompt_management_model = current


@pytest.mark.parametrize("mode", ["rust", "shadow"])
def test_prompt_management_answers_are_litellms(instrumented_as, counted_since_start, mode):
    router = prompt_router()
    router.model_group_alias = {"an-alias": "prompted"}
    expected = litellms_prompt_answers(router)
    assert expected == [False, False, True, False, False, True]
    instrumented_as(mode)
    served = usage_counters().get("prompt_served", 0)
    assert prompt_answers(router) == prompt_answers(router) == expected
    counted = counted_since_start("group_usage")
    if mode == "rust":
        assert usage_counters()["prompt_served"] > served
    else:
        assert counted["shadow_comparisons"] > 0
    assert counted["shadow_mismatches"] == 0, counted["mismatch_details"]


def test_prompt_management_answers_follow_model_list_changes(instrumented_as):
    router = prompt_router()
    instrumented_as("rust")
    prompt_answers(router)
    hosted(router)._core_model_list[3]["litellm_params"]["model"] = "langfuse/gpt-4o"  # "one", edited in place
    router.add_deployment(litellm_deployment("p2", {"model": "langfuse/gpt-4o", "api_key": "x"}, group="prompted"))
    assert prompt_answers(router) == litellms_prompt_answers(router)
    assert prompt_answers(router)[1:3] == [True, False]


def test_uninstrument_restores_litellms_usage_functions(instrumented_as):
    from litellm.router_rust.invoke import prompt_management
    from litellm.router_rust.surface import health, registry

    group_usage = components()["group_usage"]
    sites = {
        (model_info.HostModelInfo, "_group_usage_counters"): group_usage.reference,
        (health.RustHealthCallbacks, "deployment_tracks_usage"): group_usage.reference_tracks,
        (registry.HostRegistry, "_invalidate_model_group_info_cache"): group_usage.reference_invalidate,
        (prompt_management, "is_prompt_management_model"): group_usage.reference_prompt,
    }
    instrumentor = instrumented_as("rust")
    assert all(vars(owner)[name] is not original for (owner, name), original in sites.items())
    instrumentor.uninstrument()
    assert all(vars(owner)[name] is original for (owner, name), original in sites.items())
