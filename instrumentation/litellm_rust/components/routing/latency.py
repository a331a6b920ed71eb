"""latency-based-routing's state held in Rust: one native mirror per router in-memory cache.

`LowestLatencyLoggingHandler` keeps each model group's `{group}_map` in the router's
`InMemoryCache` (per deployment: latency and TTFT windows, per-minute tpm/rpm counters), and its
pick reads every candidate's entry. Its callbacks change the cached dict in place and `set_cache`
the same dict again, so no cache method is wrapped here: each pick still fetches the map with
`InMemoryCache.get_cache` (its expiry and removal; a flush, an eviction or another dict written
shows as another object or none), and the cache's `_native.LatencyMirror` re-reads only what moved
since the last pick, found by the version tags of the map and its entry dicts and by the items of
the sample lists it holds (`rust/crates/py/src/latency_mirror.rs`). A pick where nothing moved reads
no Python dict; a callback's event costs the next pick one entry.

Read in place instead, and counted by reason (`status()["routing"]["latency_mirror"]`):
candidates that are the caller's own dicts rather than the router's shared records
(`caller_candidates`), a CPython whose dicts and lists cannot be read this way, 3.14 on
(`dict_versions`), and a pick that finds the mirror held by another thread's pick (`busy`).
"""

import sys

from litellm_rust import _native
from litellm_rust.components.routing.mirrors import CacheMirrors

# Python 3.12 made `sum()` of floats compensated, which moves latency means in the last bits.
COMPENSATED_SUM = sys.version_info >= (3, 12)


class LatencyMirrors(CacheMirrors):
    """The routing component's latency mirrors, by router cache."""

    def __init__(self) -> None:
        super().__init__(lambda: _native.LatencyMirror(COMPENSATED_SUM))

    def latency_choices(self, call, cache, state, **pick) -> tuple:
        """`_native.latency_choices` over the cache's mirror of `state` (the group's map as the
        pick fetched it), or over `state` read in place (the reason counted) when the mirror cannot
        serve. `pick`: the keyword arguments of `_native.latency_choices`."""
        mirror = self.mirror_of(call, cache)
        if mirror is not None:
            mirrored = mirror.latency_choices(call.deployments, state, group=call.model, **pick)
            if mirrored is not None:
                return mirrored
        return _native.latency_choices(call.deployments, state, **pick)
