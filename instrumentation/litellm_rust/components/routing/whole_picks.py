"""Whole picks of litellm's Router (`Router.select(kind="pick")`, `Router.get_available_deployment`)
answered without litellm's selection machinery, where a pick can be shown to need nothing else.

litellm 1.110's `RustCore.select` builds a `_Selection` (request fields, the native `RouterCall`)
and answers its steps one by one: pre-routing, the cooldown read, callback filters, the strategy.
With many deployments that machinery costs more than the served strategy pick itself. Here the steps
are answered directly:

* Which deployments a pick may choose from is litellm's native core's own answer: for each set of
  live cooldown entries (ids and values, read from the cooldown store as `steps` reads
  them) the core's selection is driven once, with litellm's own `_Selection` building its request
  document, up to the strategy step, and its candidates are kept per router core, registry version
  and settings object. Any step beyond pre-routing, one cooldown read, callback filters and the
  strategy (pre-call checks, tags, budgets, health, plugins ...) declines the group (`core_steps`).
* The strategy pick is the routing component's Rust pick (`strategies`) over the shared records
  (`records`).
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
litellm's strategy pick reads (at that pick: `Site.shadow_first` false, `strategies.AT_STRATEGY_PICK`),
must hold litellm's pick, and the answer built for litellm's pick must equal litellm's answer.

`Router.acompletion` / `completion` / `embedding` pick inside their own native call loop
(`RouterCoreHandle.start`), not through `select`: their picks keep the step glue (`steps`).
"""

import weakref
from functools import partial
from typing import NamedTuple

from litellm_rust import _native
from litellm_rust._control import Control, Site, decline
from litellm_rust._litellm import ROUTING
from litellm_rust.components.routing import health
from litellm_rust.components.routing.records import SERVED_STRATEGIES, RecordsByCore, SharedCandidates
from litellm_rust.components.routing.strategies import AT_STRATEGY_PICK, Pick, StateRead, StrategyPicks

# Each set of live cooldowns costs one native dry run; a router cycling through more sets than
# this starts its memo afresh.
_PLANS_KEPT = 64
_ASYNC_KIND, _SYNC_KIND = "pick", "sync_pick"
_PRE_ROUTING_ANSWERS_NOTHING = None


class WholePick:
    """One whole pick: its request, litellm's own call for it, and in shadow mode the fast path's
    choices (or the exception taking them raised) once taken (`decided`, at litellm's strategy pick)."""

    __slots__ = ("core", "model", "request", "messages", "input", "specific_deployment", "kind", "litellm", "decided")

    def __init__(self, core, model, request, messages, input, specific_deployment, kind: str, litellm) -> None:
        self.core = core
        self.model = model
        self.request = request
        self.messages = messages
        self.input = input
        self.specific_deployment = specific_deployment
        self.kind = kind
        self.litellm = litellm
        self.decided = None


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
        version (compared in place: cheaper than building `of(core)` on every pick)."""
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
    read: StateRead | None  # what the strategy pick read

    def matches(self, litellm_answer: object) -> bool:
        if not isinstance(litellm_answer, dict):
            return False
        deployment_id = (litellm_answer.get("model_info") or {}).get("id")
        return deployment_id in self.ids and self.served(deployment_id) == litellm_answer


class WholePicks:
    """The routing component's sites of `RustCore.select` and `get_available_deployment`."""

    def __init__(self, control: Control, strategies: StrategyPicks, records: RecordsByCore) -> None:
        surface = ROUTING
        self._control = control
        self._strategies = strategies
        self._records = records
        self._as_str_mapping = surface.as_str_mapping
        self._cooldown_store_type = surface.cooldown_store
        self._normalize_strategy = surface.normalize_strategy
        self._selected_endpoint = surface.selected_endpoint
        self._pod_discovery_type = surface.pod_discovery
        self._selection = surface.selection
        self._plain = surface.plain
        self._request_carries_image = surface.request_carries_image
        self._unix_time = surface.unix_time
        self._typed_deployment = surface.typed_deployment
        self._for_requested_model = surface.for_requested_model
        self._with_live_params = surface.with_live_params
        self._v2_logger = _v2_logger_lookup()
        self._groups: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        methods = vars(surface.rust_core)
        self.reference_select = methods["select"]
        self.reference_sync = methods["get_available_deployment"]

    def sites(self):
        for original, serves, prepare, python in (
            (self.reference_select, self.serves_select, self.prepare_select, self._litellm_select),
            (self.reference_sync, self.serves_sync, self.prepare_sync, self._litellm_pick),
        ):
            yield Site(
                original,
                self.pick,
                python=python,
                serves=serves,
                prepare=prepare,
                describe=_describe,
                shadow=self.shadow_choices,
                shadow_first=False,
            )

    def serves_strategy(self, core, kind: str) -> bool:
        """The router's strategy is one the routing component serves for this kind of pick; other
        routers' picks are litellm's, uncounted, as their strategy steps are."""
        strategy = self._normalize_strategy(core._resolved.routing_strategy)
        return strategy in SERVED_STRATEGIES and not (strategy == "cost-based-routing" and kind == _SYNC_KIND)

    # -- one call ------------------------------------------------------------------------------

    def serves_select(self, core, model, request_kwargs=None, *, kind="pick", **_) -> bool:
        return kind == _ASYNC_KIND and self.serves_strategy(core, kind)

    def serves_sync(self, core, *_) -> bool:
        return self.serves_strategy(core, _SYNC_KIND)

    def prepare_select(
        self,
        core,
        model,
        request_kwargs=None,
        *,
        kind="pick",
        specific_deployment=None,
        messages=None,
        input=None,
        health_check_probe=False,
        **options,
    ) -> WholePick:
        core._refuse_deleted_reads({"num_retries": 0})  # before anything else, as litellm's select
        reference = self.reference_select
        return WholePick(
            core,
            model,
            request_kwargs,
            messages,
            input,
            specific_deployment,
            _ASYNC_KIND,
            lambda: reference(
                core,
                model,
                request_kwargs,
                kind=kind,
                specific_deployment=specific_deployment,
                messages=messages,
                input=input,
                health_check_probe=health_check_probe,
                **options,
            ),
        )

    def prepare_sync(self, core, model, messages=None, input=None, specific_deployment=False, request_kwargs=None):
        reference = self.reference_sync
        return WholePick(
            core,
            model,
            request_kwargs,
            messages,
            input,
            specific_deployment,
            _SYNC_KIND,
            lambda: reference(core, model, messages, input, specific_deployment, request_kwargs),
        )

    async def _litellm_select(self, call: WholePick):
        """litellm's select; in shadow mode the fast path's choices are taken at its strategy pick."""
        if not self._control.shadowing:
            return await call.litellm()
        token = AT_STRATEGY_PICK.set(partial(self._take_choices, call))
        try:
            return await call.litellm()
        finally:
            AT_STRATEGY_PICK.reset(token)

    def _litellm_pick(self, call: WholePick):
        """litellm's `get_available_deployment`, as `_litellm_select`."""
        if not self._control.shadowing:
            return call.litellm()
        token = AT_STRATEGY_PICK.set(partial(self._take_choices, call))
        try:
            return call.litellm()
        finally:
            AT_STRATEGY_PICK.reset(token)

    def _take_choices(self, call: WholePick) -> None:
        """The fast path's choices now (or the exception taking them raised), once per call."""
        if call.decided is None:
            try:
                call.decided = self.choices(call)
            except Exception as error:
                call.decided = error

    def shadow_choices(self, call: WholePick) -> "WholePickChoices":
        """The choices taken at litellm's strategy pick, or now if litellm never reached one."""
        self._take_choices(call)
        if isinstance(call.decided, Exception):
            raise call.decided
        return call.decided

    # -- eligibility -------------------------------------------------------------------------

    def _request_checks(self, call: "WholePick") -> None:
        """What one request brings that a plan does not cover."""
        core, model, messages, kind = call.core, call.model, call.messages, call.kind
        if call.request:
            decline("request_fields")
        if call.specific_deployment is True:
            decline("specific_deployment")
        if type(model) is not str:
            decline("model_resolution")
        if not _plain_text(messages) and self._request_carries_image(messages, {}):
            decline("image_request")
        if self._selected_endpoint() is not None:
            decline("endpoint_selection")
        if core._custom_strategy is not None or "_core_async_get_available_deployment" in core.__dict__:
            decline("custom_strategy")
        if core._hosted._core_routing_plugins:
            decline("routing_plugins")
        if core._opt.loggers():
            decline("pre_call_checks")  # `optional_pre_call_checks`, whichever stage runs them
        if type(core._pick_discovery(sync=kind == _SYNC_KIND)) is not self._pod_discovery_type:
            decline("pod_discovery")  # the router's own resolves only deployments that opt in
        if kind == _ASYNC_KIND:
            if core._opt.has_filters():
                decline("callback_filters")
            if core._prerouter._strategies.any_registered():
                decline("pre_routing_strategies")
            if self._v2_logger() is not None:
                decline("otel_phase_spans")  # `phase_span` / `phase_attributes` would record on it

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
            decline(group.declined)
        return group

    def _admit(self, core, model: str, kind: str, group: _Group) -> None:
        """The router-wide conditions of a plain pick, then the core's own steps for no cooldowns."""
        resolved = core._resolved
        strategy = self._normalize_strategy(resolved.routing_strategy)
        if resolved.model_group_alias:
            decline("model_group_alias")
        if resolved.default_deployment is not None:
            decline("default_deployment")
        if resolved.routing_groups or core._hosted._core_routing_groups:
            decline("routing_groups")
        if resolved.enable_pre_call_checks:
            decline("pre_call_checks")
        if resolved.health_routing.enable_health_check_routing:
            decline("health_check_routing")
        if core._routing_fields({}, None):
            decline("routing_fields")
        if not core._handle.has_model_name(model):
            decline("model_resolution")
        group.strategy = strategy
        group.plans[()] = self._dry_run(core, model, kind, group, [])
        if isinstance(group.plans[()], str):
            decline(group.plans[()])
        records = self._records.of(core).records(group.plans[()])
        for record in records:
            params = record.get("litellm_params") or {}
            if params.get("order") is not None:
                decline("deployment_order")
            if params.get("tags") or (record.get("model_info") or {}).get("tags"):
                decline("deployment_tags")
            if params.get("kubernetes_pod_discovery") is True:
                decline("pod_discovery")
        group.selector = core._selectors.selector_for(strategy, "default", None, {})
        if group.selector is None or core._selectors.is_override(strategy, group.selector):
            decline("unserved_strategy")

    def _dry_run(self, core, model: str, kind: str, group: _Group, cooldown_answer: list) -> list | str:
        """The candidates litellm's core hands its strategy step for these cooldown answers (a
        `_Selection` built as litellm builds it for an empty request, driven to its strategy step
        and dropped), or the reason it is not a plain pick."""
        call = self._selection(core, model, {}, kind, None, None, None)._call
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
            decline("unsupported_cache")
        if store.has_redis:
            decline("redis_cache")
        keys = group.cooldown_keys
        snapshot = store.snapshot()
        # No live cooldown entry: `cooling_keys` would find none (and costs a call).
        cooling = _native.cooling_keys(keys, snapshot) if keys and snapshot else None
        answer: list = []
        memo_key: tuple = ()
        if cooling:
            active = dict(store.active_sync([deployment_id for _, deployment_id in cooling]))
            answer = [None] * len(keys)
            for position, deployment_id in cooling:
                answer[position] = active.get(deployment_id)
            answer = self._plain(answer)
            memo_key = tuple((position, repr(value)) for position, value in enumerate(answer) if value is not None)
        plan = group.plans.get(memo_key)
        if plan is None:
            if len(group.plans) >= _PLANS_KEPT:
                group.plans = {(): group.plans[()]}
            plan = group.plans[memo_key] = self._dry_run(core, model, kind, group, answer)
        if isinstance(plan, str):
            decline(plan)
        if not plan:
            decline("no_deployment_available")
        return group, plan

    def _checked(self, call: WholePick) -> tuple[_Group, list]:
        self._request_checks(call)
        call.core._sync_routing_state()  # litellm's every pick does it first; it may swap the handle
        return self._candidates(call.core, call.model, call.kind)

    def _strategy_call(self, core, group: _Group, ids: list, messages, input, is_async: bool) -> Pick:
        source = self._records.of(core)
        last = group.last_records
        # Plans are this module's own lists, never mutated: the same plan has the same records.
        if last is not None and last[0] is source and last[1] is ids:
            records = last[2]
        else:
            records = source.records(ids)
            group.last_records = (source, ids, records)
        shared = SharedCandidates(records, records, ids, source)
        # An empty request reserves nothing (`pick_reserves(...) and bool(request)`).
        return Pick(
            group.strategy, group.selector, group.keyed_model, records, messages, input, {}, False, is_async, shared
        )

    def served(self, core, model: str, deployment_id: str, group: _Group | None = None) -> dict:
        """`_Selection._served` for the core's record of `deployment_id`. With the `group` the id was
        picked in (checked against the live settings, no await since), its record's `typed_deployment`
        and `for_requested_model` are run once: each comes back unchanged or is run again (most of the
        answer's cost is `for_requested_model`'s two mapping copies)."""
        record = self._as_str_mapping(core._handle.deployment(str(deployment_id))) or {}
        if group is not None and deployment_id in group.served_as_read:
            return self._with_live_params(core, record)
        answer = self._for_requested_model(self._typed_deployment(record), model)
        if group is not None and answer is record:
            group.served_as_read.add(deployment_id)
        return self._with_live_params(core, answer)

    def pick(self, call: WholePick) -> dict:
        """The fast pick with litellm's side effects, or `Unsupported` before any of them."""
        core, model = call.core, call.model
        group, ids = self._checked(call)
        is_async = call.kind == _ASYNC_KIND
        strategy_call = self._strategy_call(core, group, ids, call.messages, call.input, is_async)
        health.saw(strategy_call.selector)
        start_time = self._unix_time() if is_async else 0.0  # `_answer_select` times an async pick's strategy
        picked = self._strategies.choose(strategy_call, serve=True)
        if picked is None:
            decline("no_deployment_available")
        if is_async:
            core.service_logged("<routing_strategy>.async_get_available_deployments", start_time, self._unix_time(), {})
        return self.served(core, model, strategy_call.shared.source.id_of(picked), group)

    def choices(self, call: WholePick) -> WholePickChoices:
        """The ids the fast pick can return on the state as it is now, with no side effect."""
        core = call.core
        group, ids = self._checked(call)
        strategy_call = self._strategy_call(core, group, ids, call.messages, call.input, call.kind == _ASYNC_KIND)
        read = self._strategies.state_read(strategy_call)
        chosen = self._strategies.choose(strategy_call, serve=False)
        source = strategy_call.shared.source
        return WholePickChoices(
            frozenset(source.id_of(record) for record in chosen), partial(self.served, core, call.model), read
        )


def _describe(capture_content: bool, call: WholePick) -> dict:
    return {"entry": "select" if call.kind == _ASYNC_KIND else "get_available_deployment", "model": str(call.model)}


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
        return ROUTING.registered_v2_logger
    except Exception:
        return lambda: None
