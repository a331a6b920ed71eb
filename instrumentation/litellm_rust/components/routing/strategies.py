"""The strategy picks of litellm's Router, computed in Rust over the strategy handlers' own state.

Every pick of litellm 1.110's router reaches `litellm.router_rust.steps.selection.pick_async` /
`pick_sync` (from `RustCore._answer_select`, `_pick_with_prefetched_usage` and the realtime
admission), which call the strategy handler's `(async_)get_available_deployments`. Both are
replaced. For latency-based-routing, usage-based-routing (v1, whose O(n²) walk over its map is
litellm's), usage-based-routing-v2, cost-based-routing (async only, as in litellm) and least-busy,
the handler's state is read in place from the router's in-memory cache, with that cache's own
expiry, and the pick is computed in Rust; where litellm draws at random (latency, usage-v2), Rust
returns the set it draws from and Python's `random` draws. The handlers' side effects are kept:
latency and cost placeholders written into their maps, latency's `_latency_per_deployment` in the
request metadata, least-busy's pick reservations. usage-v2's counters and least-busy's in-flight
counts (`mirrors`) and latency-based-routing's maps (`latency`) are read from native mirrors of the
cache where they are exact, else in place; least-busy's reservations (a tuple per deployment in the
handler's own store) are read in place. Over the router's shared records (`records`), least-busy's
counter keys and usage-based (v1)'s ids and limits are read once per list of them (kept in the
component's `_native.PickContext`).

With Redis, the state is read as litellm's pick reads it: usage-based-routing v1's maps through the
router's DualCache, usage-v2's counters from the request's prefetched read (an async pick) or the
sync pick's own DualCache reads, least-busy's shared in-flight counts from Redis (the async pick's
read awaited before the synchronous Rust pick: `Site.prepare`), the latency and cost maps from
memory when memory holds them. An async usage-v2 pick with no prefetched read, or a latency/cost map
memory lacks, awaits a Redis read, and litellm's pick serves (`redis_cache`).

Served by litellm and counted by reason: another cache or a custom selector class
(`unsupported_cache`, `unserved_strategy`), simple-shuffle (litellm's own native core already;
`unserved_strategy`), state or deployments that are not plain numbers, dicts and lists
(`unsupported_state`, `unsupported_deployment`), and a usage-v2 pick with no deployment under its
limits (`no_deployment_available`: litellm raises its own error).

In shadow mode the Rust choices are computed first, on the state litellm's pick then reads, and
litellm's pick must be one of them (the whole draw set for the random strategies).
"""

import random
from collections.abc import Callable
from contextvars import ContextVar
from functools import partial
from typing import NamedTuple

from litellm_rust import _native
from litellm_rust._control import Control, Site, decline
from litellm_rust._litellm import ROUTING
from litellm_rust.components.routing import health, router_cache
from litellm_rust.components.routing.latency import COMPENSATED_SUM, LatencyMirrors
from litellm_rust.components.routing.mirrors import UsageMirrors
from litellm_rust.components.routing.records import SharedCandidates, shared_candidates

# `Pick.shared_in_flight` before any read was awaited.
_NOT_READ = object()

# In shadow mode, what the whole pick whose litellm select is running (`whole_picks`) runs at that
# select's strategy pick: it takes its own choices then, on the state litellm's pick reads.
AT_STRATEGY_PICK: ContextVar[Callable[[], None] | None] = ContextVar("litellm_rust_at_strategy_pick", default=None)


class Pick(NamedTuple):
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


def _map_keys(strategy: str, model: str) -> tuple[str, ...]:
    """The router-cache keys of the maps a strategy's pick reads in place (none for usage-v2's
    counters and least-busy's in-flight counts, which are numbers): usage-based-routing v1's this
    minute's, in local time, as its handler reads them."""
    if strategy == "latency-based-routing":
        return (f"{model}_map",)
    if strategy == "cost-based-routing":
        return (f"cost_map:{model}",)
    if strategy == "usage-based-routing":
        minute = ROUTING.live("usage_v1_datetime").now().strftime("%H-%M")
        return (f"{model}:tpm:{minute}", f"{model}:rpm:{minute}")
    return ()


class Reservations(NamedTuple):
    """least-busy's pick reservations of the candidates as a shadow pick read them, and when."""

    store: dict  # the handler's reservation store's dict
    ids: list
    keys: tuple
    values: tuple
    clock: Callable[[], float]
    read_at: float
    ttl: float

    def moved(self, picked: object) -> bool:
        """Whether one changed other than by litellm's own reservation of `picked`, or expired since."""
        now = self.clock()
        picked_id = str((picked.get("model_info") or {}).get("id")) if isinstance(picked, dict) else None
        for deployment_id, key, before in zip(self.ids, self.keys, self.values, strict=True):
            if any(self.read_at - made_at < self.ttl <= now - made_at for made_at, _ in before or ()):
                return True
            after = self.store.get(key)
            if after == before:
                continue
            live = tuple(pick for pick in before or () if now - pick[0] < self.ttl)
            if deployment_id != picked_id or not after or tuple(after[:-1]) != live:
                return True
        return False


class StateRead(NamedTuple):
    """What a strategy pick reads that another thread can change before litellm's own pick reads
    it (a sync call's callbacks in a worker thread, another thread's pick), kept before the shadow
    pick: the version tags of the router cache's dicts (every write through the cache moves them;
    litellm's own pick writes none) and least-busy's reservations. litellm's pick differing from the
    shadow's is a mismatch only if none of it moved in between."""

    dicts: tuple
    versions: tuple  # `None`s on a CPython without per-dict tags: every difference is a mismatch
    reservations: Reservations | None

    def moved(self, picked: object) -> bool:
        try:
            if any(_native.dict_version(d) != version for d, version in zip(self.dicts, self.versions, strict=True)):
                return True
            return self.reservations is not None and self.reservations.moved(picked)
        except Exception:
            return True  # a state that cannot be told apart


class Choices(NamedTuple):
    """The deployments a pick can return, for shadow comparison, and what the pick read."""

    deployments: list
    read: StateRead | None = None

    def matches(self, picked: object) -> bool:
        """litellm's pick (the very dict) is one of them, or both found none."""
        if picked is None:
            return not self.deployments
        return any(picked is choice for choice in self.deployments)


class StrategyPicks:
    """The routing component's sites of `pick_async` / `pick_sync`, and the Rust pick of each
    served strategy (also the whole picks' strategy step)."""

    def __init__(self, control: Control, usage_mirrors: UsageMirrors, latency_mirrors: LatencyMirrors) -> None:
        surface = ROUTING
        self._control = control
        self._usage_mirrors = usage_mirrors
        self._latency_mirrors = latency_mirrors
        self._litellm = surface.litellm
        self._dual_cache = surface.dual_cache
        self._in_memory_cache = surface.in_memory_cache
        self._least_busy_handler = surface.least_busy_handler
        self._token_count = surface.embedding_aware_token_count
        self._backend_models = surface.deployment_backend_models
        self._cost_map_rates = surface.deployment_cost_map_rates
        self._prefetched_usage = surface.prefetched_usage
        self._call_id_of = surface.call_id_of
        self._reservations_lock = surface.reservations_lock
        self._reservation_ttl = surface.reservation_ttl
        self._pick_owner = surface.pick_owner
        self._as_counts = surface.as_counts
        self._warn_unreadable = surface.warn_unreadable
        self._request_count_keys = surface.request_count_keys
        self._deployment_ids = surface.deployment_ids
        self._reservation_key = surface.reservation_key
        # The exact handler class -> the strategy name litellm picks it for, and the Rust pick.
        self._pickers = {
            surface.latency_handler: ("latency-based-routing", self._latency),
            surface.usage_handler: ("usage-based-routing-v2", self._usage),
            surface.usage_v1_handler: ("usage-based-routing", self._usage_v1),
            surface.cost_handler: ("cost-based-routing", self._cost),
            surface.least_busy_handler: ("least-busy", self._least_busy),
        }
        # What every pick shares, with the least-busy and usage-v2 counter keys built once per
        # deployment and what the least-busy and usage-based (v1) picks read of a list of shared
        # records, kept per list.
        self._pick_context = _native.PickContext(
            stats=control.stats,
            randrange=random.randrange,
            compensated_sum=COMPENSATED_SUM,
            reservation_ttl=self._reservation_ttl,
        )
        self._rates_memo: dict[tuple, tuple] = {}
        self._rates_memo_key: tuple = ()
        self.reference_async = surface.pick_async
        self.reference_sync = surface.pick_sync

    def sites(self):
        reference_async, reference_sync = self.reference_async, self.reference_sync

        async def litellm_pick_async(call: Pick):
            return await reference_async(*call.arguments())

        def litellm_pick_sync(call: Pick):
            return reference_sync(*call.arguments())

        for original, prepare, python in (
            (reference_async, self.prepare_async, litellm_pick_async),
            (reference_sync, self.prepare_sync, litellm_pick_sync),
        ):
            yield Site(
                original,
                self.pick,
                python=python,
                prepare=prepare,
                request_key=_request_key,
                describe=_describe,
                shadow=self.shadow_choices,
            )

    # -- one call ------------------------------------------------------------------------------

    def prepare_sync(self, strategy, selector, model, deployments, messages, input, request_kwargs, reserve=False):
        health.saw(selector)
        shared = shared_candidates(deployments)
        return Pick(strategy, selector, model, deployments, messages, input, request_kwargs, reserve, False, shared)

    def prepare_async(self, strategy, selector, model, deployments, messages, input, request_kwargs, reserve=False):
        """The call; a least-busy pick of a router with Redis first awaits its shared counts."""
        health.saw(selector)
        shared = shared_candidates(deployments)
        call = Pick(strategy, selector, model, deployments, messages, input, request_kwargs, reserve, True, shared)
        return self.awaited_reads(call) if self.awaits_reads(call) else call

    def pick(self, call: Pick):
        """litellm's pick with its side effects; over shared records, a dict of the caller's own."""
        shared = call.shared
        if shared is None:
            return self.choose(call, serve=True)
        return shared.fresh_pick(self.choose(call._replace(deployments=shared.records), serve=True))

    def shadow_choices(self, call: Pick) -> Choices:
        """The deployments litellm's pick can return, with no side effect, on the state as it is
        now, before litellm's pick changes it (a least-busy reservation, latency placeholders)."""
        at_strategy_pick = AT_STRATEGY_PICK.get()
        if at_strategy_pick is not None:
            at_strategy_pick()
        shared = call.shared
        if shared is None:
            return Choices(self.choose(call, serve=False), self.state_read(call))
        call = call._replace(deployments=shared.records)
        read = self.state_read(call)
        return Choices(shared.as_listed(self.choose(call, serve=False)), read)

    def choose(self, call: Pick, serve: bool):
        """`serve`: the served strategy's pick over `call.deployments`, with its side effects.
        Otherwise the deployments it can return, with no side effect."""
        selector = call.selector
        strategy, pick = self._pickers.get(type(selector), (None, None))
        if pick is None or strategy != call.strategy or (pick == self._cost and not call.is_async):
            decline("unserved_strategy")  # litellm's `match`: another pick, or none
        if type(call.deployments) is not list:
            decline("unsupported_deployment")
        cache = selector.router_cache
        if type(cache) is not self._dual_cache or type(cache.in_memory_cache) is not self._in_memory_cache:
            decline("unsupported_cache")
        router_cache.track(cache)
        return pick(call, serve)

    # -- strategies ----------------------------------------------------------------------------

    def _input_tokens(self, call: Pick):
        """The handlers' input-token count, taken only when a tpm limit needs it."""
        token_count, backend_models = self._token_count, self._backend_models

        def count() -> int:
            try:
                return token_count(call.messages, call.input, partial(backend_models, call.deployments))
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
            decline("redis_cache")
        if not state:
            return None
        if type(state) is not dict:
            decline("unsupported_state")
        return state

    def _latency(self, call: Pick, serve: bool):
        """`LowestLatencyLoggingHandler.(async_)get_available_deployments`."""
        selector = call.selector
        args = selector.routing_args
        request = call.request_kwargs
        metadata_field = selector._select_metadata_field(request) if serve and request is not None else None
        cache = selector.router_cache
        (key,) = _map_keys("latency-based-routing", call.model)
        state = self._map(cache, key)
        minute = ROUTING.live("latency_datetime").now().strftime("%Y-%m-%d-%H-%M")
        choices, per_deployment = self._latency_mirrors.latency_choices(
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
            count_input_tokens=self._input_tokens(call),
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

    def _cost(self, call: Pick, serve: bool):
        """`LowestCostLoggingHandler.async_get_available_deployments`."""
        picked = _native.cheapest(
            call.deployments,
            self._map(call.selector.router_cache, *_map_keys("cost-based-routing", call.model)),
            minute=ROUTING.live("cost_datetime").now().strftime("%Y-%m-%d-%H-%M"),
            rates=self._cost_rates,
            count_input_tokens=self._input_tokens(call),
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
            return self._cost_map_rates(deployment)
        try:
            return self._rates_memo[key]
        except KeyError:
            rates = self._rates_memo[key] = self._cost_map_rates(deployment)
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

    def _usage(self, call: Pick, serve: bool):
        """`LowestTPMLoggingHandler_v2.(async_)get_available_deployments`."""
        cache = call.selector.router_cache
        memory = cache.in_memory_cache
        # With Redis, counters come only from litellm's own reads through the DualCache.
        redis = cache.redis_cache is not None
        # Only the async pick reads the counters its cooldown read prefetched.
        prefetched = self._prefetched_usage.active() if call.is_async else None
        if prefetched is not None:
            covered, values = frozenset(prefetched.keys), prefetched.values
        elif redis and not call.is_async:
            covered, values = self._usage_through(call, cache)
        else:
            covered = values = None
        if values is not None and type(values) is not dict:
            decline("unsupported_state")
        minute = ROUTING.live("usage_utc_now")().strftime("%H-%M")
        count = self._input_tokens(call)
        choices = None
        if not redis:
            choices = self._usage_mirrors.least_used(
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
            decline("no_deployment_available")  # litellm raises its own error, with its details
        return random.choice(choices) if serve else choices

    @staticmethod
    def _usage_through(call: Pick, cache) -> tuple[frozenset, dict]:
        """The sync pick's two reads of a router with Redis (tpm counters, then rpm), made as
        `LowestTPMLoggingHandler_v2.get_available_deployments` makes them (memory, then Redis): the
        keys read and their values."""
        tpm_keys, rpm_keys = call.selector.usage_counter_keys(call.deployments)
        tpm, rpm = (cache.batch_get_cache(keys=keys) for keys in (tpm_keys, rpm_keys))
        if tpm is None or rpm is None:
            decline("usage_read_failed")  # litellm's pick then reads (and logs) on its own
        keys = tpm_keys + rpm_keys
        return frozenset(keys), dict(zip(keys, [*tpm, *rpm], strict=True))

    def _usage_v1(self, call: Pick, serve: bool):
        """`LowestTPMLoggingHandler.get_available_deployments` (litellm's async pick calls it too):
        this minute's maps read as the handler reads them, in local time."""
        cache = call.selector.router_cache
        tpm, rpm = (cache.get_cache(key=key) for key in _map_keys("usage-based-routing", call.model))
        if any(state is not None and type(state) is not dict for state in (tpm, rpm)):
            decline("unsupported_state")
        index = _native.lowest_tpm(
            call.deployments,
            tpm=tpm,
            rpm=rpm,
            count_input_tokens=self._input_tokens(call),
            commit=serve,
            context=self._pick_context,
            shared_records=call.shared is not None,
        )
        picked = None if index is None else call.deployments[index]
        if serve:
            return picked
        return [] if picked is None else [picked]

    def _least_busy(self, call: Pick, serve: bool):
        """`LeastBusyLoggingHandler.(async_)get_available_deployments`, reservation included."""
        selector = call.selector
        store = selector._reservations
        if type(store) is not self._in_memory_cache:
            decline("unsupported_cache")
        memory = selector.router_cache.in_memory_cache
        request = call.request_kwargs or {}
        call_id = self._call_id_of(request) if isinstance(request, dict) else None
        deployments = call.deployments
        shared = self._shared_in_flight(call) if selector.router_cache.redis_cache is not None else None
        mirror = self._usage_mirrors.mirror_of(call, memory)
        with self._reservations_lock:
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
                tag = call_id if call_id is not None else self._pick_owner.get()
                selector._store_reservations(
                    deployment_id, (*selector._live_reservations(deployment_id, now), (now, tag))
                )
                if tag is not None:
                    selector._record_pick(tag, deployment_id)
        return picked

    def state_read(self, call: Pick) -> StateRead | None:
        """What a shadow pick is about to read (`StateRead`), kept before it reads."""
        selector = call.selector
        if type(selector) not in self._pickers:
            return None  # the pick declines
        memory = selector.router_cache.in_memory_cache
        if type(memory) is not self._in_memory_cache:
            return None
        dicts = (memory.cache_dict, memory.ttl_dict, *self._maps(call, memory.cache_dict))
        versions = tuple(_native.dict_version(d) for d in dicts)
        reservations = self._reservations(call) if type(selector) is self._least_busy_handler else None
        return StateRead(dicts, versions, reservations)

    def _maps(self, call: Pick, entries: dict) -> list:
        """The cached maps the pick reads and their per-deployment dicts: a callback changes them
        in place before it writes the map back through the cache."""
        keys = _map_keys(self._pickers[type(call.selector)][0], call.model)
        maps = [value for key in keys if type(value := entries.get(key)) is dict]
        return maps + [inner for outer in maps for inner in outer.values() if type(inner) is dict]

    def _reservations(self, call: Pick) -> Reservations | None:
        selector = call.selector
        store = selector._reservations
        if type(store) is not self._in_memory_cache or type(call.deployments) is not list:
            return None  # the pick declines
        try:
            ids = list(self._deployment_ids(call.deployments))
        except Exception:
            return None  # deployments litellm's own pick judges
        reservations = store.cache_dict
        keys = tuple(self._reservation_key(deployment_id) for deployment_id in ids)
        values = tuple(reservations.get(key) for key in keys)
        return Reservations(reservations, ids, keys, values, selector._clock, selector._clock(), self._reservation_ttl)

    def _shared_in_flight(self, call: Pick) -> tuple[int, ...] | None:
        """The in-flight counts every worker shares through Redis, read as
        `LeastBusyLoggingHandler.(async_)get_available_deployments` reads them (the async read
        awaited before the pick, `awaited_reads`); `None` (logged as litellm logs it) when Redis
        cannot answer."""
        if call.is_async:
            if call.shared_in_flight is _NOT_READ:
                decline("redis_cache")
            return call.shared_in_flight
        keys = self._in_flight_keys(call)
        try:
            return self._as_counts(call.selector.router_cache.redis_cache.batch_get_counts(keys))
        except Exception as error:
            self._warn_unreadable(call.model, error)
            return None

    def _in_flight_keys(self, call: Pick) -> list[str]:
        return list(self._request_count_keys(call.model, self._deployment_ids(call.deployments)))

    def awaits_reads(self, call: Pick) -> bool:
        """Whether the Rust pick needs Redis reads it cannot await itself (`awaited_reads`): a
        least-busy pick of a router with Redis, when the pick may be Rust's (not in mode "python")."""
        if type(call.selector) is not self._least_busy_handler:
            return False
        cache = call.selector.router_cache
        return (
            type(cache) is self._dual_cache
            and cache.redis_cache is not None
            and self._control.settings.mode != "python"
        )

    async def awaited_reads(self, call: Pick) -> Pick:
        """`call` with a least-busy pick's shared in-flight counts, read as litellm's async pick
        reads them."""
        cache = call.selector.router_cache
        try:
            keys = self._in_flight_keys(call)
        except Exception:
            return call  # deployments litellm's own pick must judge
        try:
            counts = self._as_counts(await cache.redis_cache.async_batch_get_counts(keys))
        except Exception as error:
            self._warn_unreadable(call.model, error)
            counts = None
        return call._replace(shared_in_flight=counts)


def _request_key(call: Pick) -> str | None:
    request = call.request_kwargs
    call_id = request.get("litellm_call_id") if isinstance(request, dict) else None
    return call_id if isinstance(call_id, str) else None


def _describe(capture_content: bool, call: Pick) -> dict:
    deployments = call.deployments
    return {
        "strategy": str(call.strategy),
        "model": str(call.model),
        "deployments": len(deployments) if isinstance(deployments, list) else type(deployments).__name__,
        "async": call.is_async,
    }
