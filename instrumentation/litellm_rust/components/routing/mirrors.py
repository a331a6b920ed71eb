"""usage-based-routing-v2's counters and least-busy's in-flight counts owned by Rust: one native
mirror per router in-memory cache.

`LowestTPMLoggingHandler_v2` counts per deployment and minute in the router's `InMemoryCache`
(`pre_call_check` the rpm key, `(async_)log_success_event` the tpm key, through
`increment_cache`), and its pick reads every candidate's two counters. Here each write through the
cache's own methods (`InMemoryCache.set_cache`, `_remove_key`, `flush_cache`, replaced on the
class) runs as litellm wrote it and is then copied into the cache's `_native.UsageMirror`: O(1) per
event, and whoever writes (the handler's callbacks, a user's `router.cache.set_cache`, eviction,
the expiry removal of a read) is copied the same way. The pick reads the mirror with
`InMemoryCache.get_cache`'s semantics, over the plan of its candidates (ids, keys, limits) it
builds once per candidate list and minute.

A write that bypasses those methods (`cache_dict[key] = ...`) moves the dicts' version tags, and the
next pick re-reads the whole cache first (`resyncs`). Read in place instead, and counted by reason
(`status()["routing"]["usage_mirror"]`): a counter litellm's read would not simply return as a
number (an expired key, which the read removes; a string it decodes: `unusable_counter`); an async
pick whose counters its cooldown read prefetched (`prefetched_usage`); candidates that are the
caller's own dicts rather than the router's shared records (`caller_candidates`); a CPython without
readable dict version tags, 3.14 on (`dict_versions`).

least-busy's in-flight counts (`{group}_request_count:{id}`, which
`litellm.router_strategy.least_busy._count_locally` writes through the same cache's
`increment_cache` / `set_cache`, 1-hour TTL) are numbers in the same cache, so its pick reads them
from the same mirror (`_native.least_busy(..., mirror)`), with the same reasons to read in place;
with Redis too, since the handler's own counts are the memory tier's (`local_only`). Its pick
reservations stay read in place from the handler's reservation store.

`CacheMirrors` (a mirror per router cache, made on its first pick, and the reasons counted) is shared
with latency-based-routing's mirrors (`latency`).

Left to litellm's cache read: a write by another thread straight into `cache_dict` while a
write through the cache's methods is in progress (between its `begin` and `written`).
"""

import weakref
from collections import Counter

from litellm_rust import _native
from litellm_rust._control import standing_in_for
from litellm_rust._litellm import ROUTING


class CacheMirrors:
    """Native mirrors of routing state, one per router cache, made on the cache's first pick;
    `reasons` counts the picks read in place instead."""

    def __init__(self, make) -> None:
        self._make = make
        self._mirrors: dict[int, object] = {}
        self._available = True
        self.reasons: Counter = Counter()

    def _mirror_for(self, cache):
        """The cache's mirror, made on its first pick (`None`: this CPython's dicts cannot be
        mirrored)."""
        mirror = self._mirrors.get(id(cache))
        if mirror is not None or not self._available:
            return mirror
        try:
            mirror = self._make()
        except _native.Unsupported:
            self._available = False
            return None
        self._mirrors[id(cache)] = mirror
        weakref.finalize(cache, self._mirrors.pop, id(cache), None)
        return mirror

    def mirror_of(self, call, cache):
        """The mirror a pick over `cache` reads, or `None` (the reason counted)."""
        if call.shared is None:
            self.reasons["caller_candidates"] += 1  # dicts the caller may change between picks
            return None
        mirror = self._mirror_for(cache)
        if mirror is None:
            self.reasons["dict_versions"] += 1
        return mirror

    def status(self) -> dict:
        totals: Counter = Counter()
        for mirror in list(self._mirrors.values()):
            totals.update(mirror.counts())
        reasons = {**self.reasons, **self._native_reasons(totals)}
        return {**totals, "read_in_place": dict(sorted(reasons.items()))}

    @staticmethod
    def _native_reasons(totals: Counter) -> dict:
        """The mirrors' own `read_in_place` count, by the reason it stands for."""
        return {"busy": totals.pop("read_in_place", 0)}


class UsageMirrors(CacheMirrors):
    """The routing component's usage-v2 mirrors, by router cache."""

    def __init__(self) -> None:
        super().__init__(_native.UsageMirror)
        self._methods = vars(ROUTING.in_memory_cache)

    def wrappers(self) -> dict:
        """`InMemoryCache`'s write methods, copying each write into the cache's mirror."""
        methods = self._methods
        return {
            methods["set_cache"]: _copied_write(methods["set_cache"], self._mirrors, _written_key),
            methods["_remove_key"]: _copied_write(methods["_remove_key"], self._mirrors, _written_key),
            methods["flush_cache"]: _copied_write(methods["flush_cache"], self._mirrors, _flushed),
        }

    def least_used(self, call, cache, minute: str, prefetched: bool, count_input_tokens, context) -> list | None:
        """The usage-v2 pick's choices (`_native.least_used`'s) read from the cache's mirror, or
        `None` (counted by reason): the pick reads the cache in place."""
        if prefetched:
            self.reasons["prefetched_usage"] += 1
            return None
        mirror = self.mirror_of(call, cache)
        if mirror is None:
            return None
        return mirror.least_used(
            call.deployments, minute=minute, cache=cache, count_input_tokens=count_input_tokens, context=context
        )

    @staticmethod
    def _native_reasons(totals: Counter) -> dict:
        return {"unusable_counter": totals.pop("read_in_place", 0)}


def _written_key(mirror, cache, current: bool, args: tuple, kwargs: dict) -> None:
    """`set_cache(key, value, ...)` / `_remove_key(key)`: the key's entry as the cache now holds it."""
    mirror.written(cache, args[0] if args else kwargs["key"], current)


def _flushed(mirror, cache, current: bool, args: tuple, kwargs: dict) -> None:
    mirror.cleared(cache, current)


def _copied_write(reference, mirrors: dict, copy):
    """A cache write method that runs as litellm's, then copies what it wrote into the cache's
    mirror, if the cache has one."""

    def write(self, *args, **kwargs):
        mirror = mirrors.get(id(self))
        if mirror is None:
            return reference(self, *args, **kwargs)
        current = mirror.begin(self)
        try:
            return reference(self, *args, **kwargs)
        finally:
            copy(mirror, self, current, args, kwargs)

    return standing_in_for(reference, write)
