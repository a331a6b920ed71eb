"""Routing health metrics against litellm's real Router: cooldowns from litellm's own failure
handling, in-flight counts from least-busy, latencies from the latency strategy's successes, the
deployment cap, and routers leaving the metrics when they are collected."""

import asyncio
import gc
import itertools
import weakref
from datetime import datetime, timedelta

import litellm
import litellm_rust
import pytest
from conftest import metric_points
from litellm import Router
from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
from litellm_rust.components.routing.health import DEPLOYMENT_ID, DEPLOYMENT_STATE, MODEL_GROUP
from litellm_rust.config import ConfigError
from servers import wait_until

DEPLOYMENTS = "litellm_rust.routing.deployments"
IN_FLIGHT = "litellm_rust.routing.deployment.in_flight"
LATENCY = "litellm_rust.routing.deployment.latency"
MESSAGES = [{"role": "user", "content": "hello"}]
# Model groups unique to each router, so routers other tests left alive never mix into a reading.
_groups = (f"health-{n}" for n in itertools.count())
# Routers with the same strategy arguments share litellm's deduplicated handler: distinct ttls.
_ttls = itertools.count(7200)


def make_router(strategy: str, failing: int = 0, healthy: int = 2, group: str | None = None, **settings) -> Router:
    """`failing` deployments whose every call raises litellm's InternalServerError (litellm's own
    mock), then `healthy` ones answering "hi"."""
    group = group or next(_groups)
    model_list = [
        {
            "model_name": group,
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_key": "x",
                "mock_response": "litellm.InternalServerError" if i < failing else "hi",
            },
            "model_info": {"id": f"{group}-d{i}"},
        }
        for i in range(failing + healthy)
    ]
    args = {"ttl": next(_ttls)} if strategy == "latency-based-routing" else {}
    return Router(
        model_list=model_list, routing_strategy=strategy, routing_strategy_args=args, num_retries=0, **settings
    )


def group_of(router: Router) -> str:
    return router.registry().all()[0]["model_name"]


def readings(reader, metric: str, group: str) -> dict[tuple, float]:
    """One collection of `metric` for one model group: the other attributes -> value."""
    found = {}
    for _, point in metric_points(reader).get(metric, []):
        attributes = dict(point.attributes)
        if attributes.pop(MODEL_GROUP) == group:
            found[tuple(sorted(attributes.items()))] = point.value
    return found


def per_deployment(router: Router, state_of: dict[str, str]) -> dict[tuple, int]:
    return {((DEPLOYMENT_ID, deployment_id), (DEPLOYMENT_STATE, state)): 1 for deployment_id, state in state_of.items()}


def cooling(router: Router) -> set[str]:
    ids = router.registry().names(kind="ids")
    return {deployment_id for deployment_id, _ in router.health().cooldowns.get_active_cooldowns(ids, None)}


async def complete(router: Router, times: int, until_cooling: int = 0) -> None:
    """`times` requests, and more (up to 100) until `until_cooling` deployments cool down: which
    deployment a request reaches is the strategy's (random) pick."""
    for sent in itertools.count():
        if sent >= times and (len(cooling(router)) >= until_cooling or sent >= 100):
            break
        try:
            await router.acompletion(model=group_of(router), messages=MESSAGES)
        except litellm.InternalServerError:
            pass  # the mock failure, recorded by litellm's failure handling
        except litellm.RouterRateLimitError:
            pass  # every deployment cooling down
    await settled()


async def settled() -> None:
    """Wait for litellm's background work (the logging tasks that run the success and failure
    callbacks), so the state they write is there before the loop closes."""
    while pending := asyncio.all_tasks() - {asyncio.current_task(), GLOBAL_LOGGING_WORKER._worker_task}:
        await asyncio.gather(*pending, return_exceptions=True)
    await GLOBAL_LOGGING_WORKER.flush()


def test_deployments_cooled_down_by_litellms_failure_handling_are_reported_as_cooldown(otel):
    otel.instrument()
    router = make_router("least-busy", failing=2, healthy=2, allowed_fails=0, cooldown_time=600)
    group = group_of(router)
    asyncio.run(complete(router, 12, until_cooling=2))
    assert cooling(router) == {f"{group}-d0", f"{group}-d1"}  # litellm cooled exactly the failing two down
    assert readings(otel.reader, DEPLOYMENTS, group) == per_deployment(
        router,
        {
            f"{group}-d0": "cooldown",
            f"{group}-d1": "cooldown",
            f"{group}-d2": "healthy",
            f"{group}-d3": "healthy",
        },
    )


def test_requests_in_flight_are_reported_per_deployment_from_least_busy(otel):
    otel.instrument()
    router = make_router("least-busy", healthy=3)
    group = group_of(router)

    async def run():
        calls = [
            asyncio.create_task(router.acompletion(model=group, messages=MESSAGES, mock_delay=30)) for _ in range(6)
        ]

        async def all_started():
            while sum(readings(otel.reader, IN_FLIGHT, group).values()) < 6:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(all_started(), 15)
        during = readings(otel.reader, IN_FLIGHT, group)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        await settled()
        return during

    during = asyncio.run(run())
    # least-busy spreads six concurrent calls over three deployments, two each
    assert during == {((DEPLOYMENT_ID, f"{group}-d{i}"),): 2 for i in range(3)}


def test_latency_p50_is_reported_from_the_latency_strategys_samples(otel):
    otel.instrument()
    router = make_router("latency-based-routing", healthy=3)
    group = group_of(router)
    asyncio.run(complete(router, 1))  # a pick through the routing component: the router is seen
    selector = router._core._selectors.default
    router._core._cache.delete_cache(f"{group}_map")  # only the samples below

    async def succeed(deployment_id: str, seconds: float) -> None:
        end = datetime.now()
        kwargs = {"litellm_params": {"metadata": {"model_group": group}, "model_info": {"id": deployment_id}}}
        await selector.async_log_success_event(kwargs, None, end - timedelta(seconds=seconds), end)

    async def drive():
        for seconds in (0.1, 0.3, 0.2):
            await succeed(f"{group}-d0", seconds)
        for seconds in (0.5, 0.4, 0.7, 0.6):
            await succeed(f"{group}-d1", seconds)

    asyncio.run(drive())
    # litellm's percentile rule takes the ceil(n/2)-th smallest sample; d2 has none, so no point
    assert readings(otel.reader, LATENCY, group) == pytest.approx(
        {
            ((DEPLOYMENT_ID, f"{group}-d0"),): 0.2,
            ((DEPLOYMENT_ID, f"{group}-d1"),): 0.5,
        }
    )


def test_a_router_over_the_cap_is_reported_per_model_group(otel, own_strategy_callbacks):
    otel.instrument(components={"routing": {"deployment_series_cap": 3}})
    own_strategy_callbacks()  # the latency samples of this router's successes reach its own map
    router = make_router("latency-based-routing", failing=1, healthy=3, allowed_fails=0, cooldown_time=600)
    group = group_of(router)
    asyncio.run(complete(router, 8, until_cooling=1))
    assert readings(otel.reader, DEPLOYMENTS, group) == {
        ((DEPLOYMENT_STATE, "cooldown"),): 1,
        ((DEPLOYMENT_STATE, "healthy"),): 3,
    }
    assert set(readings(otel.reader, LATENCY, group)) == {()}  # one pooled p50, no deployment ids
    litellm_rust.configure("routing", deployment_series_cap=4)  # at the cap: per deployment again
    assert len(readings(otel.reader, DEPLOYMENTS, group)) == 4


def test_the_cap_is_read_from_the_environment_and_validated(otel, monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_LITELLM_RUST_ROUTING_DEPLOYMENT_SERIES_CAP", "0")
    otel.instrument()
    router = make_router("least-busy", healthy=2)
    group = group_of(router)
    asyncio.run(complete(router, 1))
    assert readings(otel.reader, DEPLOYMENTS, group) == {((DEPLOYMENT_STATE, "healthy"),): 2}
    with pytest.raises(ConfigError, match="components.routing.deployment_series_cap: must be at least 0"):
        litellm_rust.configure("routing", deployment_series_cap=-1)


def test_a_router_never_picked_through_the_component_is_not_reported(otel):
    otel.instrument()
    router = make_router("least-busy", healthy=2)
    assert readings(otel.reader, DEPLOYMENTS, group_of(router)) == {}


def test_a_garbage_collected_router_leaves_the_metrics(otel):
    otel.instrument()
    router = make_router("least-busy", healthy=2)
    group = group_of(router)
    asyncio.run(complete(router, 2))
    assert sum(readings(otel.reader, DEPLOYMENTS, group).values()) == 2
    collected = weakref.ref(router)
    del router
    wait_until(lambda: gc.collect() is not None and collected() is None, 5, "the router to be collected", interval=0.05)
    assert readings(otel.reader, DEPLOYMENTS, group) == {}
    assert readings(otel.reader, IN_FLIGHT, group) == {}
