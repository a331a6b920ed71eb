"""The accelerated components, by name. Adding one means adding its module here.

Each component is built on its own: one whose litellm names do not resolve on the installed litellm,
or whose exactness was not verified on its version, is not built and stays on litellm's Python,
reported by `unsupported()` with the reason; the others are served.
"""

import importlib
import logging
from functools import cache
from importlib.metadata import PackageNotFoundError, version

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
    "precall_facts": "litellm_rust.components.precall_facts:PreCallFactsComponent",
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
def _built() -> tuple[dict[str, Component], dict[str, str]]:
    built, unsupported = {}, {}
    for name in _REGISTRY:
        # Why the component is not supported here (not a fallback reason: nothing was served).
        why = _unsupported_reason(name)
        if why is None:
            try:
                built[name] = _component_class(name)()
            except Exception as error:  # names that resolve, in a shape this litellm does not have
                why = f"could not be built on this litellm: {type(error).__name__}: {error}"
        if why is not None:
            unsupported[name] = why
            logging.getLogger("litellm_rust").warning("litellm_rust %s stays on litellm's Python: %s", name, why)
    return built, unsupported


def _unsupported_reason(name: str) -> str | None:
    from litellm_rust import _litellm

    try:
        installed = version("litellm")
    except PackageNotFoundError:
        return "litellm is not installed"
    # What is missing first: it says more than "not verified" on a release without the names.
    missing = _litellm.SURFACES[name].missing()
    if missing:
        return f"litellm {installed} lacks {'; '.join(missing.values())}"
    verified = _litellm.VERIFIED_ON[name]
    if installed not in verified:
        return f"exactness verified on litellm {', '.join(verified)}, not on the installed {installed}"
    return None


def components() -> dict[str, Component]:
    """The components the installed litellm supports, built (once per process)."""
    return _built()[0]


def unsupported() -> dict[str, str]:
    """The components the installed litellm does not support, with why: litellm's Python serves them."""
    return _built()[1]
