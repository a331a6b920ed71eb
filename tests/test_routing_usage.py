"""The group usage counters' names served once per model list and minute
(`components/routing_usage.py`), against litellm's own `_group_usage_counters` and usage reads."""

import asyncio
from datetime import datetime, timezone

import pytest
from litellm import Router
from litellm.redis.stores.router_usage import UsageCounter
from litellm.router_rust.surface import model_info

import litellm_rust
from litellm_rust.components import components
from test_routing import GROUP, MESSAGES, instrumented_as, make_router  # noqa: F401 (fixture)



def litellms_function():
    """litellm's `_group_usage_counters` (held by the component: a module global would be a binding
    site that instrumenting rebinds)."""
    return components()["routing"].usage_counters.reference


@pytest.fixture
def clock(monkeypatch):
    """The minute litellm's usage reads name (`get_utc_datetime`, where `model_info` reads it)."""
    now = {"at": datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)}
    monkeypatch.setattr(model_info, "get_utc_datetime", lambda: now["at"])

    def at(hour: int, minute: int) -> str:
        now["at"] = datetime(2026, 3, 4, hour, minute, 7, tzinfo=timezone.utc)
        return f"{hour:02d}-{minute:02d}"

    return at


def hosted(router: Router):
    return router._core._hosted


def count(router: Router, deployment_id: str, model: str, minute: str, tokens: int, requests: int) -> None:
    """Usage written as litellm's success path writes it, into the router's own store."""
    store = hosted(router)._core_usage_store
    store.increment_sync(UsageCounter(deployment_id, model, minute, "tpm"), tokens, 120)
    store.increment_sync(UsageCounter(deployment_id, model, minute, "rpm"), requests, 120)


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
    return litellm_rust.status()["routing"]["usage_counters"]


def some_usage(router: Router, minute: str) -> None:
    for index, deployment in enumerate(hosted(router)._core_get_model_list(model_name=GROUP)):
        if index % 3:
            count(router, deployment["model_info"]["id"], deployment["litellm_params"]["model"], minute, 7 * index, index)


@pytest.mark.parametrize("mode", ["rust", "shadow"])
def test_usage_reads_are_litellms_with_limits_on_some_deployments(instrumented_as, clock, mode):
    router = make_router("latency-based-routing", 12)
    some_usage(router, clock(5, 6))
    instrumented_as(mode)
    before = litellm_rust.status()["routing"]
    first, again = reads(router), reads(router)
    assert first == again == litellms_reads(router)
    assert first[3]["x-ratelimit-limit-requests"] > first[3]["x-ratelimit-remaining-requests"]
    after = litellm_rust.status()["routing"]
    if mode == "rust":
        assert after["usage_counters"]["served"] > before["usage_counters"].get("served", 0)
    else:
        assert after["shadow_comparisons"] > before["shadow_comparisons"]
    assert after["shadow_mismatches"] == before["shadow_mismatches"], after["mismatch_details"]


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
    router.add_deployment(
        litellm_deployment("d-new", {"model": "openai/gpt-4o", "api_key": "x", "rpm": 9, "tpm": 99})
    )
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
    before = usage_counters().get("routing_groups", 0)
    assert reads(router) == litellms_reads(router)
    assert usage_counters()["routing_groups"] > before


def test_response_headers_carry_litellms_remaining_usage(instrumented_as):
    router = make_router("latency-based-routing", 6)
    instrumented_as("rust")
    for _ in range(4):
        response = asyncio.run(router.acompletion(model=GROUP, messages=MESSAGES, mock_response="ok"))
    headers = response._hidden_params["additional_headers"]
    remaining = litellms_reads(router)[3]
    # The last response was stamped before its own success was counted, as litellm stamps it.
    assert headers["x-ratelimit-limit-requests"] == remaining["x-ratelimit-limit-requests"]
    assert headers["x-ratelimit-remaining-requests"] >= remaining["x-ratelimit-remaining-requests"]


def test_uninstrument_restores_litellms_function(instrumented_as):
    instrumentor = instrumented_as("rust")
    assert vars(model_info.HostModelInfo)["_group_usage_counters"] is not litellms_function()
    instrumentor.uninstrument()
    assert vars(model_info.HostModelInfo)["_group_usage_counters"] is litellms_function()


def litellm_deployment(deployment_id: str, params: dict):
    from litellm.types.router import Deployment

    return Deployment(model_name=GROUP, litellm_params=params, model_info={"id": deployment_id})
