"""The accelerated components, by name. Adding one means adding its module here."""

import importlib
from functools import cache

from litellm_rust._component import Component

# name -> "module:class"; components are imported on first use, since each imports litellm,
# which `import litellm_rust` (and the environment-variable entry point) must not.
_REGISTRY = {
    "token_counter": "litellm_rust.components.token_counter:TokenCounterComponent",
    "rate_limits": "litellm_rust.components.rate_limits:RateLimitsComponent",
    "proxy_limits": "litellm_rust.components.proxy_limits:ProxyLimitsComponent",
    "parallel_slots": "litellm_rust.components.parallel_slots:ParallelSlotsComponent",
    "routing": "litellm_rust.components.routing.picks:RoutingComponent",
    "router_cache": "litellm_rust.components.routing.router_cache:RouterCacheComponent",
    "group_usage": "litellm_rust.components.routing.group_usage:GroupUsageComponent",
}
COMPONENT_NAMES = tuple(_REGISTRY)


@cache
def components() -> dict[str, Component]:
    built = {}
    for name, location in _REGISTRY.items():
        module, _, cls = location.partition(":")
        built[name] = getattr(importlib.import_module(module), cls)()
    return built
