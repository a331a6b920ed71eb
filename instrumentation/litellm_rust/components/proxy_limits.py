"""Proxy limits: the in-memory path of litellm's proxy rate limiter (`parallel_request_limiter_v3`).

Without Redis, litellm 1.110's v3 limiter keeps its windows, counters and parallel-request gauges
in a native `NativeRateLimits` store behind `litellm.redis.stores.rate_limits.RateLimitStore`;
its reads answer at once, but every increment is awaited from litellm's runtime thread, and the
request's token estimates (`offload_token_count`) each hop to a worker thread. Measured on one
request (pre-call, success, post-call hooks), the hops are most of its wall time; the work inside
them is microseconds.

Served here, the same values and decisions without the hops:
- `RateLimitStore`'s memory methods (`local`, `set_local`, `get`, `increment`, `increment_many`,
  `increment_many_post_call`) are replaced on the class: a store without Redis keeps its entries
  in a native `MemoryRateLimits` (litellm's value types and expiry rules, see
  `rate_limiter::memory_store`) and answers synchronously. A store with Redis stays litellm's
  (`redis_cache`): its Lua scripts and local mirror are one design.
- The v3 handler's token estimates of a request whose text is at most `_INLINE_TEXT_CHARS`
  characters run inline, in a copy of the context as on the worker thread; larger requests still
  go to litellm's worker threads, so a big body does not block the event loop (`large_request`).

While Rust serves a store, litellm's own entries for it are not written: if the component degrades
to Python, that store's windows start over in litellm's.
"""

import contextvars
import weakref

from litellm_rust import _native
from litellm_rust._component import Component

_SYNC_METHODS = ("local", "set_local")
_ASYNC_METHODS = ("get", "increment", "increment_many", "increment_many_post_call")
# Up to this many characters, litellm's estimate (characters / 4 over the request's fields) takes
# 10-20 µs inline (measured), far less than one worker-thread hop.
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
        from litellm.litellm_core_utils import token_counter
        from litellm.redis.stores.rate_limits import RateLimitStore

        namespace = vars(RateLimitStore)
        self.references = {name: namespace[name] for name in (*_SYNC_METHODS, *_ASYNC_METHODS)}
        self.references["offload_token_count"] = token_counter.offload_token_count
        # One native store per RateLimitStore (by id, dropped with it); None for one with Redis.
        self._natives: dict[int, _native.MemoryRateLimits | None] = {}
        self._replacements = {
            **{self.references[name]: _served(self, name, is_async=False) for name in _SYNC_METHODS},
            **{self.references[name]: _served(self, name, is_async=True) for name in _ASYNC_METHODS},
            self.references["offload_token_count"]: _inline_small_estimates(self),
        }

    def replacements(self):
        return self._replacements

    def native(self, store) -> _native.MemoryRateLimits:
        """The native entries standing in for `store`'s litellm handle."""
        try:
            native = self._natives[id(store)]
        except KeyError:
            native = self._natives[id(store)] = None if store.has_redis else _native.MemoryRateLimits(self.stats)
            weakref.finalize(store, self._natives.pop, id(store), None)
        if native is None:
            raise _native.Unsupported("redis_cache")
        return native

    def compare(self, python_result: object, rust_result: object) -> bool:
        """Equal values of the same types (litellm's store keeps an int an int)."""
        if isinstance(python_result, tuple) and isinstance(rust_result, tuple):
            return len(python_result) == len(rust_result) and all(map(self.compare, python_result, rust_result))
        return type(python_result) is type(rust_result) and python_result == rust_result


def _describe(name: str, args: tuple):
    def describe(capture_content: bool) -> dict:
        return {"operation": name, "arguments": repr(args)[:200] if capture_content else len(args)}

    return describe


async def _ready(value):
    return value


def _served(component: ProxyLimitsComponent, name: str, is_async: bool):
    """A store method: the native entries on the fast path, else `Control.serve(_async)`. An async
    method's replacement returns an awaitable; on the fast path one that is done already, so the
    caller's `await` does not wait on litellm's runtime thread."""
    original = component.references[name]
    operation = _RUST_OPERATIONS[name]
    control = component.control
    ticks = control.ticks
    native = component.native
    serve = control.serve_async if is_async else control.serve

    def method(self, *args, **kwargs):
        if control.rust_fast and next(ticks) % control.timing_every:
            try:
                result = operation(native(self), *args, **kwargs)
                return _ready(result) if is_async else result
            except Exception as failure:
                control.rust_failed(failure)
                return original(self, *args, **kwargs)
        return serve(
            lambda: operation(native(self), *args, **kwargs),
            lambda: original(self, *args, **kwargs),
            describe=_describe(name, args),
        )

    method.__doc__, method.__wrapped__ = original.__doc__, original
    return method


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
                raise _native.Unsupported("large_request")
            return contextvars.copy_context().run(function, *args, **kwargs)

        async def estimate(*args, **kwargs):
            return await control.serve_async(
                lambda: inline(args, kwargs),
                lambda: original(function)(*args, **kwargs),  # litellm's hop, built only when it serves
                describe=_describe(function.__name__, args),
            )

        return estimate

    offload_token_count.__doc__, offload_token_count.__wrapped__ = original.__doc__, original
    return offload_token_count
