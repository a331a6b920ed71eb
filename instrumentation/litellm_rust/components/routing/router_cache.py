"""The strategy handlers' reads and writes of the router cache, without the debug text litellm builds.

litellm 1.110's strategy handlers keep their state in the router's `DualCache`, whose
`async_get_cache`, `get_cache` and `async_set_cache` (`litellm/caching/dual_cache.py`) format an
f-string of the value read or written for `print_verbose` on every call, whether or not verbose
printing is on. The latency handler's map (`{model_group}_map`: each deployment's last latencies
and per-minute counters) grows with the deployments, and its success callback
(`LowestLatencyLoggingHandler.async_log_success_event`: one read, one write) formats it three
times per request: at 100 deployments that costs more than the pick itself.

For a router cache whose handler's pick the routing component served (`track`), in memory only (no
Redis tier), of litellm's own classes, with litellm's verbose printing off, these three calls are
answered as litellm answers them from the in-memory tier (the same `InMemoryCache` calls with the
same arguments, the same default ttl), without the text. Anything else (Redis attached, verbose on,
another cache class, an exception) is litellm's own call, which logs and swallows the exception as
it always does. In shadow mode litellm answers; a read is also made first here and compared with
litellm's (the very object).
"""

import weakref
from typing import TYPE_CHECKING

from litellm_rust.components.routing_steps import LITELLM_ANSWERS

if TYPE_CHECKING:
    from litellm_rust.components.routing import RoutingComponent


class RouterCacheAccess:
    """The routing component's replacements of `DualCache`'s formatting reads and writes."""

    def __init__(self, component: "RoutingComponent") -> None:
        from litellm import _logging
        from litellm.caching.dual_cache import DualCache
        from litellm.caching.in_memory_cache import InMemoryCache

        self._control = component.control
        self._steps = component.steps
        self._logging = _logging
        self._dual_cache = DualCache
        self._in_memory_cache = InMemoryCache
        self._caches: weakref.WeakSet = weakref.WeakSet()
        methods = vars(DualCache)
        self.reference = {name: methods[name] for name in ("async_get_cache", "get_cache", "async_set_cache")}
        self._replacements = {
            self.reference["async_get_cache"]: _async_get_cache(self),
            self.reference["get_cache"]: _get_cache(self),
            self.reference["async_set_cache"]: _async_set_cache(self),
        }

    def replacements(self) -> dict:
        return self._replacements

    def track(self, cache) -> None:
        """A router cache a served pick read (the caller checked its classes and tiers)."""
        if cache not in self._caches:
            self._caches.add(cache)

    def shadowing(self) -> bool:
        return self._steps.shadowing()

    def serves(self, cache) -> bool:
        return (
            self._steps.taken()
            and type(cache) is self._dual_cache
            and cache.redis_cache is None
            and type(cache.in_memory_cache) is self._in_memory_cache
            # `print_verbose` (litellm/_logging.py) prints the text only when this is set.
            and not self._logging.set_verbose
            and cache in self._caches  # last: a WeakSet lookup makes a weak reference
        )

    def read(self, cache, key, kwargs: dict) -> object:
        """`DualCache.(async_)get_cache` with no Redis tier: the in-memory value, or `LITELLM_ANSWERS`."""
        if not self.serves(cache):
            return LITELLM_ANSWERS
        try:
            return cache.in_memory_cache.get_cache(key, **kwargs)
        except Exception:
            return LITELLM_ANSWERS  # litellm's call logs it and answers None

    def settled(self, python: object, rust: object, key) -> object:
        """litellm's read; in shadow mode the read made here first is compared with it."""
        if self.shadowing():
            self._control.record_comparison(
                python, rust, python is rust, lambda capture_content: {"step": "router_cache", "key": str(key)}
            )
        return python

    def wrote(self, cache, key, value, kwargs: dict) -> bool:
        """`DualCache.async_set_cache` with no Redis tier, made here unless litellm's call must be."""
        if self.shadowing() or not self.serves(cache):
            return False
        if "ttl" not in kwargs and cache.default_in_memory_ttl is not None:
            kwargs["ttl"] = cache.default_in_memory_ttl
        try:
            cache.in_memory_cache.set_cache(key, value, **kwargs)
        except Exception:
            return False  # litellm's call makes the write again, then logs its exception
        return True


def _async_get_cache(access: RouterCacheAccess):
    reference = access.reference["async_get_cache"]

    async def async_get_cache(self, key, parent_otel_span=None, local_only: bool = False, **kwargs):
        value = access.read(self, key, kwargs)
        if value is LITELLM_ANSWERS:
            return await reference(self, key, parent_otel_span, local_only, **kwargs)
        if access.shadowing():
            return access.settled(await reference(self, key, parent_otel_span, local_only, **kwargs), value, key)
        return value

    return async_get_cache


def _get_cache(access: RouterCacheAccess):
    reference = access.reference["get_cache"]

    def get_cache(self, key, parent_otel_span=None, local_only: bool = False, **kwargs):
        value = access.read(self, key, kwargs)
        if value is LITELLM_ANSWERS:
            return reference(self, key, parent_otel_span, local_only, **kwargs)
        if access.shadowing():
            return access.settled(reference(self, key, parent_otel_span, local_only, **kwargs), value, key)
        return value

    return get_cache


def _async_set_cache(access: RouterCacheAccess):
    reference = access.reference["async_set_cache"]

    async def async_set_cache(self, key, value, local_only: bool = False, **kwargs):
        if not access.wrote(self, key, value, kwargs):
            await reference(self, key, value, local_only, **kwargs)

    return async_set_cache
