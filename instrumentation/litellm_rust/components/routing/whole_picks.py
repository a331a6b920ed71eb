"""Whole picks of litellm's Router (`Router.select(kind="pick")`, `Router.get_available_deployment`)
answered without litellm's selection machinery, where a pick can be shown to need nothing else.

litellm 1.110's `RustCore.select` builds a `_Selection` (request fields, the native `RouterCall`)
and answers its steps one by one: pre-routing, the cooldown read, callback filters, the strategy.
At 100 deployments that machinery costs more than the served strategy pick itself. Here the steps
are answered directly:

* Which deployments a pick may choose from is litellm's native core's own answer: for each set of
  live cooldown entries (ids and values, read from the cooldown store as `routing_steps` reads
  them) the core's selection is driven once, with litellm's own `_Selection` building its request
  document, up to the strategy step, and its candidates are kept per router core, registry version
  and settings object. Any step beyond pre-routing, one cooldown read, callback filters and the
  strategy (pre-call checks, tags, budgets, health, plugins ...) declines the group (`core_steps`).
* The strategy pick is the routing component's Rust pick over `routing_steps`' shared records.
* The answer is built as `_Selection._served` builds it, from the core's record of the picked id.
* Side effects are litellm's: `_sync_routing_state` before every pick, the strategy's own (latency
  placeholders, `_latency_per_deployment`), and the async pick's `ServiceTypes.ROUTER` event.
  Pre-routing runs only its no-op path for an eligible request (no metadata to stamp or clear, no
  pre-routing strategy registered, no OTel v2 phase spans), so it is not run.

Routers whose strategy the routing component does not serve (simple-shuffle, usage-based-routing v1,
a sync cost-based pick) pick with litellm's original, uncounted. Declined, counted by reason, and
served by litellm's original: a request with any field
(`request_fields`), `specific_deployment` (`specific_deployment`), a model that is not a string or
not a model group of its own (`model_resolution`: aliases, wildcards, ids), an image in the
messages (`image_request`), an endpoint selection (`endpoint_selection`), a selector that is not the
router's own (`unserved_strategy`), aliases (`model_group_alias`), a default deployment
(`default_deployment`), routing groups (`routing_groups`), pre-call checks, optional ones included (`pre_call_checks`),
health-check routing (`health_check_routing`), routing fields such as tag filtering or retry
policies (`routing_fields`), deployments with `order` or `tags` (`deployment_order`,
`deployment_tags`), a custom or assigned strategy (`custom_strategy`), routing plugins
(`routing_plugins`), pre-routing strategies (`pre_routing_strategies`), callback filters
(`callback_filters`), pod discovery (`pod_discovery`), OTel v2 phase spans (`otel_phase_spans`),
Redis (`redis_cache`), duplicate ids (`duplicate_ids`) and a pick with nothing to choose from
(`no_deployment_available`: litellm raises its own error).

In shadow mode litellm's full original select serves; the fast path's choices, taken on the state
litellm's strategy pick reads (at that pick), must hold litellm's pick, and the answer built for
litellm's pick must equal litellm's answer.

`Router.acompletion` / `completion` / `embedding` pick inside their own native call loop
(`RouterCoreHandle.start`), not through `select`: their picks keep `routing_steps`' glue.
"""

import weakref
from contextvars import ContextVar
from functools import partial
from typing import NamedTuple

from litellm_rust import _native, routing_health
from litellm_rust.components.routing import RoutingComponent, _Pick, _reraise
from litellm_rust.components.routing_steps import SERVED_STRATEGIES, SharedCandidates

# Each set of live cooldowns costs one native dry run; a router cycling through more sets than
# this starts its memo afresh.
_PLANS_KEPT = 64
_ASYNC_KIND, _SYNC_KIND = "pick", "sync_pick"
_PRE_ROUTING_ANSWERS_NOTHING = None
# `FastPicks.direct`'s answer when Rust declined and litellm's original must serve the pick.
_LITELLM_SERVES = object()
# In shadow mode, the fast choices of the whole pick litellm is running, taken at its strategy pick:
# litellm's select awaits between its cooldown read and its pick, and the state can move meanwhile
# (usage-v2's batched counter writes), so choices taken before the select are not what it read.
_SHADOWED_PICK: ContextVar["_ShadowedPick | None"] = ContextVar("litellm_rust_shadowed_pick", default=None)


def _decline(reason: str):
    raise _native.Unsupported(reason)


class _Settings(NamedTuple):
    """What a group's plans were derived under; any of it replaced starts the group afresh."""

    handle: object
    version: int
    resolved: object
    allowed_fails_default_sent: object
    index_sent: object

    @classmethod
    def of(cls, core) -> "_Settings":
        handle = core._handle
        return cls(
            handle, handle.registry_version(), core._resolved, core._allowed_fails_default_sent, core._index_sent
        )

    def hold(self, core) -> bool:
        """The core's handle, settings and index objects are still these, at the same registry
        version (compared in place: building `of(core)` on every pick cost ~3 µs)."""
        handle = core._handle
        return (
            handle is self.handle
            and handle.registry_version() == self.version
            and core._resolved is self.resolved
            and core._allowed_fails_default_sent is self.allowed_fails_default_sent
            and core._index_sent is self.index_sent
        )


class _Group:
    """One model group's picks for one kind (async `pick`, `sync_pick`) under one `_Settings`."""

    __slots__ = (
        "settings",
        "declined",
        "strategy",
        "selector",
        "keyed_model",
        "cooldown_keys",
        "plans",
        "last_records",
        "served_as_read",
    )

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        self.declined: str | None = None
        self.strategy = self.selector = self.keyed_model = None
        self.cooldown_keys: list | None = None
        # Live cooldowns ((id, value repr), ...) -> the candidate ids, or the reason the core's
        # steps for them are not served.
        self.plans: dict[tuple, list | str] = {}
        # (records source, plan, its records): the last plan's records, reused while neither moves.
        self.last_records: tuple | None = None
        # The ids whose core record `typed_deployment` and `for_requested_model` give back unchanged
        # for this group's model: both read only the record, which the settings' registry version fixes.
        self.served_as_read: set = set()


class WholePickChoices(NamedTuple):
    """The fast path's answer for shadow comparison: the ids it can pick, and how it builds the
    answer for an id."""

    ids: frozenset
    served: object  # id -> the dict the fast path returns for it

    def matches(self, litellm_answer: object) -> bool:
        if not isinstance(litellm_answer, dict):
            return False
        deployment_id = (litellm_answer.get("model_info") or {}).get("id")
        return deployment_id in self.ids and self.served(deployment_id) == litellm_answer


class FastPicks:
    """The routing component's replacements of `RustCore.select` and `get_available_deployment`."""

    def __init__(self, component: RoutingComponent) -> None:
        import litellm.router_rust.core as core_module
        from litellm.litellm_core_utils.core_helpers import as_str_mapping
        from litellm.redis.stores.router_cooldowns import RouterCooldownStore
        from litellm.router_rust.steps.selection import normalize_strategy
        from litellm.router_utils.endpoint_eligibility import selected_endpoint
        from litellm.router_utils.kubernetes_pod_discovery import KubernetesPodDiscovery

        self._component = component
        self._control = component.control
        self._steps = component.steps
        self._core = core_module
        self._v2_logger = _v2_logger_lookup()
        self._as_str_mapping = as_str_mapping
        self._cooldown_store_type = RouterCooldownStore
        self._normalize_strategy = normalize_strategy
        self._selected_endpoint = selected_endpoint
        self._pod_discovery_type = KubernetesPodDiscovery
        self._groups: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        methods = vars(core_module.RustCore)
        self.reference_select = methods["select"]
        self.reference_sync = methods["get_available_deployment"]
        self._replacements = {
            self.reference_select: _fast_select(self),
            self.reference_sync: _fast_get_available_deployment(self),
        }

    def replacements(self) -> dict:
        return self._replacements

    def shadowing(self) -> bool:
        return self._control.settings.mode == "shadow"

    def serves_strategy(self, core, kind: str) -> bool:
        """The router's strategy is one the routing component serves for this kind of pick; other
        routers' picks are litellm's, uncounted, as their strategy steps are."""
        strategy = self._normalize_strategy(core._resolved.routing_strategy)
        return strategy in SERVED_STRATEGIES and not (strategy == "cost-based-routing" and kind == _SYNC_KIND)

    # -- eligibility -------------------------------------------------------------------------

    def _request_checks(self, core, model, request, messages, specific_deployment, kind: str) -> None:
        """What one request brings that a plan does not cover."""
        if request:
            _decline("request_fields")
        if specific_deployment is True:
            _decline("specific_deployment")
        if type(model) is not str:
            _decline("model_resolution")
        if not _plain_text(messages) and self._core.request_carries_image(messages, {}):
            _decline("image_request")
        if self._selected_endpoint() is not None:
            _decline("endpoint_selection")
        if core._custom_strategy is not None or "_core_async_get_available_deployment" in core.__dict__:
            _decline("custom_strategy")
        if core._hosted._core_routing_plugins:
            _decline("routing_plugins")
        if core._opt.loggers():
            _decline("pre_call_checks")  # `optional_pre_call_checks`, whichever stage runs them
        if type(core._pick_discovery(sync=kind == _SYNC_KIND)) is not self._pod_discovery_type:
            _decline("pod_discovery")  # the router's own resolves only deployments that opt in
        if kind == _ASYNC_KIND:
            if core._opt.has_filters():
                _decline("callback_filters")
            if core._prerouter._strategies.any_registered():
                _decline("pre_routing_strategies")
            if self._v2_logger() is not None:
                _decline("otel_phase_spans")  # `phase_span` / `phase_attributes` would record on it

    def _group(self, core, model: str, kind: str) -> _Group:
        by_model = self._groups.get(core)
        if by_model is None:
            by_model = self._groups[core] = {}
        group = by_model.get((model, kind))
        if group is None or not group.settings.hold(core):
            if group is None and len(by_model) >= _PLANS_KEPT:
                by_model.clear()
            group = by_model[(model, kind)] = _Group(_Settings.of(core))
            try:
                self._admit(core, model, kind, group)
            except _native.Unsupported as declined:
                group.declined = declined.args[0]
        if group.declined is not None:
            _decline(group.declined)
        return group

    def _admit(self, core, model: str, kind: str, group: _Group) -> None:
        """The router-wide conditions of a plain pick, then the core's own steps for no cooldowns."""
        resolved = core._resolved
        strategy = self._normalize_strategy(resolved.routing_strategy)
        if resolved.model_group_alias:
            _decline("model_group_alias")
        if resolved.default_deployment is not None:
            _decline("default_deployment")
        if resolved.routing_groups or core._hosted._core_routing_groups:
            _decline("routing_groups")
        if resolved.enable_pre_call_checks:
            _decline("pre_call_checks")
        if resolved.health_routing.enable_health_check_routing:
            _decline("health_check_routing")
        if core._routing_fields({}, None):
            _decline("routing_fields")
        if not core._handle.has_model_name(model):
            _decline("model_resolution")
        group.strategy = strategy
        group.plans[()] = self._dry_run(core, model, kind, group, [])
        if isinstance(group.plans[()], str):
            _decline(group.plans[()])
        records = self._steps.records_of(core).records(group.plans[()])
        for record in records:
            params = record.get("litellm_params") or {}
            if params.get("order") is not None:
                _decline("deployment_order")
            if params.get("tags") or (record.get("model_info") or {}).get("tags"):
                _decline("deployment_tags")
            if params.get("kubernetes_pod_discovery") is True:
                _decline("pod_discovery")
        group.selector = core._selectors.selector_for(strategy, "default", None, {})
        if group.selector is None or core._selectors.is_override(strategy, group.selector):
            _decline("unserved_strategy")

    def _dry_run(self, core, model: str, kind: str, group: _Group, cooldown_answer: list) -> list | str:
        """The candidates litellm's core hands its strategy step for these cooldown answers (a
        `_Selection` built as litellm builds it for an empty request, driven to its strategy step
        and dropped), or the reason it is not a plain pick."""
        call = self._core._Selection(core, model, {}, kind, None, None, None)._call
        outcome = None
        while True:
            step = call.next(outcome)
            stage = step.get("stage")
            if step["kind"] == "pre_route" and kind == _ASYNC_KIND:
                outcome = _PRE_ROUTING_ANSWERS_NOTHING
            elif step["kind"] == "cache" and step.get("op") == "batch_get" and type(step.get("keys")) is list:
                keys = step["keys"]
                if group.cooldown_keys is None:
                    group.cooldown_keys = keys
                elif keys != group.cooldown_keys:
                    return "core_steps"
                outcome = cooldown_answer or [None] * len(keys)
            elif step["kind"] == "select" and stage == "callback_filters":
                ids = [str(deployment_id) for deployment_id in step.get("candidates") or ()]
                # `_answer_callback_filters` without filters / `_answer_select_sync`'s pass-through.
                outcome = (list(dict.fromkeys(ids)), None) if kind == _ASYNC_KIND else step["candidates"]
            elif step["kind"] == "select" and stage == "strategy":
                if step.get("records") is not None:
                    return "duplicate_ids"
                if (
                    step.get("strategy") != group.strategy
                    or step.get("scope") != "default"
                    or step.get("group") is not None
                ):
                    return "core_steps"
                group.keyed_model = str(step.get("model"))
                return list(step.get("candidates") or ())
            elif step["kind"] == "failed":
                return "no_deployment_available"  # litellm raises its own error
            else:
                return "core_steps"

    # -- the pick ----------------------------------------------------------------------------

    def _candidates(self, core, model: str, kind: str) -> tuple[_Group, list]:
        """The group and the ids its strategy picks among, given the live cooldowns."""
        group = self._group(core, model, kind)
        store = core._cooldowns.cooldown_store
        if type(store) is not self._cooldown_store_type:
            _decline("unsupported_cache")
        if store.has_redis:
            _decline("redis_cache")
        keys = group.cooldown_keys
        snapshot = store.snapshot()
        # No live cooldown entry: `cooling_keys` would find none (measured ~1 µs at 100 keys).
        cooling = _native.cooling_keys(keys, snapshot) if keys and snapshot else None
        answer: list = []
        memo_key: tuple = ()
        if cooling:
            active = dict(store.active_sync([deployment_id for _, deployment_id in cooling]))
            answer = [None] * len(keys)
            for position, deployment_id in cooling:
                answer[position] = active.get(deployment_id)
            answer = self._core._plain(answer)
            memo_key = tuple((position, repr(value)) for position, value in enumerate(answer) if value is not None)
        plan = group.plans.get(memo_key)
        if plan is None:
            if len(group.plans) >= _PLANS_KEPT:
                group.plans = {(): group.plans[()]}
            plan = group.plans[memo_key] = self._dry_run(core, model, kind, group, answer)
        if isinstance(plan, str):
            _decline(plan)
        if not plan:
            _decline("no_deployment_available")
        return group, plan

    def _checked(self, core, model, request, messages, specific_deployment, kind: str) -> tuple[_Group, list]:
        self._request_checks(core, model, request, messages, specific_deployment, kind)
        core._sync_routing_state()  # litellm's every pick does it first; it may swap the handle
        return self._candidates(core, model, kind)

    def _strategy_call(self, core, group: _Group, ids: list, messages, input, is_async: bool) -> _Pick:
        source = self._steps.records_of(core)
        last = group.last_records
        # Plans are this module's own lists, never mutated: the same plan has the same records.
        if last is not None and last[0] is source and last[1] is ids:
            records = last[2]
        else:
            records = source.records(ids)
            group.last_records = (source, ids, records)
        shared = SharedCandidates(records, records, ids, source)
        # An empty request reserves nothing (`pick_reserves(...) and bool(request)`).
        return _Pick(
            group.strategy, group.selector, group.keyed_model, records, messages, input, {}, False, is_async, shared
        )

    def served(self, core, model: str, deployment_id: str, group: _Group | None = None) -> dict:
        """`_Selection._served` for the core's record of `deployment_id`. With the `group` the id was
        picked in (checked against the live settings, no await since), its record's `typed_deployment`
        and `for_requested_model` are run once: each comes back unchanged or is run again (measured
        ~5 µs of a pick at 100 deployments, most of it `for_requested_model`'s two mapping copies)."""
        core_module = self._core
        record = self._as_str_mapping(core._handle.deployment(str(deployment_id))) or {}
        if group is not None and deployment_id in group.served_as_read:
            return core_module._with_live_params(core, record)
        answer = core_module.for_requested_model(core_module.typed_deployment(record), model)
        if group is not None and answer is record:
            group.served_as_read.add(deployment_id)
        return core_module._with_live_params(core, answer)

    def pick(self, core, model, request, messages, input, specific_deployment, kind: str) -> dict:
        """The fast pick with litellm's side effects, or `Unsupported` before any of them."""
        group, ids = self._checked(core, model, request, messages, specific_deployment, kind)
        call = self._strategy_call(core, group, ids, messages, input, kind == _ASYNC_KIND)
        routing_health.saw(call.selector)
        timed = kind == _ASYNC_KIND  # `_answer_select` times the strategies with an async pick
        start_time = self._core.unix_time() if timed else 0.0
        picked = self._component._choose(call, serve=True)
        if picked is None:
            _decline("no_deployment_available")
        if timed:
            core.service_logged(
                "<routing_strategy>.async_get_available_deployments", start_time, self._core.unix_time(), {}
            )
        return self.served(core, model, call.shared.source.id_of(picked), group)

    def choices(self, core, model, request, messages, input, specific_deployment, kind: str) -> WholePickChoices:
        """The ids the fast pick can return on the state as it is now, with no side effect."""
        group, ids = self._checked(core, model, request, messages, specific_deployment, kind)
        call = self._strategy_call(core, group, ids, messages, input, kind == _ASYNC_KIND)
        chosen = self._component._choose(call, serve=False)
        source = call.shared.source
        return WholePickChoices(frozenset(source.id_of(record) for record in chosen), partial(self.served, core, model))

    def decided(self, *arguments):
        """`choices` as a thunk for `Control.serve`."""
        try:
            choices = self.choices(*arguments)
        except Exception as error:
            return partial(_reraise, error)
        return lambda: choices

    def shadowed(self, arguments: tuple) -> "_ShadowedPick":
        """Marks litellm's select as shadowed until its strategy pick (`at_strategy_pick`)."""
        return _ShadowedPick(self, arguments)

    def at_strategy_pick(self) -> None:
        """litellm's strategy pick is about to run: a shadowed whole pick takes its choices now."""
        shadowed = _SHADOWED_PICK.get()
        if shadowed is not None and shadowed.decided is None:
            shadowed.decided = self.decided(*shadowed.arguments)

    def direct(self, arguments: tuple):
        """`pick` without `Control.serve(_async)` when the control plane lets a replacement call Rust
        itself (mode rust, full rollout, breaker closed, not a timing sample; `_control`'s module
        docstring): the answer, or `_LITELLM_SERVES` once Rust declined (counted by `rust_failed`).
        None: the call goes through `Control.serve(_async)`. Measured at 100 deployments: ~3 µs of
        an async pick (`serve_async`'s coroutine and routing), ~2 µs of a sync one."""
        control = self._control
        if not (control.rust_fast and next(control.ticks) % control.timing_every):
            return None
        try:
            return self.pick(*arguments)
        except Exception as failure:
            control.rust_failed(failure)
            return _LITELLM_SERVES

    def timed(self) -> bool | None:
        """`Control.serve(_async)`'s `timed` after `direct` passed: under `rust_fast` the tick
        `direct` drew was a timing sample, which a second draw would miss."""
        return True if self._control.rust_fast else None

    def describe(self, model, kind: str) -> dict:
        return {"entry": "select" if kind == _ASYNC_KIND else "get_available_deployment", "model": str(model)}


class _ShadowedPick:
    """One shadowed whole pick: its arguments, and its choices once taken."""

    def __init__(self, fast: FastPicks, arguments: tuple) -> None:
        self.fast = fast
        self.arguments = arguments
        self.decided = None

    def __enter__(self) -> "_ShadowedPick":
        self._token = _SHADOWED_PICK.set(self)
        return self

    def __exit__(self, *exc_info) -> None:
        _SHADOWED_PICK.reset(self._token)

    def choices(self):
        """The choices taken at litellm's strategy pick, or now if litellm never reached one."""
        return self.decided if self.decided is not None else self.fast.decided(*self.arguments)


def _plain_text(messages: object) -> bool:
    """Messages that cannot carry an image: none, or dicts whose content is text
    (`request_contains_image_content` looks only into list contents and tool outputs)."""
    if messages is None:
        return True
    if type(messages) is not list:
        return False
    return all(
        type(message) is dict and type(message.get("content")) is str and "output" not in message
        for message in messages
    )


def _v2_logger_lookup():
    """`litellm.integrations.otel.logger._registered_v2_logger`, which `phase_span` asks; without
    the OTel SDK `_otel_runtime` has no hooks and nothing records."""
    try:
        from litellm.integrations.otel import logger
    except Exception:
        return lambda: None
    return logger._registered_v2_logger


def _fast_select(fast: FastPicks):
    reference = fast.reference_select
    control = fast._control

    async def select(
        self,
        model,
        request_kwargs=None,
        *,
        kind="pick",
        specific_deployment=None,
        messages=None,
        input=None,
        health_check_probe=False,
        **options,
    ):
        def litellm_select():
            return reference(
                self,
                model,
                request_kwargs,
                kind=kind,
                specific_deployment=specific_deployment,
                messages=messages,
                input=input,
                health_check_probe=health_check_probe,
                **options,
            )

        if kind != _ASYNC_KIND or not fast.serves_strategy(self, kind):
            return await litellm_select()
        self._refuse_deleted_reads({"num_retries": 0})  # before anything else, as litellm's select
        arguments = (self, model, request_kwargs, messages, input, specific_deployment, _ASYNC_KIND)
        picked = fast.direct(arguments)
        if picked is not None:
            return await litellm_select() if picked is _LITELLM_SERVES else picked
        describe = lambda capture_content: fast.describe(model, _ASYNC_KIND)  # noqa: E731
        if fast.shadowing():
            # litellm's select runs inside, so its strategy pick marks when the choices are taken.
            with fast.shadowed(arguments) as shadowed:
                return await control.serve_async(lambda: shadowed.choices()(), litellm_select, describe=describe)
        return await control.serve_async(
            lambda: fast.pick(*arguments), litellm_select, describe=describe, timed=fast.timed()
        )

    select.__doc__ = reference.__doc__
    select.__wrapped__ = reference
    return select


def _fast_get_available_deployment(fast: FastPicks):
    reference = fast.reference_sync
    control = fast._control

    def get_available_deployment(
        self, model, messages=None, input=None, specific_deployment=False, request_kwargs=None
    ):
        def litellm_pick():
            return reference(self, model, messages, input, specific_deployment, request_kwargs)

        if not fast.serves_strategy(self, _SYNC_KIND):
            return litellm_pick()

        arguments = (self, model, request_kwargs, messages, input, specific_deployment, _SYNC_KIND)
        picked = fast.direct(arguments)
        if picked is not None:
            return litellm_pick() if picked is _LITELLM_SERVES else picked
        describe = lambda capture_content: fast.describe(model, _SYNC_KIND)  # noqa: E731
        if fast.shadowing():
            with fast.shadowed(arguments) as shadowed:
                return control.serve(lambda: shadowed.choices()(), litellm_pick, describe=describe)
        return control.serve(lambda: fast.pick(*arguments), litellm_pick, describe=describe, timed=fast.timed())

    get_available_deployment.__doc__ = reference.__doc__
    get_available_deployment.__wrapped__ = reference
    return get_available_deployment
