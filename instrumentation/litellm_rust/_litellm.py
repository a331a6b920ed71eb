"""litellm's surface as the components use it: every litellm module, function, class, private
attribute and cache layout a component relies on, named in this one module.

litellm's internals move between releases. Named here, they are resolved in one place, checked by
one test (`tests/test_litellm_surface.py`) on the installed litellm, and a component whose names
are missing can be told apart from one whose names resolve. Components get litellm objects from a
`Surface` (resolved on first use: importing litellm is slow, and `import litellm_rust` must not do
it), never by importing litellm themselves.
"""

import importlib
from collections.abc import Mapping

# The litellm releases every name below was verified on (`tests/test_litellm_surface.py`).
VERIFIED_ON = ("1.110.2",)


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
    resolves again on every call, for a helper litellm itself looks up by its global name, so a
    rebinding of it (a patch, a test's monkeypatch) is followed as litellm follows it."""

    def __init__(self, paths: Mapping[str, str], attributes: Mapping[str, tuple[str, ...]] = ()) -> None:
        """`paths`: name -> litellm path; `attributes`: class path -> the private instance
        attributes the component reads on that class's objects (checked by the surface test)."""
        self._paths = dict(paths)
        self._attributes = dict(attributes)

    def __getattr__(self, name: str) -> object:
        try:
            path = self.__dict__["_paths"][name]
        except KeyError:
            raise AttributeError(name) from None
        found = resolve(path)
        setattr(self, name, found)
        return found

    def live(self, name: str) -> object:
        return resolve(self._paths[name])

    @property
    def paths(self) -> Mapping[str, str]:
        return self._paths

    @property
    def instance_attributes(self) -> Mapping[str, tuple[str, ...]]:
        return self._attributes

    def missing(self) -> dict[str, str]:
        """The names that do not resolve on the installed litellm, with why."""
        missing = {}
        for name, path in self._paths.items():
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

# What the Rust glue reads of litellm's `InMemoryCache` directly (`rust/crates/py`); the surface
# test checks a real cache has it.
IN_MEMORY_CACHE_LAYOUT = ("cache_dict", "ttl_dict", "_clock", "_remove_key", "get_cache")

# Each component's surface, by component name.
SURFACES = {
    "token_counter": TOKEN_COUNTER,
    "rate_limits": RATE_LIMITS,
    "proxy_limits": PROXY_LIMITS,
    "parallel_slots": PARALLEL_SLOTS,
}
