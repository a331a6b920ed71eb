"""Routing: the stateful strategies' picks of litellm's Router served by Rust.

Every pick of litellm 1.110's router reaches `litellm.router_rust.steps.selection.pick_async` /
`pick_sync` (from `RustCore._answer_select`, `_pick_with_prefetched_usage` and the realtime
admission), which call the strategy handler's `(async_)get_available_deployments`. Both are
replaced. For latency-based-routing, usage-based-routing (v1, whose O(n²) walk over its map is
litellm's), usage-based-routing-v2, cost-based-routing (async only, as in litellm) and least-busy, the
handler's state is read in place from the router's in-memory cache,
with that cache's own expiry, and the pick is computed in Rust; where litellm draws at random
(latency, usage-v2), Rust returns the set it draws from and Python's `random` draws. The handlers'
side effects are kept: latency and cost placeholders written into their maps, latency's
`_latency_per_deployment` in the request metadata, least-busy's pick reservations. usage-v2's
counters and least-busy's in-flight counts (`routing_state`) and latency-based-routing's maps
(`routing_latency`) are read from native mirrors of the cache where they are exact, else in place;
least-busy's reservations (a tuple per deployment in the handler's own store) are read in place. Over the router's shared records
(`routing_steps`), least-busy's counter keys and usage-based (v1)'s ids and limits are read once per
list of them (kept in the component's `_native.PickContext`; measured at 100 deployments, the native
least-busy pick went from ~22 µs to ~5 µs and the usage-based one to about a quarter of its time, ~43 µs
before).

With Redis, the state is read as litellm's pick reads it: usage-based-routing v1's maps through the
router's DualCache, usage-v2's counters from the request's prefetched read (an async pick) or the
sync pick's own DualCache reads, least-busy's shared in-flight counts from Redis (the async pick's
read awaited before the synchronous Rust pick), the latency and cost maps from memory when memory
holds them. An async usage-v2 pick with no prefetched read, or a latency/cost map memory lacks,
awaits a Redis read, and litellm's pick serves (`redis_cache`).

Served by litellm and counted by reason: another cache or a custom selector class (`unsupported_cache`, `unserved_strategy`), simple-shuffle (litellm's own
native core already; `unserved_strategy`), state or deployments that are not plain numbers, dicts and
lists (`unsupported_state`, `unsupported_deployment`), and a usage-v2 pick with no deployment
under its limits (`no_deployment_available`: litellm raises its own error).

In shadow mode the Rust choice is computed first, on the state litellm's pick then reads, and
litellm's pick must be one of the Rust choices (the whole draw set for the random strategies).
"""

import random
import sys
from functools import partial
from typing import NamedTuple

from litellm_rust import _native, routing_health
from litellm_rust._component import Component
from litellm_rust.components.routing_cache import RouterCacheAccess
from litellm_rust.components.routing_latency import LatencyMirrors
from litellm_rust.components.routing_state import UsageMirrors
from litellm_rust.components.routing_steps import RoutingSteps, SharedCandidates, shared_candidates
from litellm_rust.components.routing_usage import GroupUsageCounters, TrackedDeployments

# Python 3.12 made `sum()` of floats compensated, which moves latency means in the last bits.
_COMPENSATED_SUM = sys.version_info >= (3, 12)


# `_Pick.shared_in_flight` before any read was awaited.
_NOT_READ = object()


class _Pick(NamedTuple):
    """One `pick_async` / `pick_sync` call's arguments."""

    strategy: object
    selector: object
    model: str
    deployments: object
    messages: object
    input: object
    request_kwargs: dict | None
    reserve: bool
    is_async: bool
    # The router's shared records behind `deployments`, which the Rust pick reads instead.
    shared: SharedCandidates | None = None
    # An async least-busy pick's shared in-flight counts from Redis, awaited before the synchronous
    # Rust pick (`awaited_reads`; `None`: Redis could not answer).
    shared_in_flight: "tuple[int, ...] | None | object" = _NOT_READ

    def arguments(self) -> tuple:
        """litellm's pick's arguments, with candidate dicts of its own."""
        if self.shared is None:
            return self[:8]
        return (*self[:3], self.shared.for_litellm(), *self[4:8])


def _decline(reason: str):
    raise _native.Unsupported(reason)


class RoutingComponent(Component):
    name = "routing"

    def __init__(self) -> None:
        super().__init__()
        import litellm
        from litellm.caching.dual_cache import DualCache
        from litellm.caching.in_memory_cache import InMemoryCache
        from litellm.litellm_core_utils import deployment_pricing
        from litellm.router_rust.steps import selection
        from litellm.router_strategy import least_busy, lowest_cost, lowest_latency, lowest_tpm_rpm, lowest_tpm_rpm_v2

        self._litellm = litellm
        self._dual_cache = DualCache
        self._in_memory_cache = InMemoryCache
        self._pricing = deployment_pricing
        self._least_busy_module = least_busy
        self._latency_module = lowest_latency
        self._cost_module = lowest_cost
        self._usage_module = lowest_tpm_rpm_v2
        self._usage_v1_module = lowest_tpm_rpm
        self._least_busy_handler = least_busy.LeastBusyLoggingHandler
        # The exact handler class -> the strategy name litellm picks it for, and the Rust pick.
        self._pickers = {
            lowest_latency.LowestLatencyLoggingHandler: ("latency-based-routing", self._latency),
            lowest_tpm_rpm_v2.LowestTPMLoggingHandler_v2: ("usage-based-routing-v2", self._usage),
            lowest_tpm_rpm.LowestTPMLoggingHandler: ("usage-based-routing", self._usage_v1),
            lowest_cost.LowestCostLoggingHandler: ("cost-based-routing", self._cost),
            least_busy.LeastBusyLoggingHandler: ("least-busy", self._least_busy),
        }
        # What every pick shares, with the least-busy and usage-v2 counter keys built once per
        # deployment and what the least-busy and usage-based (v1) picks read of a list of shared
        # records, kept per list.
        self._pick_context = _native.PickContext(
            stats=self.stats,
            randrange=random.randrange,
            compensated_sum=_COMPENSATED_SUM,
            reservation_ttl=least_busy.SELECTION_RESERVATION_TTL_SECONDS,
        )
        self._rates_memo: dict[tuple, tuple] = {}
        self._rates_memo_key: tuple = ()
        self.reference_async = selection.pick_async
        self.reference_sync = selection.pick_sync
        self.steps = RoutingSteps(self)
        self.cache_access = RouterCacheAccess(self)
        self.usage_mirrors = UsageMirrors()
        self.usage_counters = GroupUsageCounters(self)
        self.tracked_deployments = TrackedDeployments(self)
        self.latency_mirrors = LatencyMirrors(_COMPENSATED_SUM)
        from litellm_rust.components.routing_fast import FastPicks  # it builds on this module

        self.fast_picks = FastPicks(self)
        self._replacements = {
            self.reference_async: _accelerated_pick_async(self),
            self.reference_sync: _accelerated_pick_sync(self),
            **self.steps.replacements(),
            **self.cache_access.replacements(),
            **self.usage_mirrors.replacements(),
            **self.usage_counters.replacements(),
            **self.tracked_deployments.replacements(),
            **self.fast_picks.replacements(),
        }

    def sites(self):
        return ()

    def replacements(self):
        return self._replacements

    def status(self) -> dict:
        return {
            **super().status(),
            "usage_mirror": self.usage_mirrors.status(),
            "latency_mirror": self.latency_mirrors.status(),
            "usage_counters": self.usage_counters.status(),
            "deployment_tracks_usage": self.tracked_deployments.status(),
        }

    def compare(self, python_result: object, rust_choices: object) -> bool:
        """litellm's pick (the very dict) is one of the Rust choices, or both found none; for a
        whole pick (`routing_fast`), litellm's answer is one the fast path builds for its choices."""
        if hasattr(rust_choices, "matches"):
            return rust_choices.matches(python_result)
        if python_result is None:
            return not rust_choices
        return any(python_result is choice for choice in rust_choices)

    # -- serving -------------------------------------------------------------------------------

    def shadowing(self) -> bool:
        return self.control.settings.mode == "shadow"

    def decided(self, call: _Pick):
        """The Rust choices on the state as it is now, before litellm's pick changes it (a
        least-busy reservation, latency placeholders), as a thunk for `Control.serve`."""
        self.fast_picks.at_strategy_pick()
        try:
            choices = self.choices(call, serve=False)
        except Exception as error:
            return partial(_reraise, error)
        return lambda: choices

    def serve(self, call: _Pick, run_python, decided=None) -> object:
        """A sync pick routed by the control plane (`decided`: the shadowed Rust choices)."""
        run_rust, routing = self._serving(call, decided)
        return self.control.serve(run_rust, run_python, **routing)

    async def serve_async(self, call: _Pick, run_python, decided=None) -> object:
        """An async pick routed by the control plane; `run_python()` is litellm's coroutine."""
        run_rust, routing = self._serving(call, decided)
        return await self.control.serve_async(run_rust, run_python, **routing)

    def _serving(self, call: _Pick, decided) -> tuple:
        """The Rust side of `Control.serve(_async)` for a pick, and how the call is routed and
        described."""
        routing_health.saw(call.selector)
        request = call.request_kwargs
        request_key = request.get("litellm_call_id") if isinstance(request, dict) else None
        run_rust = decided if decided is not None else (lambda: self.choices(call, serve=True))
        return run_rust, {
            "request_key": request_key if isinstance(request_key, str) else None,
            "describe": lambda capture_content: self.describe(call),
        }

    @staticmethod
    def describe(call: _Pick) -> dict:
        deployments = call.deployments
        return {
            "strategy": str(call.strategy),
            "model": str(call.model),
            "deployments": len(deployments) if isinstance(deployments, list) else type(deployments).__name__,
            "async": call.is_async,
        }

    def choices(self, call: _Pick, serve: bool):
        """`serve`: litellm's pick with its side effects. Otherwise the deployments litellm's pick
        can return, with no side effect (for shadow comparison). Over shared records, the pick is
        made on them and given back as the caller's own dicts."""
        shared = call.shared
        if shared is None:
            return self._choose(call, serve)
        chosen = self._choose(call._replace(deployments=shared.records), serve)
        return shared.fresh_pick(chosen) if serve else shared.as_listed(chosen)

    def _choose(self, call: _Pick, serve: bool):
        selector = call.selector
        strategy, pick = self._pickers.get(type(selector), (None, None))
        if pick is None or strategy != call.strategy or (pick == self._cost and not call.is_async):
            _decline("unserved_strategy")  # litellm's `match`: another pick, or none
        if type(call.deployments) is not list:
            _decline("unsupported_deployment")
        cache = selector.router_cache
        if type(cache) is not self._dual_cache or type(cache.in_memory_cache) is not self._in_memory_cache:
            _decline("unsupported_cache")
        self.cache_access.track(cache)
        return pick(call, serve)

    # -- strategies ----------------------------------------------------------------------------

    @staticmethod
    def _input_tokens(module, call: _Pick):
        """The handlers' input-token count, taken only when a tpm limit needs it."""

        def count() -> int:
            try:
                return module.embedding_aware_token_count(
                    call.messages, call.input, partial(module.deployment_backend_models, call.deployments)
                )
            except Exception:
                return 0

        return count

    @staticmethod
    def _map(cache, key: str) -> dict | None:
        """A handler's `get_cache(key) or {}` through the router's DualCache: the cached dict when it
        is a non-empty one (a fresh `{}` keeps nothing). A map the memory tier lacks is read from
        Redis, if the router has it: litellm's own read does that (`redis_cache`)."""
        state = cache.in_memory_cache.get_cache(key)
        if state is None and cache.redis_cache is not None:
            _decline("redis_cache")
        if not state:
            return None
        if type(state) is not dict:
            _decline("unsupported_state")
        return state

    def _latency(self, call: _Pick, serve: bool):
        """`LowestLatencyLoggingHandler.(async_)get_available_deployments`."""
        module = self._latency_module
        selector = call.selector
        args = selector.routing_args
        request = call.request_kwargs
        metadata_field = selector._select_metadata_field(request) if serve and request is not None else None
        cache = selector.router_cache
        state = self._map(cache, f"{call.model}_map")
        minute = module.datetime.now().strftime("%Y-%m-%d-%H-%M")
        choices, per_deployment = self.latency_mirrors.latency_choices(
            call,
            cache.in_memory_cache,
            state,
            request=_native.LatencyRequest(
                minute=minute,
                stream=request is not None and request.get("stream") is True,
                ttft_percentile=args.ttft_percentile,
                buffer=args.lowest_latency_buffer,
                commit=serve,
                debug=metadata_field is not None and metadata_field in request,
            ),
            count_input_tokens=self._input_tokens(module, call),
            context=self._pick_context,
        )
        if not serve:
            return choices
        if not choices:
            return None
        picked = random.choice(choices)
        if per_deployment is not None:
            request[metadata_field]["_latency_per_deployment"] = per_deployment
        return picked

    def _cost(self, call: _Pick, serve: bool):
        """`LowestCostLoggingHandler.async_get_available_deployments`."""
        module = self._cost_module
        picked = _native.cheapest(
            call.deployments,
            self._map(call.selector.router_cache, f"cost_map:{call.model}"),
            minute=module.datetime.now().strftime("%Y-%m-%d-%H-%M"),
            rates=self._cost_rates,
            count_input_tokens=self._input_tokens(module, call),
            commit=serve,
            context=self._pick_context,
        )
        if serve:
            return picked
        return [] if picked is None else [picked]

    def _cost_rates(self, deployment: dict) -> tuple:
        """`_deployment_cost_map_rates`, remembered per pricing model pair until
        `litellm.model_cost` is replaced or grows."""
        model_cost = self._litellm.model_cost
        generation = (id(model_cost), len(model_cost))
        if generation != self._rates_memo_key:
            self._rates_memo = {}
            self._rates_memo_key = generation
        key = self._pricing_key(deployment)
        if key is None:
            return self._cost_module._deployment_cost_map_rates(deployment)
        try:
            return self._rates_memo[key]
        except KeyError:
            rates = self._rates_memo[key] = self._cost_module._deployment_cost_map_rates(deployment)
            return rates

    @staticmethod
    def _pricing_key(deployment: dict) -> tuple | None:
        """What `deployment_pricing_models` reads, when every part of it is a plain string or unset."""
        params = deployment.get("litellm_params", {})
        info = deployment.get("model_info", {})
        if type(params) is not dict or type(info) is not dict:
            return None
        key = (info.get("base_model") or params.get("base_model"), params.get("model"))
        return key if all(part is None or type(part) is str for part in key) else None

    def _usage(self, call: _Pick, serve: bool):
        """`LowestTPMLoggingHandler_v2.(async_)get_available_deployments`."""
        module = self._usage_module
        cache = call.selector.router_cache
        memory = cache.in_memory_cache
        # With Redis, counters come only from litellm's own reads through the DualCache.
        redis = cache.redis_cache is not None
        # Only the async pick reads the counters its cooldown read prefetched.
        prefetched = module.PrefetchedUsage.active() if call.is_async else None
        if prefetched is not None:
            covered, values = frozenset(prefetched.keys), prefetched.values
        elif redis and not call.is_async:
            covered, values = self._usage_through(call, cache)
        else:
            covered = values = None
        if values is not None and type(values) is not dict:
            _decline("unsupported_state")
        minute = module.get_utc_datetime().strftime("%H-%M")
        count = self._input_tokens(module, call)
        choices = None
        if not redis:
            choices = self.usage_mirrors.least_used(
                call, memory, minute, covered is not None, count, self._pick_context
            )
        if choices is None:
            choices = _native.least_used(
                call.deployments,
                minute=minute,
                cache=None if redis else memory,
                prefetched_keys=covered,
                prefetched_values=values,
                count_input_tokens=count,
                context=self._pick_context,
            )
        if not choices:
            _decline("no_deployment_available")  # litellm raises its own error, with its details
        return random.choice(choices) if serve else choices

    @staticmethod
    def _usage_through(call: _Pick, cache) -> tuple[frozenset, dict]:
        """The sync pick's two reads of a router with Redis (tpm counters, then rpm), made as
        `LowestTPMLoggingHandler_v2.get_available_deployments` makes them (memory, then Redis): the
        keys read and their values."""
        tpm_keys, rpm_keys = call.selector.usage_counter_keys(call.deployments)
        tpm, rpm = (cache.batch_get_cache(keys=keys) for keys in (tpm_keys, rpm_keys))
        if tpm is None or rpm is None:
            _decline("usage_read_failed")  # litellm's pick then reads (and logs) on its own
        keys = tpm_keys + rpm_keys
        return frozenset(keys), dict(zip(keys, [*tpm, *rpm], strict=True))

    def _usage_v1(self, call: _Pick, serve: bool):
        """`LowestTPMLoggingHandler.get_available_deployments` (litellm's async pick calls it too):
        this minute's maps read as the handler reads them, in local time."""
        module = self._usage_v1_module
        minute = module.datetime.now().strftime("%H-%M")
        cache = call.selector.router_cache
        tpm, rpm = (cache.get_cache(key=f"{call.model}:{kind}:{minute}") for kind in ("tpm", "rpm"))
        if any(state is not None and type(state) is not dict for state in (tpm, rpm)):
            _decline("unsupported_state")
        index = _native.lowest_tpm(
            call.deployments,
            tpm=tpm,
            rpm=rpm,
            count_input_tokens=self._input_tokens(module, call),
            commit=serve,
            context=self._pick_context,
            shared_records=call.shared is not None,
        )
        picked = None if index is None else call.deployments[index]
        if serve:
            return picked
        return [] if picked is None else [picked]

    def _least_busy(self, call: _Pick, serve: bool):
        """`LeastBusyLoggingHandler.(async_)get_available_deployments`, reservation included."""
        module = self._least_busy_module
        selector = call.selector
        store = selector._reservations
        if type(store) is not self._in_memory_cache:
            _decline("unsupported_cache")
        memory = selector.router_cache.in_memory_cache
        request = call.request_kwargs or {}
        call_id = module.call_id_of(request) if isinstance(request, dict) else None
        deployments = call.deployments
        shared = self._shared_in_flight(call) if selector.router_cache.redis_cache is not None else None
        mirror = self.usage_mirrors.mirror_of(call, memory)
        with module._RESERVATIONS_LOCK:
            now = selector._clock()
            index = _native.least_busy(
                deployments,
                request=_native.LeastBusyRequest(
                    group=call.model, counts=memory, reservations=store, now=now, shared_in_flight=shared
                ),
                context=self._pick_context,
                shared_records=call.shared is not None,
                mirror=mirror,
            )
            if index is None:
                return None if serve else []
            picked = deployments[index]
            if not serve:
                return [picked]
            if call.reserve:
                deployment_id = str(picked["model_info"]["id"])
                tag = call_id if call_id is not None else module._PICK_OWNER.get()
                selector._store_reservations(
                    deployment_id, (*selector._live_reservations(deployment_id, now), (now, tag))
                )
                if tag is not None:
                    selector._record_pick(tag, deployment_id)
        return picked

    def _shared_in_flight(self, call: _Pick) -> tuple[int, ...] | None:
        """The in-flight counts every worker shares through Redis, read as
        `LeastBusyLoggingHandler.(async_)get_available_deployments` reads them (the async read
        awaited before the pick, `awaited_reads`); `None` (logged as litellm logs it) when Redis
        cannot answer."""
        if call.is_async:
            if call.shared_in_flight is _NOT_READ:
                _decline("redis_cache")
            return call.shared_in_flight
        keys = self._in_flight_keys(call)
        try:
            return self._least_busy_module._as_counts(call.selector.router_cache.redis_cache.batch_get_counts(keys))
        except Exception as error:
            self._least_busy_module._warn_unreadable(call.model, error)
            return None

    def _in_flight_keys(self, call: _Pick) -> list[str]:
        module = self._least_busy_module
        return list(module._request_count_keys(call.model, module._deployment_ids(call.deployments)))

    def awaits_reads(self, call: _Pick) -> bool:
        """Whether the Rust pick needs Redis reads it cannot await itself (`awaited_reads`): a
        least-busy pick of a router with Redis, when the pick may be Rust's (not in mode "python")."""
        if type(call.selector) is not self._least_busy_handler:
            return False
        cache = call.selector.router_cache
        return (
            type(cache) is self._dual_cache and cache.redis_cache is not None and self.control.settings.mode != "python"
        )

    async def awaited_reads(self, call: _Pick) -> _Pick:
        """`call` with a least-busy pick's shared in-flight counts, read as litellm's async pick
        reads them."""
        module = self._least_busy_module
        cache = call.selector.router_cache
        try:
            keys = self._in_flight_keys(call)
        except Exception:
            return call  # deployments litellm's own pick must judge
        try:
            counts = module._as_counts(await cache.redis_cache.async_batch_get_counts(keys))
        except Exception as error:
            module._warn_unreadable(call.model, error)
            counts = None
        return call._replace(shared_in_flight=counts)


def _reraise(error: BaseException):
    raise error


def _accelerated_pick_sync(component: RoutingComponent):
    reference = component.reference_sync

    def pick_sync(strategy, selector, model, deployments, messages, input, request_kwargs, reserve=False):
        call = _Pick(
            strategy,
            selector,
            model,
            deployments,
            messages,
            input,
            request_kwargs,
            reserve,
            False,
            shared_candidates(deployments),
        )
        decided = component.decided(call) if component.shadowing() else None
        return component.serve(call, lambda: reference(*call.arguments()), decided)

    pick_sync.__doc__ = reference.__doc__
    pick_sync.__wrapped__ = reference
    return pick_sync


def _accelerated_pick_async(component: RoutingComponent):
    reference = component.reference_async

    async def pick_async(strategy, selector, model, deployments, messages, input, request_kwargs, reserve=False):
        call = _Pick(
            strategy,
            selector,
            model,
            deployments,
            messages,
            input,
            request_kwargs,
            reserve,
            True,
            shared_candidates(deployments),
        )
        if component.awaits_reads(call):
            call = await component.awaited_reads(call)
        decided = component.decided(call) if component.shadowing() else None
        return await component.serve_async(call, lambda: reference(*call.arguments()), decided)

    pick_async.__doc__ = reference.__doc__
    pick_async.__wrapped__ = reference
    return pick_async
