"""Every reason a call is handed back to litellm, with what it means: one registry.

A reason is the first argument of a `_native.Unsupported` (raised by a component or by the Rust glue)
or a failure the kernel names (`rust_error`, `rust_panic`). It is what `status()` counts a fallback
under and the `error.type` of the `litellm_rust.fallbacks` metric; a routing mirror counts the picks
it sends to read litellm's cache in place the same way. Each meaning says what the call or its input
was; in every case litellm served it as shipped (or, for a mirror, the pick read litellm's cache).

Data only, importing nothing of the package or of litellm. `tests/test_reasons.py` checks it against
every reason the sources raise and against the table in docs/telemetry.md, which is generated from it.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Reasons:
    """The reasons one part counts, where `status()` shows them, and what each means."""

    counted_in: str
    meanings: dict[str, str]


_FALLBACKS = 'status()["{}"]["fallback_reasons"]'

REASONS: dict[str, Reasons] = {
    "every component": Reasons(
        _FALLBACKS.format("<component>"),
        {
            "rust_error": "the Rust path raised an error of its own (not a decline); litellm served the call",
            "rust_panic": "the Rust path panicked; the panic was caught at the boundary and litellm served the call",
            "caller_error": (
                "the Rust path raised and litellm raised the same exception type: the caller's input, not a Rust "
                "fault (not counted against Rust); the caller got litellm's exception"
            ),
        },
    ),
    "token_counter": Reasons(
        _FALLBACKS.format("token_counter"),
        {
            "custom_tokenizer": "a `custom_tokenizer=` was given; litellm counted with it",
            "unsupported_tokenizer": (
                "the model's tokenizer is not a tiktoken BPE Rust ships (HuggingFace, p50k/r50k); litellm counted"
            ),
            "unsupported_model": "litellm's own lookup of the model's tokenizer raised; litellm's call answered",
            "unsupported_input": (
                "an input Rust does not reproduce (non-dict messages, documents, files, odd keys or types); "
                "litellm counted"
            ),
            "unsupported_image": (
                "an image whose size litellm would fetch by URL or read leniently from its header; litellm counted"
            ),
            "unsupported_extrapolation": (
                "text so long that the extrapolated count's float rounding may differ; litellm counted"
            ),
            "invalid_arguments": (
                "text together with messages or tools, or neither text nor messages; litellm raised its error"
            ),
            "chat_template_tools": "tools for a model whose chat template renders them; litellm counted",
        },
    ),
    "rate_limits": Reasons(
        _FALLBACKS.format("rate_limits"),
        {
            "redis_cache": "the router cache is shared through Redis; litellm's check read and wrote Redis",
            "io_token_limits": "the deployment sets itpm/otpm limits; litellm checked",
            "shared_with_usage_routing": (
                "the router's usage-based-routing-v2 counts in the same keys; litellm checked"
            ),
            "unusual_limits": "a limit that is not a plain int, which litellm coerces or admits; litellm checked",
            "unusual_deployment": (
                "a deployment whose fields or daily settings litellm reads leniently; litellm checked"
            ),
        },
    ),
    "parallel_slots": Reasons(
        _FALLBACKS.format("parallel_slots"),
        {
            "subclassed_limit": "the cached limit is a subclass of `MaxParallelRequestsLimit`; litellm took the slot",
            "unusual_in_flight": "the limit's `in_flight` is not an int; litellm took the slot",
            "lookup_raised": "litellm's own limit lookup raised; litellm's path raised the error",
            "first_use": "shadow mode, a limit litellm had not built yet; litellm built it, nothing compared",
        },
    ),
    "proxy_limits": Reasons(
        _FALLBACKS.format("proxy_limits"),
        {
            "redis_cache": "the proxy limiter's store has Redis; litellm's store answered (its Lua scripts)",
            "unusual_value": "a value litellm's store refuses; litellm's store raised its error",
            "int_overflow": "an increment beyond a 64-bit int; litellm's store answered",
            "large_request": (
                "a request with more text than is estimated inline; litellm's worker thread estimated it"
            ),
        },
    ),
    "routing (strategy picks)": Reasons(
        _FALLBACKS.format("routing"),
        {
            "unserved_strategy": "a strategy or selector the component does not serve; litellm picked",
            "unsupported_deployment": (
                "a candidate list or deployment whose fields are not plain values Rust reads; litellm picked"
            ),
            "unsupported_cache": "a router cache or store of another class; litellm picked",
            "redis_cache": (
                "a pick that would await a Redis read (no prefetched usage, a map memory lacks); litellm picked"
            ),
            "unsupported_state": "cached state that is not plain numbers, dicts and lists; litellm picked",
            "usage_read_failed": "the sync usage-v2 pick's reads through Redis gave no answer; litellm picked",
            "no_deployment_available": "every deployment is over its limits; litellm raised its own error",
        },
    ),
    "routing (step glue)": Reasons(
        _FALLBACKS.format("routing"),
        {
            "duplicate_ids": "candidates that share an id (litellm passes them as records); litellm answered the step",
            "encrypted_content_pin": "a request pinned by encrypted-content affinity; litellm answered the step",
            "unsupported_deployment": "a strategy step whose candidates are not a list of ids; litellm answered",
            "unsupported_cache": "a cooldown store of another class; litellm read the cooldowns",
            "redis_cache": "a cooldown store with Redis; litellm read the cooldowns",
            "prefetched_cooldowns": "cooldowns the request already prefetched; litellm's read used them",
        },
    ),
    "routing (whole picks)": Reasons(
        _FALLBACKS.format("routing"),
        {
            "request_fields": "a pick whose request carries fields; litellm's select ran",
            "specific_deployment": "`specific_deployment=True`; litellm's select ran",
            "model_resolution": (
                "a model that is not a string or not a group of its own (aliases, wildcards, ids); litellm's select ran"
            ),
            "image_request": "messages carrying an image; litellm's select ran",
            "endpoint_selection": "an endpoint selection in effect; litellm's select ran",
            "custom_strategy": "a custom or assigned routing strategy; litellm's select ran",
            "routing_plugins": "routing plugins registered; litellm's select ran",
            "pre_call_checks": "pre-call checks, optional ones included; litellm's select ran",
            "pod_discovery": "pod discovery other than the router's own, or a deployment opting in; litellm's select ran",
            "callback_filters": "callback filters on an async pick; litellm's select ran",
            "pre_routing_strategies": "pre-routing strategies registered; litellm's select ran",
            "otel_phase_spans": "OTel v2 phase spans would record on the pick; litellm's select ran",
            "model_group_alias": "a router with model group aliases; litellm's select ran",
            "default_deployment": "a router with a default deployment; litellm's select ran",
            "routing_groups": "a router with routing groups; litellm's select ran",
            "health_check_routing": "health-check routing enabled; litellm's select ran",
            "routing_fields": "routing fields such as tag filtering or retry policies; litellm's select ran",
            "deployment_order": "a deployment with `order`; litellm's select ran",
            "deployment_tags": "a deployment with tags; litellm's select ran",
            "unserved_strategy": "a selector that is not the router's own for a served strategy; litellm's select ran",
            "unsupported_cache": "a cooldown store of another class; litellm's select ran",
            "redis_cache": "a router whose cooldowns are shared through Redis; litellm's select ran",
            "core_steps": "litellm's core asks for a step beyond cooldowns, filters and strategy; litellm's select ran",
            "duplicate_ids": "candidates that share an id; litellm's select ran",
            "no_deployment_available": "nothing to choose from; litellm's select raised its own error",
        },
    ),
    "group_usage": Reasons(
        _FALLBACKS.format("group_usage"),
        {
            "unindexed_group": "a group name that is not a string (the pattern routers are asked); litellm named them",
            "routing_groups": "a router with routing groups (members can change between reads); litellm named them",
            "no_registry_handle": "a registry without a live native handle; litellm named the counters",
            "rust_error": "an error while serving the kept answer; litellm's function answered",
        },
    ),
    "precall_facts": Reasons(
        _FALLBACKS.format("precall_facts"),
        {
            "unheld_deployment": (
                "a deployment dict that is not one of the registry's own entries (its edits would not move the "
                "registry's version); litellm read its window"
            ),
            "unkeyed_lookup": (
                "a group name, requested name or deployment id that is not a string; litellm read the window "
                "or tokenizer model"
            ),
            "no_registry_handle": "a registry without a live native handle; litellm read the window or tokenizer model",
            "unnamed_group": (
                "a group no deployment is named by (litellm reads the tokenizer model off the request's candidates); "
                "litellm read it"
            ),
            "lookup_raised": "litellm's tokenizer-model lookup raised; litellm's own call raised it again",
            "rust_error": "an error while serving a kept answer; litellm's function answered",
        },
    ),
    "routing (usage mirror)": Reasons(
        'status()["routing"]["usage_mirror"]["read_in_place"]',
        {
            "caller_candidates": "candidates that are the caller's own dicts, not the router's records; read in place",
            "dict_versions": "a CPython whose dict version tags cannot be read (3.14 on); read in place",
            "prefetched_usage": "an async pick over counters its cooldown read prefetched; read in place",
            "unusable_counter": "a counter litellm's read would not return as a number (expired, a string); read in place",
        },
    ),
    "routing (latency mirror)": Reasons(
        'status()["routing"]["latency_mirror"]["read_in_place"]',
        {
            "caller_candidates": "candidates that are the caller's own dicts, not the router's records; read in place",
            "dict_versions": "a CPython whose dicts and lists cannot be read this way (3.14 on); read in place",
            "busy": "the mirror was held by another thread's pick; read in place",
        },
    ),
}
