"""Whole picks served by `components/routing/whole_picks.py`, checked against litellm's own `Router.select` and
`Router.get_available_deployment`: shadow parity over mixed workloads, no cooling picks, every
decline reason reached on a real Router, bindings restored."""

import asyncio

import litellm
import litellm_rust
import pytest
from litellm.router_api import ChangeSet
from litellm.router_rust import core
from litellm.types.router import RouterRateLimitError
from litellm_rust import LiteLLMRustInstrumentor
from litellm_rust.components import components
from litellm_rust.config import ComponentSettings
from test_routing import (
    COOLING,
    GROUP,
    MESSAGES,
    STRATEGIES,
    cool_down,
    cooling_ids,
    drive_state,
    make_router,
    with_model_list_change,
)

WHOLE_PICK_REPLACED = ("select", "get_available_deployment")
LITELLM_REFUSALS = (litellm.RateLimitError, litellm.BadRequestError, ValueError)


def pick_all_ways(router, strategy: str) -> None:
    """An async pick, a sync pick where litellm has one, and a request, each as litellm raises."""

    async def picks():
        for pick in (
            router.select(GROUP, {}, messages=MESSAGES),
            router.select(GROUP),
            router.acompletion(model=GROUP, messages=MESSAGES),
        ):
            try:
                await pick
            except LITELLM_REFUSALS:
                pass

    asyncio.run(picks())
    if strategy != "cost-based-routing":
        try:
            router.get_available_deployment(GROUP, messages=MESSAGES)
        except LITELLM_REFUSALS:
            pass


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_shadow_whole_picks_match_litellms_select_with_cooldowns_and_model_list_changes(
    strategy, instrumented_as, counted_since_start
):
    router = make_router(strategy, 16, **COOLING)
    instrumented_as("shadow")
    for round_ in range(8):
        asyncio.run(drive_state(router, 5, seed=round_))
        if round_ % 2:
            cool_down(router, 1)
        if round_ % 3 == 0:
            with_model_list_change(router, round_)
        for _ in range(3):
            pick_all_ways(router, strategy)
    assert cooling_ids(router)
    status = counted_since_start()
    assert status["shadow_mismatches"] == 0, status["mismatch_details"]
    assert status["shadow_comparisons"] >= 100
    assert set(status["fallback_reasons"]) <= {"no_deployment_available"}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_rust_mode_whole_picks_are_served_and_never_cooling(strategy, instrumented_as, counted_since_start):
    router = make_router(strategy, 8, limits=False, **COOLING)
    cool_down(router, 4)
    cooling = cooling_ids(router)
    assert 0 < len(cooling) < 8
    instrumented_as("rust")

    async def picks():
        return [await router.select(GROUP, {}, messages=MESSAGES) for _ in range(40)]

    picked = asyncio.run(picks())
    if strategy != "cost-based-routing":
        picked += [router.get_available_deployment(GROUP, messages=MESSAGES) for _ in range(40)]
    assert not {deployment["model_info"]["id"] for deployment in picked} & cooling
    assert len({id(deployment) for deployment in picked}) == len(picked)  # a fresh dict each time
    status = counted_since_start()
    assert status["rust_calls"] >= 40 and status["fallbacks"] == 0, status


def test_rust_mode_answer_is_litellms_dict(instrumented_as):
    router = make_router("least-busy", 6, limits=False)
    litellm_answer = router.get_available_deployment(GROUP, messages=MESSAGES)
    instrumented_as("rust")
    assert router.get_available_deployment(GROUP, messages=MESSAGES) == litellm_answer  # least-busy: first of the idle


def test_rust_mode_answers_are_built_afresh_for_a_deployment_picked_again(instrumented_as):
    """`served` runs `typed_deployment` / `for_requested_model` once per picked id and registry
    version: every later answer for the id is still litellm's `_served` of the core's record, and a
    model-list change reads the changed record."""
    router = make_router("latency-based-routing", 4, limits=False)
    fast = components()["routing"].whole_picks
    instrumented_as("rust")

    def picked_as_litellm_serves() -> dict:
        answers = {}
        for _ in range(40):
            answer = router.get_available_deployment(GROUP, messages=MESSAGES)
            deployment_id = answer["model_info"]["id"]
            assert answer == fast.served(router._core, GROUP, deployment_id)
            answers[deployment_id] = answer
        return answers

    assert len(picked_as_litellm_serves()) > 1
    with_model_list_change(router, 2)
    assert picked_as_litellm_serves()["d2"]["litellm_params"]["rpm"] == 1002


@pytest.mark.parametrize("timing_sample_rate", [1.0, 0.01])
def test_rust_mode_picks_are_served_and_timing_samples_timed(timing_sample_rate, instrumented_as, counted_since_start):
    """Every pick is Rust's, whether the fast path answered it or it was a timing sample
    (`Control.serve(_async)`, which times it)."""
    router = make_router("least-busy", 6, limits=False)
    instrumented_as("rust")
    litellm_rust.configure("routing", timing_sample_rate=timing_sample_rate)
    control = components()["routing"].control
    try:
        timings = control.timings["rust"]
        timed_before = len(timings)

        async def picks():
            return [await router.select(GROUP, {}, messages=MESSAGES) for _ in range(20)]

        picked = asyncio.run(picks()) + [router.get_available_deployment(GROUP, messages=MESSAGES) for _ in range(20)]
        timed = len(timings) - timed_before
    finally:
        litellm_rust.configure("routing", timing_sample_rate=ComponentSettings().timing_sample_rate)
    assert all(deployment["model_name"] == GROUP for deployment in picked)
    status = counted_since_start()
    assert status["rust_calls"] >= 40 and status["fallbacks"] == 0, status
    assert timed == 40 if timing_sample_rate == 1.0 else timed <= 1


def test_all_cooling_falls_back_to_litellms_error(instrumented_as, counted_since_start):
    router = make_router("latency-based-routing", 2, limits=False, **COOLING)
    cool_down(router, 2)
    assert len(cooling_ids(router)) == 2
    instrumented_as("rust")
    with pytest.raises(RouterRateLimitError):
        asyncio.run(router.select(GROUP, {}, messages=MESSAGES))
    assert counted_since_start()["fallback_reasons"].get("no_deployment_available", 0) >= 1


IMAGE = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]


def _deployments_with(**params) -> list:
    return [
        {
            "model_name": GROUP,
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "x", **params},
            "model_info": {"id": f"d{i}"},
        }
        for i in range(3)
    ]


# reason -> (Router arguments, the pick: "select", "sync" or a callable(router))
DECLINES = {
    "request_fields": ({}, lambda router: router.select(GROUP, {"metadata": {"team": "a"}}, messages=MESSAGES)),
    "specific_deployment": ({}, lambda router: router.select("d1", {}, specific_deployment=True)),
    "model_resolution": ({}, lambda router: router.select("d1", {})),
    "image_request": ({}, lambda router: router.select(GROUP, {}, messages=IMAGE)),
    "model_group_alias": ({"model_group_alias": {"alias": GROUP}}, "select"),
    "pre_call_checks": ({"enable_pre_call_checks": True}, "select"),
    "health_check_routing": ({"enable_health_check_routing": True}, "select"),
    "routing_fields": ({"enable_tag_filtering": True}, "select"),
    "deployment_order": ({"model_list": _deployments_with(order=1)}, "sync"),
    "deployment_tags": ({"model_list": _deployments_with(tags=["eu"])}, "sync"),
    "pod_discovery": (
        {"model_list": _deployments_with(kubernetes_pod_discovery=True, api_base="http://pods.svc:8000")},
        "sync",
    ),
    "optional_pre_call_checks": ({"optional_pre_call_checks": ["enforce_model_rate_limits"]}, "select"),
}


@pytest.mark.parametrize("case", sorted(DECLINES))
def test_each_decline_is_counted_and_served_by_litellm(case, instrumented_as, counted_since_start):
    arguments, pick = DECLINES[case]
    reason = "pre_call_checks" if case == "optional_pre_call_checks" else case
    router = litellm.Router(**{"model_list": _deployments_with(), "routing_strategy": "least-busy", **arguments})
    instrumented_as("rust")
    if pick == "sync":
        answer = router.get_available_deployment(GROUP, messages=MESSAGES)
    else:
        call = pick if callable(pick) else (lambda router: router.select(GROUP, {}, messages=MESSAGES))
        try:
            answer = asyncio.run(call(router))
        except LITELLM_REFUSALS:
            answer = None  # litellm's own answer to the request, whatever it is
    if answer is not None:
        assert answer["model_info"]["id"] in {"d0", "d1", "d2"}
    assert counted_since_start()["fallback_reasons"].get(reason, 0) >= 1, counted_since_start()


def test_unserved_strategies_pick_with_litellm_uncounted(instrumented_as, counted_since_start):
    router = make_router("simple-shuffle", 4, limits=False)
    instrumented_as("rust")
    assert router.get_available_deployment(GROUP, messages=MESSAGES)["model_name"] == GROUP
    assert asyncio.run(router.select(GROUP, {}, messages=MESSAGES))["model_name"] == GROUP
    status = counted_since_start()
    assert status["rust_calls"] == 0 and status["fallbacks"] == 0, status


def test_eligibility_follows_settings_changes(instrumented_as, counted_since_start):
    router = make_router("least-busy", 4, limits=False)
    instrumented_as("rust")
    router.get_available_deployment(GROUP, messages=MESSAGES)
    router.apply(ChangeSet(settings={"model_group_alias": {"alias": GROUP}}))
    router.get_available_deployment(GROUP, messages=MESSAGES)
    router.apply(ChangeSet(settings={"model_group_alias": {}}))
    router.get_available_deployment(GROUP, messages=MESSAGES)
    status = counted_since_start()
    assert status["fallback_reasons"] == {"model_group_alias": 1} and status["rust_calls"] - status["fallbacks"] == 2, (
        status
    )


def test_uninstrument_restores_select_and_get_available_deployment(routing):
    originals = {name: vars(core.RustCore)[name] for name in WHOLE_PICK_REPLACED}
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        for name, original in originals.items():
            assert vars(core.RustCore)[name] is routing.replacements()[original]
    finally:
        instrumentor.uninstrument()
    assert {name: vars(core.RustCore)[name] for name in WHOLE_PICK_REPLACED} == originals
