"""Per-deployment health of the litellm routers whose picks reached the routing component.

The routing component calls `saw(selector)` on every pick (in every mode); this module remembers
the strategy handlers weakly, by identity (litellm dedupes handlers by their attributes, so equality
would merge two routers'). At collection time it walks litellm's own set of live router cores
(`litellm.router_utils.global_callback_holders.live_check_owners`), keeps those whose public
`Router` is still alive (the `_core_owner` weak reference litellm's `_router_alive` reads) and that
own a handler seen here, and reads their state where litellm keeps it:

- cooldowns through the router's `CooldownCache.get_active_cooldowns`, as litellm's
  `router_utils.cooldown_handlers.get_cooldown_deployments` does (with Redis, that read is Redis);
- in-flight requests as least-busy's pick counts them (`LeastBusyLoggingHandler._select`): this
  worker's `{group}_request_count:{id}` counters in the in-memory cache plus the live reservations
  of picks whose request has not started yet;
- latency from the latency handler's `{group}_map` lists in the in-memory cache: the p50, by
  litellm's own percentile rule, of the samples the strategy uses (`latency_normalized`: seconds
  per completion token when usage is known, 1000 for a timeout, 0 for a placeholder).

Nothing here keeps a router alive, and nothing is recorded per call: `instruments()` are the
routing component's observable gauges, which call `deployment_counts`, `in_flight` and
`latency_p50` when a reader collects. Cardinality is bounded by `deployment_series_cap`: a router
with more deployments than that is reported per model group, without deployment ids.
"""

import logging
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import NamedTuple

from litellm_rust._litellm import ROUTING
from litellm_rust.telemetry import Observable

_logger = logging.getLogger("litellm_rust")

MODEL_GROUP = "litellm_rust.model_group"
DEPLOYMENT_ID = "litellm_rust.deployment.id"
DEPLOYMENT_STATE = "litellm_rust.deployment.state"
HEALTHY = "healthy"
COOLDOWN = "cooldown"

# id(handler) -> weak reference to it; an entry leaves when its handler is collected.
_seen: dict[int, weakref.ref] = {}


def saw(selector: object) -> None:
    """Remember a strategy handler a pick went through (called on the pick path: one dict lookup)."""
    key = id(selector)
    if key not in _seen:
        _seen[key] = weakref.ref(selector, lambda _, key=key: _seen.pop(key, None))


def _was_seen(selector: object) -> bool:
    reference = _seen.get(id(selector))
    return reference is not None and reference() is selector


class _Router(NamedTuple):
    """One live router's view for a collection: the deployments as (model group, id), the
    handlers of its strategies, and the routing cache they share."""

    router: object
    deployments: list[tuple[str, str]]
    selectors: tuple
    cache: object

    def per_deployment(self, cap: int) -> bool:
        return len(self.deployments) <= cap


def _routers() -> Iterator[_Router]:
    if not _seen:
        return
    for core in tuple(ROUTING.live_check_owners):
        owner = vars(core).get("_core_owner")
        router = owner() if callable(owner) else None
        if router is None:
            continue  # the Router was dropped; its core only waits for the collector
        strategies = core._selectors
        selectors = (*strategies.callback_selectors(), *strategies.override_selectors())
        if not any(_was_seen(selector) for selector in selectors):
            continue
        deployments = [(str(d["model_name"]), str(d["model_info"]["id"])) for d in router.registry().all()]
        yield _Router(router, deployments, selectors, strategies._cache)


def _each_router(read) -> None:
    """`read(router)` for every live router seen; one that fails (a router reconfigured while it
    is read, on another thread) is left out of this collection rather than failing all of it."""
    for router in _routers():
        try:
            read(router)
        except Exception:
            _logger.debug("litellm_rust: routing health of a router skipped this collection", exc_info=True)


def _attributes(group: str, deployment_id: str | None, **more: str) -> tuple:
    attributes = {MODEL_GROUP: group, **more}
    if deployment_id is not None:
        attributes[DEPLOYMENT_ID] = deployment_id
    return tuple(sorted(attributes.items()))


def deployment_counts(cap: int) -> dict[tuple, int]:
    """Deployments by model group and state (healthy or cooldown), per deployment under the cap.
    Keys are sorted attribute tuples; routers with the same attributes add up."""
    counts: dict[tuple, int] = defaultdict(int)

    def read(view: _Router) -> None:
        ids = [deployment_id for _, deployment_id in view.deployments]
        cooling = {deployment_id for deployment_id, _ in view.router.health().cooldowns.get_active_cooldowns(ids, None)}
        per_deployment = view.per_deployment(cap)
        for group, deployment_id in view.deployments:
            state = COOLDOWN if deployment_id in cooling else HEALTHY
            counts[_attributes(group, deployment_id if per_deployment else None, **{DEPLOYMENT_STATE: state})] += 1

    _each_router(read)
    return counts


def in_flight(cap: int) -> dict[tuple, int]:
    """Requests in flight per deployment (per model group over the cap), for routers with a
    least-busy handler, counted as its pick counts them: this worker's started requests plus the
    picks reserved for requests that have not started yet."""
    least_busy_handler = ROUTING.least_busy_handler
    counts: dict[tuple, int] = defaultdict(int)

    def read(view: _Router) -> None:
        least_busy = next((s for s in view.selectors if isinstance(s, least_busy_handler)), None)
        if least_busy is None:
            return
        keys = [f"{group}_request_count:{deployment_id}" for group, deployment_id in view.deployments]
        started = view.cache.batch_get_cache(keys, local_only=True) or [None] * len(keys)
        now = least_busy._clock()
        per_deployment = view.per_deployment(cap)
        for (group, deployment_id), value in zip(view.deployments, started, strict=True):
            count = int(value) if isinstance(value, (int, float)) and value > 0 else 0
            count += len(least_busy._live_reservations(deployment_id, now))
            counts[_attributes(group, deployment_id if per_deployment else None)] += count

    _each_router(read)
    return counts


def latency_p50(cap: int) -> dict[tuple, float]:
    """The p50 of the latency samples the latency strategy keeps, per deployment with samples (per
    model group, samples pooled, over the cap), for routers with a latency handler."""
    latency_handler, usable_samples = ROUTING.latency_handler, ROUTING.usable_latency_samples
    samples: dict[tuple, list[float]] = defaultdict(list)

    def read(view: _Router) -> None:
        if not any(isinstance(selector, latency_handler) for selector in view.selectors):
            return
        memory = view.cache.in_memory_cache
        per_deployment = view.per_deployment(cap)
        maps: dict[str, dict] = {}
        for group, deployment_id in view.deployments:
            if group not in maps:
                state = memory.get_cache(f"{group}_map")
                maps[group] = dict(state) if isinstance(state, dict) else {}
            entry = maps[group].get(deployment_id)
            kept = entry.get("latency_normalized") if isinstance(entry, dict) else None
            usable = usable_samples(kept) if isinstance(kept, list) else ()
            if usable:
                samples[_attributes(group, deployment_id if per_deployment else None)].extend(usable)

    _each_router(read)
    percentile = ROUTING.percentile_latency
    return {attributes: percentile(values, 0.5) for attributes, values in samples.items()}


def instruments(series_cap: Callable[[], int]) -> list[Observable]:
    """The routing health gauges, reading `series_cap()` (the deployment series cap) at each collection."""

    def observe(read: Callable[[int], dict[tuple, float]]) -> Callable[[], Iterator[tuple[float, dict]]]:
        return lambda: ((value, dict(attributes)) for attributes, value in read(series_cap()).items())

    return [
        Observable(
            "litellm_rust.routing.deployments",
            "gauge",
            "{deployment}",
            "Router deployments by model group and state (healthy, cooldown); per deployment "
            "when the router has at most deployment_series_cap deployments.",
            observe(deployment_counts),
        ),
        Observable(
            "litellm_rust.routing.deployment.in_flight",
            "gauge",
            "{request}",
            "Requests in flight per deployment (per model group above the cap), as least-busy "
            "routing counts them in this worker.",
            observe(in_flight),
        ),
        Observable(
            "litellm_rust.routing.deployment.latency",
            "gauge",
            "s",
            "p50 of the latency samples latency-based routing keeps per deployment (per model "
            "group above the cap): seconds per completion token when usage is known.",
            observe(latency_p50),
        ),
    ]
