"""Proxy limits: the in-memory path of litellm's proxy rate limiter (`parallel_request_limiter_v3`).

Without Redis, the v3 limiter's `RateLimitStore` answers from a native store, but every increment
is awaited from litellm's runtime thread and each token estimate hops to a worker thread: the hops
are most of a request's limiter time. Here a store without Redis keeps its entries in a native
`MemoryRateLimits` (litellm's value types and expiry rules) and answers synchronously, and a small
request's estimates run inline; a store with Redis stays litellm's. While Rust serves a store,
litellm's own entries for it are not written: on degrading to Python its windows start over.
"""

import contextvars
import weakref

from litellm_rust import _native
from litellm_rust._component import Component
from litellm_rust._control import Site, decline, standing_in_for
from litellm_rust._litellm import PROXY_LIMITS

_STORE_METHODS = ("local", "set_local", "get", "increment", "increment_many", "increment_many_post_call")
# Up to this many characters, litellm's estimate (characters / 4 over the request's fields) costs
# far less inline than one worker-thread hop.
_INLINE_TEXT_CHARS = 16_384
_LIMITER_CLASS = "_PROXY_MaxParallelRequestsHandler_v3"


def _local(native, entries):
    return tuple(native.get_local(entry) for entry in entries)


def _set_local(native, entry, value, ttl):
    native.set_local(entry, value, ttl)


def _get(native, entry, backfill_ttl=None):
    # `DualCache.async_get_cache` without Redis: memory only.
    return native.get_local(entry)


def _increment(native, increment):
    return native.increment(increment.counter, increment.amount, increment.ttl)


def _increment_many(native, increments):
    for increment in increments:
        # litellm's batch stops at the first entry holding no number (the earlier ones stay added).
        if native.increment(increment.counter, increment.amount, increment.ttl) is None:
            return


_RUST_OPERATIONS = {
    "local": _local,
    "set_local": _set_local,
    "get": _get,
    "increment": _increment,
    "increment_many": _increment_many,
    # Without Redis there is no post-call batch: memory now, as litellm does.
    "increment_many_post_call": _increment_many,
}


class ProxyLimitsComponent(Component):
    name = "proxy_limits"
    stateful = True

    def __init__(self) -> None:
        super().__init__()
        namespace = vars(PROXY_LIMITS.rate_limit_store)
        self.references = {name: namespace[name] for name in _STORE_METHODS}
        self.references["offload_token_count"] = PROXY_LIMITS.offload_token_count
        # One native store per RateLimitStore (by id, dropped with it); None for one with Redis.
        self._natives: dict[int, _native.MemoryRateLimits | None] = {}

    def sites(self):
        native = self.native
        for name in _STORE_METHODS:
            operation = _RUST_OPERATIONS[name]
            yield Site(
                self.references[name],
                lambda store, *args, operation=operation, **kwargs: operation(native(store), *args, **kwargs),
                describe=_describe(name),
            )

    def wrappers(self):
        return {self.references["offload_token_count"]: _inline_small_estimates(self)}

    def native(self, store) -> _native.MemoryRateLimits:
        """The native entries standing in for `store`'s litellm handle."""
        try:
            native = self._natives[id(store)]
        except KeyError:
            native = self._natives[id(store)] = None if store.has_redis else _native.MemoryRateLimits(self.stats)
            weakref.finalize(store, self._natives.pop, id(store), None)
        if native is None:
            decline("redis_cache")
        return native

    def compare(self, python_result: object, rust_result: object) -> bool:
        """Equal values of the same types (litellm's store keeps an int an int)."""
        if isinstance(python_result, tuple) and isinstance(rust_result, tuple):
            return len(python_result) == len(rust_result) and all(map(self.compare, python_result, rust_result))
        return type(python_result) is type(rust_result) and python_result == rust_result


def _describe(name: str):
    def describe(capture_content: bool, *args, **kwargs) -> dict:
        return {"operation": name, "arguments": repr(args)[:200] if capture_content else len(args)}

    return describe


def _inline_small_estimates(component: ProxyLimitsComponent):
    """`offload_token_count` for the v3 limiter's estimates: a small request's runs inline (the
    same function, in a copy of the context as anyio gives the worker thread)."""
    original = component.references["offload_token_count"]
    control = component.control

    def offload_token_count(function):
        # Named, not imported: importing litellm's proxy needs its optional dependencies.
        if getattr(function, "__qualname__", "").partition(".")[0] != _LIMITER_CLASS:
            return original(function)

        def inline(args, kwargs):
            if not _native.text_within((args, kwargs), _INLINE_TEXT_CHARS):
                decline("large_request")
            return contextvars.copy_context().run(function, *args, **kwargs)

        async def estimate(*args, **kwargs):
            return await control.serve_async(
                lambda: inline(args, kwargs),
                lambda: original(function)(*args, **kwargs),  # litellm's hop, built only when it serves
                describe=lambda capture_content: _describe(function.__name__)(capture_content, *args),
            )

        return estimate

    return standing_in_for(original, offload_token_count)
