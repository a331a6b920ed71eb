"""Router cache: the strategy handlers' reads and writes of the router cache, without the debug text
litellm builds.

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
same arguments, the same default ttl), without the text. Any other cache is litellm's, uncounted;
an exception in the in-memory call is answered by litellm's own call, which logs and swallows it as
it always does. In shadow mode litellm answers; a read is also made first here and compared with
litellm's (the very object).
"""

import weakref

from litellm_rust._component import Component
from litellm_rust._control import LITELLM_SERVES, Site, nothing_to_compare
from litellm_rust._litellm import ROUTER_CACHE

_REPLACED = ("async_get_cache", "get_cache", "async_set_cache")

# The router caches a served strategy pick read: the only DualCaches this component answers for.
_tracked: weakref.WeakSet = weakref.WeakSet()


def track(cache) -> None:
    """A router cache a served pick read (the caller checked its classes)."""
    if cache not in _tracked:
        _tracked.add(cache)


class RouterCacheComponent(Component):
    name = "router_cache"

    def __init__(self) -> None:
        super().__init__()
        self._dual_cache = ROUTER_CACHE.dual_cache
        self._in_memory_cache = ROUTER_CACHE.in_memory_cache
        methods = vars(self._dual_cache)
        self.references = {name: methods[name] for name in _REPLACED}

    def sites(self):
        for name in ("async_get_cache", "get_cache"):
            yield Site(self.references[name], _read, serves=self.serves, describe=_describe(name), shadow=_read)
        yield Site(
            self.references["async_set_cache"],
            _write,
            serves=self.serves,
            describe=_describe("async_set_cache"),
            shadow=nothing_to_compare,  # a write: litellm's alone
        )

    def serves(self, cache, *args, **kwargs) -> bool:
        return (
            type(cache) is self._dual_cache
            and cache.redis_cache is None
            and type(cache.in_memory_cache) is self._in_memory_cache
            # `print_verbose` (litellm/_logging.py) prints the text only when this is set.
            and not ROUTER_CACHE.live("set_verbose")
            and cache in _tracked  # last: a WeakSet lookup makes a weak reference
        )

    def compare(self, python_result: object, rust_result: object) -> bool:
        """The very object litellm's read returned."""
        return python_result is rust_result


def _read(cache, key, parent_otel_span=None, local_only: bool = False, **kwargs) -> object:
    """`DualCache.(async_)get_cache` with no Redis tier: the in-memory value."""
    try:
        return cache.in_memory_cache.get_cache(key, **kwargs)
    except Exception:
        return LITELLM_SERVES  # litellm's call logs it and answers None


def _write(cache, key, value, local_only: bool = False, **kwargs) -> object:
    """`DualCache.async_set_cache` with no Redis tier, in memory with the cache's default ttl."""
    if "ttl" not in kwargs and cache.default_in_memory_ttl is not None:
        kwargs["ttl"] = cache.default_in_memory_ttl
    try:
        cache.in_memory_cache.set_cache(key, value, **kwargs)
    except Exception:
        return LITELLM_SERVES  # litellm's call makes the write again, then logs its exception
    return None


def _describe(name: str):
    def describe(capture_content: bool, cache, key, *args, **kwargs) -> dict:
        return {"operation": name, "key": str(key)}

    return describe
