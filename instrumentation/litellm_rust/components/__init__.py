"""The accelerated components, by name. Adding one means adding its module here."""

import importlib
from functools import cache

from litellm_rust._component import Component
from litellm_rust.config import ComponentSettings

# name -> "module:class". A component module imports litellm only when its component is built, so
# its settings class can be read by the environment-variable entry point, which runs before litellm
# is importable; modules are still imported on first use, to keep `import litellm_rust` small.
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


def _component_class(name: str) -> type[Component]:
    module, _, cls = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)


@cache
def settings_classes() -> dict[str, type[ComponentSettings]]:
    """Each component's settings class (`Component.settings_class`), without importing litellm."""
    return {name: _component_class(name).settings_class for name in _REGISTRY}


@cache
def components() -> dict[str, Component]:
    return {name: _component_class(name)() for name in _REGISTRY}
