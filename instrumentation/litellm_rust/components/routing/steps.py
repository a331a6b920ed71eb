"""The router-core steps around a served pick, answered without the Python glue that costs.

litellm 1.110's `RustCore` drives a native selection loop and answers its steps in Python. Around a
strategy pick, three answers cost more than the pick itself (profiled at 100 deployments):

* `RustCore._strategy_inputs` builds every candidate's dict on every pick (a
  `RouterCoreHandle.deployment(id)` call and a copy each). Here each router core's records are read
  once per registry (the handle and its `registry_version`, which every model-list change moves)
  and shared with the Rust pick, which only reads them. The deployment picked is handed back as a
  fresh dict built as `_strategy_inputs` builds it, and litellm's own pick (a fallback) gets fresh
  dicts for every candidate: no caller ever holds a shared record.
* The cooldown read (`RoutingStores.batch_get(_sync)`, whose `_cooldown_ids` runs a generator per
  key) is answered from the cooldown store's live entries (`snapshot`): the deployments it holds are
  read through the store's own `active_sync` (its expiry), every other key is no cooldown.
* `RustCore._usage_read_scope` reads the group's model list on every async pick and keeps it only
  for usage-based-routing-v2. With no request override and no routing groups the strategy is the
  router's own, and for latency, cost and least-busy the read is skipped.

Everything else stays litellm's: selector lookup, the encrypted-content pin, reservations, service
logging, override pre-call checks, the answer handed back to the core. The replacements are taken
in rust mode (full rollout, breaker closed) and in shadow mode, for steps of the served strategies;
a step they decline is answered by litellm and counted by reason (`duplicate_ids`: candidates that
share an id come as records; `encrypted_content_pin`; `redis_cache`; `unsupported_cache`;
`prefetched_cooldowns`). In shadow mode litellm answers every step as shipped: the Rust pick reads
the shared records of litellm's candidates, and the cooldown answer is compared with litellm's.
"""

import weakref
from contextlib import nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, NamedTuple

from litellm_rust import _native

if TYPE_CHECKING:
    from litellm_rust.components.routing import RoutingComponent

SERVED_STRATEGIES = frozenset(
    {"latency-based-routing", "usage-based-routing", "usage-based-routing-v2", "cost-based-routing", "least-busy"}
)
# The served strategies whose pick reads no usage counters alongside the cooldowns.
_WITHOUT_USAGE_READ = SERVED_STRATEGIES - {"usage-based-routing-v2"}
# `cooldown_answer`: the step is litellm's to answer.
LITELLM_ANSWERS = object()


class _Records:
    """One router core's deployment records at one registry version, each built once, as
    `RustCore._strategy_inputs` builds a candidate's dict."""

    __slots__ = ("handle", "version", "_as_str_mapping", "_by_id", "_id_of")

    def __init__(self, handle, version: int, as_str_mapping) -> None:
        self.handle = handle
        self.version = version
        self._as_str_mapping = as_str_mapping
        self._by_id: dict[str, dict] = {}
        self._id_of: dict[int, str] = {}  # id(record) -> its deployment id; records live as long as this

    def fresh(self, deployment_id: str) -> dict:
        """A new dict for one candidate, as `_strategy_inputs` builds it."""
        return dict(self._as_str_mapping(self.handle.deployment(deployment_id)) or {})

    def records(self, ids: list) -> list:
        by_id = self._by_id
        try:
            return [by_id[deployment_id] for deployment_id in ids]
        except (KeyError, TypeError):
            return [self._record(deployment_id) for deployment_id in ids]

    def _record(self, deployment_id: object) -> dict:
        key = str(deployment_id)  # `_strategy_inputs` reads `deployment(str(id))`
        record = self._by_id.get(key)
        if record is None:
            record = self._by_id[key] = self.fresh(key)
            self._id_of[id(record)] = key
        return record

    def id_of(self, record: dict) -> str:
        return self._id_of[id(record)]


class SharedCandidates(NamedTuple):
    """A strategy step's candidates as the pick receives them (`listed`), with the shared records of
    the same ids, which only the Rust pick reads."""

    listed: list
    records: list
    ids: list
    source: _Records

    def for_litellm(self) -> list:
        """litellm's own pick's candidates: never the shared records."""
        if self.listed is not self.records:
            return self.listed  # shadow mode: litellm's `_strategy_inputs` built them
        return [self.source.fresh(str(deployment_id)) for deployment_id in self.ids]

    def fresh_pick(self, record: dict | None) -> dict | None:
        """The Rust pick as litellm's pick returns it: a dict of the caller's own."""
        return None if record is None else self.source.fresh(self.source.id_of(record))

    def as_listed(self, records: list) -> list:
        """Rust's choices among the records, as the listed candidates at the same positions."""
        position = {id(record): index for index, record in enumerate(self.records)}
        return [self.listed[position[id(record)]] for record in records]


# The candidates `_strategy_inputs` last handed out with shared records, for the pick that follows
# it in the same `_answer_select` (`pick_async` / `pick_sync` take no router core).
_SHARED: ContextVar[SharedCandidates | None] = ContextVar("litellm_rust_shared_candidates", default=None)


def shared_candidates(deployments: object) -> SharedCandidates | None:
    """The shared records behind a pick's `deployments`, when `_strategy_inputs` built them."""
    shared = _SHARED.get()
    if shared is None or shared.listed is not deployments:
        return None
    _SHARED.set(None)
    return shared


def _decline(reason: str):
    raise _native.Unsupported(reason)


class RoutingSteps:
    """The routing component's replacements of `RustCore`'s step answers."""

    def __init__(self, component: "RoutingComponent") -> None:
        from litellm.caching.redis_batch import active_request_redis_batches
        from litellm.litellm_core_utils.core_helpers import as_str_mapping
        from litellm.redis.stores.router_cooldowns import RouterCooldownStore
        from litellm.router_rust import core
        from litellm.router_rust.steps.selection import normalize_strategy
        from litellm.router_utils import routing_prefetch

        self._control = component.control
        self._core_module = core
        self._as_str_mapping = as_str_mapping
        self._cooldown_store_type = RouterCooldownStore
        self._request_batches = active_request_redis_batches
        self._prefetched_cooldowns_slot = routing_prefetch._COOLDOWNS_SLOT
        self._normalize_strategy = normalize_strategy
        self._by_core: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        methods = vars(core.RustCore)
        self.reference = {
            name: methods[name]
            for name in ("_strategy_inputs", "_answer_cache", "_answer_cache_sync", "_usage_read_scope")
        }
        self._replacements = {
            self.reference["_strategy_inputs"]: _shared_strategy_inputs(self),
            self.reference["_answer_cache"]: _answer_cache_async(self),
            self.reference["_answer_cache_sync"]: _answer_cache_sync(self),
            self.reference["_usage_read_scope"]: _usage_read_scope(self),
        }

    def replacements(self) -> dict:
        return self._replacements

    def shadowing(self) -> bool:
        return self._control.settings.mode == "shadow"

    def taken(self) -> bool:
        """Whether a replacement answers its step (rust mode at full rollout with the breaker closed, or shadow)."""
        control = self._control
        return control.rust_fast or (control.settings.mode == "shadow" and control.breaker.route_to_rust())

    def _declined(self, error: Exception) -> None:
        self._control.rust_failed(error, python_serves=False)

    def _router_strategy(self, core) -> str | None:
        return self._normalize_strategy(core._resolved.routing_strategy)

    def records_of(self, core) -> _Records:
        """The core's records at its current registry; a new handle or version starts afresh."""
        handle = core._handle
        version = handle.registry_version()
        records = self._by_core.get(core)
        if records is None or records.handle is not handle or records.version != version:
            records = self._by_core[core] = _Records(handle, version, self._as_str_mapping)
        return records

    # -- the strategy stage ----------------------------------------------------------------------

    def strategy_inputs(self, core, step, request):
        """`_strategy_inputs`, with the shared records for a served strategy's pick."""
        reference = self.reference["_strategy_inputs"]
        if step.get("stage") != "strategy" or step.get("strategy") not in SERVED_STRATEGIES or not self.taken():
            return reference(core, step, request)
        ids = step.get("candidates")
        try:
            if step.get("records") is not None:
                _decline("duplicate_ids")
            if request.get("_encrypted_content_affinity_pinned"):
                _decline("encrypted_content_pin")  # the pin takes no strategy pick
            if type(ids) is not list:
                _decline("unsupported_deployment")
            source = self.records_of(core)
            records = source.records(ids)
        except Exception as error:
            self._declined(error)
            return reference(core, step, request)
        if self.shadowing():
            inputs = reference(core, step, request)
            listed = inputs[3]
        else:
            # litellm's own strategy, selector and keyed name, derived over no candidates.
            inputs = reference(core, {**step, "candidates": []}, request)
            listed = records
        _SHARED.set(SharedCandidates(listed, records, ids, source))
        return (*inputs[:3], listed)

    # -- the cooldown read -----------------------------------------------------------------------

    def cooldown_answer(self, core, step) -> object:
        """The answer to a batch read of cooldown keys, or `LITELLM_ANSWERS`."""
        if step.get("op") != "batch_get" or not self.taken() or self._router_strategy(core) not in SERVED_STRATEGIES:
            return LITELLM_ANSWERS
        keys = step.get("keys")
        if type(keys) is not list:
            return LITELLM_ANSWERS
        try:
            store = core._cooldowns.cooldown_store
            if type(store) is not self._cooldown_store_type:
                _decline("unsupported_cache")
            if store.has_redis:
                _decline("redis_cache")
            batches = self._request_batches()
            if batches is not None and self._prefetched_cooldowns_slot in batches.prefetched:
                _decline("prefetched_cooldowns")
            cooling = _native.cooling_keys(keys, store.snapshot())
            if cooling is None:
                return LITELLM_ANSWERS  # not a cooldown read
            answer = [None] * len(keys)
            if not cooling:
                return answer
            active = dict(store.active_sync([deployment_id for _, deployment_id in cooling]))
            for position, deployment_id in cooling:
                answer[position] = active.get(deployment_id)
            return self._core_module._plain(answer)  # the cooldown values as litellm hands them to the core
        except Exception as error:
            self._declined(error)
            return LITELLM_ANSWERS

    def settled(self, python: object, rust: object, step) -> object:
        """litellm's answer; in shadow mode Rust's, read first, is compared with it."""
        if self.shadowing():
            self._control.record_comparison(
                python,
                rust,
                python == rust,
                lambda capture_content: {"step": "cooldowns", "keys": len(step.get("keys") or ())},
            )
        return python

    def usage_read(self):
        """The usage-based-routing-v2 read an async pick makes alongside its cooldowns, if armed."""
        return self._core_module._USAGE_READ.get()

    # -- the usage read scope --------------------------------------------------------------------

    def skips_usage_read(self, core, request) -> bool:
        """Whether `_usage_read_scope` would read the model list only to drop it: the pick's strategy
        is the router's own (no override, no routing groups) and reads no usage counters."""
        return (
            self._control.rust_fast
            and not (request and request.get("routing_strategy") is not None)
            and not core._hosted._core_routing_groups
            and self._router_strategy(core) in _WITHOUT_USAGE_READ
        )


def _shared_strategy_inputs(steps: RoutingSteps):
    def _strategy_inputs(core, step, request):
        return steps.strategy_inputs(core, step, request)

    return _strategy_inputs


def _answer_cache_async(steps: RoutingSteps):
    reference = steps.reference["_answer_cache"]

    async def _answer_cache(core, step):
        rust = steps.cooldown_answer(core, step)
        if rust is LITELLM_ANSWERS:
            return await reference(core, step)
        if steps.shadowing():
            return steps.settled(await reference(core, step), rust, step)
        usage_read = steps.usage_read()
        if usage_read is not None:
            # `_stored_with_usage`: a usage-v2 pick's counters are read with its cooldowns.
            batch, deployments = usage_read
            await batch.read_usage(deployments, None)
        return rust

    return _answer_cache


def _answer_cache_sync(steps: RoutingSteps):
    reference = steps.reference["_answer_cache_sync"]

    def _answer_cache_sync(core, step):
        rust = steps.cooldown_answer(core, step)
        if rust is LITELLM_ANSWERS:
            return reference(core, step)
        if steps.shadowing():
            return steps.settled(reference(core, step), rust, step)
        return rust

    return _answer_cache_sync


def _usage_read_scope(steps: RoutingSteps):
    reference = steps.reference["_usage_read_scope"]

    def _usage_read_scope(core, model, request):
        return nullcontext() if steps.skips_usage_read(core, request) else reference(core, model, request)

    return _usage_read_scope
