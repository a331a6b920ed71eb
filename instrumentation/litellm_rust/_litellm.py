"""litellm's surface as the components use it: every litellm module, function, class, private
attribute and cache layout a component relies on, named in this one module.

litellm's internals move between releases. Named here, they are resolved in one place, checked by
one test (`tests/test_litellm_surface.py`) on the installed litellm, and a component whose names
are missing can be told apart from one whose names resolve. Components get litellm objects from a
`Surface` (resolved on first use: importing litellm is slow, and `import litellm_rust` must not do
it), never by importing litellm themselves.
"""

import importlib
from collections.abc import Iterable, Mapping

# The litellm releases each component's exactness was verified on: its exactness tests pass there
# (`make test-compat` runs them on each release of the table in docs/known-limits.md, which
# tests/test_compat.py holds this to). On any other release the component stays on litellm's Python.
# FULLY_VERIFIED: the releases every component was verified on, oldest first.
FULLY_VERIFIED = ("1.110.0", "1.110.1", "1.110.2")
VERIFIED_ON = {
    "token_counter": ("1.109.3", *FULLY_VERIFIED),
    "rate_limits": ("1.109.3", *FULLY_VERIFIED),
    "proxy_limits": FULLY_VERIFIED,
    "parallel_slots": FULLY_VERIFIED,
    "routing": FULLY_VERIFIED,
    "router_cache": FULLY_VERIFIED,
    "group_usage": FULLY_VERIFIED,
    "precall_facts": FULLY_VERIFIED,
}


def resolve(path: str) -> object:
    """The object at `"package.module:attribute.attribute"` (or a whole module, without `:`)."""
    module_name, _, attributes = path.partition(":")
    found: object = importlib.import_module(module_name)
    for attribute in filter(None, attributes.split(".")):
        found = getattr(found, attribute)
    return found


class Surface:
    """A component's litellm names. An attribute resolves its path on first access and is then a
    plain attribute of the instance (no lookup cost on the hot path): what a component captures
    when it is built, before `instrument()` rebinds anything (litellm's originals). `live(name)`
    reads the name from its module on every call (the module resolved once), for a helper or flag
    litellm itself looks up by its global name, so a rebinding of it (a patch, a test's monkeypatch)
    is followed as litellm follows it."""

    def __init__(
        self,
        paths: Mapping[str, str],
        attributes: Mapping[str, tuple[str, ...]] = (),
        optional: Iterable[str] = (),
    ) -> None:
        """`paths`: name -> litellm path; `attributes`: class path -> the private instance
        attributes the component reads on that class's objects (checked by the surface test);
        `optional`: names the component works without (it reads them where they resolve), so a
        missing one does not make it unsupported."""
        self._paths = dict(paths)
        self._attributes = dict(attributes)
        self._optional = frozenset(optional)
        self._live: dict[str, tuple[object, str]] = {}

    def __getattr__(self, name: str) -> object:
        try:
            path = self.__dict__["_paths"][name]
        except KeyError:
            raise AttributeError(name) from None
        found = resolve(path)
        setattr(self, name, found)
        return found

    def live(self, name: str) -> object:
        # The owner (a module) is resolved once; its attribute is read on every call.
        try:
            owner, attribute = self._live[name]
        except KeyError:
            module_name, _, attributes = self._paths[name].partition(":")
            *parents, attribute = attributes.split(".")
            owner = resolve(f"{module_name}:{'.'.join(parents)}")
            self._live[name] = (owner, attribute)
        return getattr(owner, attribute)

    @property
    def paths(self) -> Mapping[str, str]:
        return self._paths

    @property
    def instance_attributes(self) -> Mapping[str, tuple[str, ...]]:
        return self._attributes

    def missing(self, *, optional: bool = False) -> dict[str, str]:
        """The names the component needs that do not resolve on the installed litellm, with why
        (with `optional`, the names it works without as well)."""
        missing = {}
        for name, path in self._paths.items():
            if name in self._optional and not optional:
                continue
            try:
                resolve(path)
            except Exception as error:
                missing[name] = f"{path}: {type(error).__name__}: {error}"
        return missing


def deployment_id(deployment: object) -> str | None:
    """A deployment dict's `model_info.id`, when it is a string: the rollout key of the components
    that keep state per deployment (its calls stay on one implementation)."""
    if isinstance(deployment, dict):
        info = deployment.get("model_info")
        if isinstance(info, dict):
            found = info.get("id")
            return found if isinstance(found, str) else None
    return None


_TOKEN_COUNTER_MODULE = "litellm.litellm_core_utils.token_counter"

TOKEN_COUNTER = Surface(
    {
        "litellm": "litellm",
        "constants": "litellm.constants",
        "public_token_counter": "litellm.utils:token_counter",
        "token_counter": f"{_TOKEN_COUNTER_MODULE}:token_counter",
        "messages_reach_token_count": f"{_TOKEN_COUNTER_MODULE}:messages_reach_token_count",
        "extrapolation_samples": f"{_TOKEN_COUNTER_MODULE}:EXTRAPOLATION_SAMPLES",
        "openai_tokenizer_encoding_name": f"{_TOKEN_COUNTER_MODULE}:openai_tokenizer_encoding_name",
        "uses_legacy_message_accounting": f"{_TOKEN_COUNTER_MODULE}:uses_legacy_message_accounting",
        "format_function_definitions": f"{_TOKEN_COUNTER_MODULE}:_format_function_definitions",
        "huggingface_tokenizer_kind": "litellm.utils:huggingface_tokenizer_kind",
        "convert_list_message_to_dict": "litellm.utils:convert_list_message_to_dict",
        "get_default_encoding": "litellm._lazy_imports:get_default_encoding",
        "chat_template_tool_section": (
            "litellm.litellm_core_utils.prompt_templates.chat_template_tools:chat_template_tool_section"
        ),
    }
)

_RATE_LIMIT_CHECK_MODULE = "litellm.router_utils.pre_call_checks.model_rate_limit_check"

RATE_LIMITS = Surface(
    {
        "litellm": "litellm",
        "check_class": f"{_RATE_LIMIT_CHECK_MODULE}:ModelRateLimitingCheck",
        "daily_limit_deployment": f"{_RATE_LIMIT_CHECK_MODULE}:_DailyLimitDeployment",
        "daily_window_day": f"{_RATE_LIMIT_CHECK_MODULE}:daily_window_day",
        "reset_offset_from_kwargs": f"{_RATE_LIMIT_CHECK_MODULE}:_reset_offset_from_kwargs",
        "utc_now": f"{_RATE_LIMIT_CHECK_MODULE}:get_utc_datetime",
        "usage_routing_handler": "litellm.router_strategy.lowest_tpm_rpm_v2:LowestTPMLoggingHandler_v2",
        "router_errors": "litellm.types.router:RouterErrors",
    },
    {
        f"{_RATE_LIMIT_CHECK_MODULE}:ModelRateLimitingCheck": ("dual_cache", "clock"),
        "litellm.caching.in_memory_cache:InMemoryCache": ("_clock",),
    },
)

PROXY_LIMITS = Surface(
    {
        "rate_limit_store": "litellm.redis.stores.rate_limits:RateLimitStore",
        "offload_token_count": f"{_TOKEN_COUNTER_MODULE}:offload_token_count",
    },
    {"litellm.redis.stores.rate_limits:RateLimitStore": ("has_redis",)},
)

PARALLEL_SLOTS = Surface(
    {
        "litellm": "litellm",
        "logging": "litellm._logging",
        "slots": "litellm.router_rust.invoke.slots",
        "max_parallel_requests_limit": "litellm.router_utils.client_initalization_utils:MaxParallelRequestsLimit",
        "dual_cache": "litellm.caching.dual_cache:DualCache",
        "in_memory_cache": "litellm.caching.in_memory_cache:InMemoryCache",
        "slotted_kinds": "litellm.router_rust.invoke.slots:_SLOTTED_KINDS",
    },
    {"litellm.router_utils.client_initalization_utils:MaxParallelRequestsLimit": ("in_flight",)},
)

_CORE = "litellm.router_rust.core"
_STRATEGIES = "litellm.router_strategy"
_SELECTION = "litellm.router_rust.steps.selection"

ROUTING = Surface(
    {
        "litellm": "litellm",
        "dual_cache": "litellm.caching.dual_cache:DualCache",
        "in_memory_cache": "litellm.caching.in_memory_cache:InMemoryCache",
        "as_str_mapping": "litellm.litellm_core_utils.core_helpers:as_str_mapping",
        # the strategy picks (`strategies`)
        "pick_async": f"{_SELECTION}:pick_async",
        "pick_sync": f"{_SELECTION}:pick_sync",
        "normalize_strategy": f"{_SELECTION}:normalize_strategy",
        "embedding_aware_token_count": "litellm.litellm_core_utils.token_counter:embedding_aware_token_count",
        "deployment_backend_models": "litellm.litellm_core_utils.deployment_pricing:deployment_backend_models",
        "latency_handler": f"{_STRATEGIES}.lowest_latency:LowestLatencyLoggingHandler",
        "latency_datetime": f"{_STRATEGIES}.lowest_latency:datetime",  # live
        "usable_latency_samples": f"{_STRATEGIES}.lowest_latency:_usable_latency_samples",
        "percentile_latency": f"{_STRATEGIES}.lowest_latency:_percentile_latency",
        "cost_handler": f"{_STRATEGIES}.lowest_cost:LowestCostLoggingHandler",
        "cost_datetime": f"{_STRATEGIES}.lowest_cost:datetime",  # live
        "deployment_cost_map_rates": f"{_STRATEGIES}.lowest_cost:_deployment_cost_map_rates",
        "usage_handler": f"{_STRATEGIES}.lowest_tpm_rpm_v2:LowestTPMLoggingHandler_v2",
        "usage_utc_now": f"{_STRATEGIES}.lowest_tpm_rpm_v2:get_utc_datetime",  # live
        "prefetched_usage": f"{_STRATEGIES}.lowest_tpm_rpm_v2:PrefetchedUsage",
        "usage_v1_handler": f"{_STRATEGIES}.lowest_tpm_rpm:LowestTPMLoggingHandler",
        "usage_v1_datetime": f"{_STRATEGIES}.lowest_tpm_rpm:datetime",  # live
        "least_busy_handler": f"{_STRATEGIES}.least_busy:LeastBusyLoggingHandler",
        "call_id_of": f"{_STRATEGIES}.least_busy:call_id_of",
        "reservations_lock": f"{_STRATEGIES}.least_busy:_RESERVATIONS_LOCK",
        "reservation_ttl": f"{_STRATEGIES}.least_busy:SELECTION_RESERVATION_TTL_SECONDS",
        "pick_owner": f"{_STRATEGIES}.least_busy:_PICK_OWNER",
        "as_counts": f"{_STRATEGIES}.least_busy:_as_counts",
        "warn_unreadable": f"{_STRATEGIES}.least_busy:_warn_unreadable",
        "request_count_keys": f"{_STRATEGIES}.least_busy:_request_count_keys",
        "deployment_ids": f"{_STRATEGIES}.least_busy:_deployment_ids",
        "reservation_key": f"{_STRATEGIES}.least_busy:_reservation_key",
        # the router core's steps (`steps`) and whole picks (`whole_picks`)
        "rust_core": f"{_CORE}:RustCore",
        "selection": f"{_CORE}:_Selection",
        "plain": f"{_CORE}:_plain",
        "usage_read": f"{_CORE}:_USAGE_READ",
        "request_carries_image": f"{_CORE}:request_carries_image",
        "unix_time": f"{_CORE}:unix_time",
        "typed_deployment": f"{_CORE}:typed_deployment",
        "for_requested_model": f"{_CORE}:for_requested_model",
        "with_live_params": f"{_CORE}:_with_live_params",
        "cooldown_store": "litellm.redis.stores.router_cooldowns:RouterCooldownStore",
        "active_request_redis_batches": "litellm.caching.redis_batch:active_request_redis_batches",
        "prefetched_cooldowns_slot": "litellm.router_utils.routing_prefetch:_COOLDOWNS_SLOT",
        "selected_endpoint": "litellm.router_utils.endpoint_eligibility:selected_endpoint",
        "pod_discovery": "litellm.router_utils.kubernetes_pod_discovery:KubernetesPodDiscovery",
        "registered_v2_logger": "litellm.integrations.otel.logger:_registered_v2_logger",
        # the routers' health (`health`)
        "live_check_owners": "litellm.router_utils.global_callback_holders:live_check_owners",
    },
    {
        f"{_CORE}:RustCore": (
            "_handle",
            "_resolved",
            "_allowed_fails_default_sent",
            "_index_sent",
            "_custom_strategy",
            "_hosted",
            "_opt",
            "_pick_discovery",
            "_prerouter",
            "_selectors",
            "_routing_fields",
            "_cooldowns",
            "_sync_routing_state",
            "_refuse_deleted_reads",
        ),
        "litellm.router_rust.surface.registry:HostRegistry": ("_core_routing_groups", "_core_routing_plugins"),
        "litellm.router_utils.cooldown_cache:CooldownCache": ("cooldown_store",),
        f"{_SELECTION}:StrategySelectors": ("_cache",),
        "litellm.router_rust.steps.prerouting:PreRouter": ("_strategies",),
        f"{_STRATEGIES}.least_busy:LeastBusyLoggingHandler": (
            "_reservations",
            "_clock",
            "_store_reservations",
            "_live_reservations",
            "_record_pick",
        ),
        f"{_STRATEGIES}.lowest_latency:LowestLatencyLoggingHandler": ("_select_metadata_field",),
        "litellm.caching.in_memory_cache:InMemoryCache": ("_clock",),
    },
    # Imports the OpenTelemetry SDK, which litellm does not require: without it nothing records
    # litellm's phase spans, and whole picks need none.
    optional=("registered_v2_logger",),
)

ROUTER_CACHE = Surface(
    {
        "dual_cache": "litellm.caching.dual_cache:DualCache",
        "in_memory_cache": "litellm.caching.in_memory_cache:InMemoryCache",
        "set_verbose": "litellm._logging:set_verbose",  # live
    }
)

GROUP_USAGE = Surface(
    {
        "host_model_info": "litellm.router_rust.surface.model_info:HostModelInfo",
        "utc_now": "litellm.router_rust.surface.model_info:get_utc_datetime",  # live
        "is_prompt_management_model": "litellm.router_rust.invoke.prompt_management:is_prompt_management_model",
        "endpoint_port": f"{_CORE}:_EndpointPort",
        "as_dict": "litellm.router_rust.invoke.shaping:as_dict",
        "health_callbacks": "litellm.router_rust.surface.health:RustHealthCallbacks",
        "host_registry": "litellm.router_rust.surface.registry:HostRegistry",
        "model_cost_mutation_generation": "litellm.utils:get_model_cost_mutation_generation",
    },
    {
        "litellm.router_rust.surface.registry:HostRegistry": (
            "_core_routing_groups",
            "_live_handle",
            "_list_scope",
            "_core_get_model_list",
            "cached_deployment_tracks_usage",
        ),
        f"{_CORE}:_EndpointPort": ("_core",),
    },
)

PRECALL_FACTS = Surface(
    {
        "litellm": "litellm",
        "max_input_tokens": "litellm.router_rust.steps.precall:_max_input_tokens",
        "pre_call_facts": "litellm.router_rust.steps.precall:PreCallFacts",
        "hosted_entry": "litellm.router_rust.surface.model_list:_HostedEntry",
        "rust_core": f"{_CORE}:RustCore",
        "router_core_handle": "litellm.rust_bridge._native:RouterCoreHandle",
        "model_cost_mutation_generation": "litellm.utils:get_model_cost_mutation_generation",
        "verbose_logger": "litellm._logging:verbose_logger",
        "verbose_router_logger": "litellm._logging:verbose_router_logger",
    },
    {
        "litellm.router_rust.surface.registry:HostRegistry": (
            "_live_handle",
            "handle_lookup",
            "_core_model_list",
            "_discovered_model_info_cache",
        ),
        f"{_CORE}:RustCore": ("_handle",),
        "litellm.router_rust.steps.precall:PreCallFacts": ("_registry", "_model", "_name"),
        "litellm.router_rust.surface.model_list:_HostedEntry": ("_written",),
        "litellm.caching.in_memory_cache:InMemoryCache": ("cache_dict",),
    },
)

# What the Rust glue reads of litellm's `InMemoryCache` directly (`rust/crates/py`); the surface
# test checks a real cache has it.
IN_MEMORY_CACHE_LAYOUT = ("cache_dict", "ttl_dict", "_clock", "_remove_key", "get_cache")

# Each component's surface, by component name.
SURFACES = {
    "token_counter": TOKEN_COUNTER,
    "rate_limits": RATE_LIMITS,
    "proxy_limits": PROXY_LIMITS,
    "parallel_slots": PARALLEL_SLOTS,
    "routing": ROUTING,
    "router_cache": ROUTER_CACHE,
    "group_usage": GROUP_USAGE,
    "precall_facts": PRECALL_FACTS,
}
