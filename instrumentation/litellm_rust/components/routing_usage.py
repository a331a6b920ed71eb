"""The names of a model group's usage counters, built once per model list and minute.

litellm 1.110's router stamps the `x-ratelimit-remaining-*` headers on every response of a group that
sets tpm or rpm (`RustCore`'s `finish(_async)` -> `HostModelInfo._core_get_remaining_model_group_usage`
(`_sync`)), and `Router.get_model_group_usage` / `get_remaining_model_group_usage` read the same
counters. Every read first names the counters (`HostModelInfo._group_usage_counters`,
`litellm/router_rust/surface/model_info.py`): the group's model list, copied row by row, and a
frozen `UsageCounter` per deployment and kind. At 100 deployments that is ~250 µs of Python per
response, twice what litellm's native store then takes to read the counters.

The names depend only on what that model list reads (the registry, whose `registry_version` every
model-list change moves, in-place edits of a held entry included; the aliases and wildcard requests
of `_list_scope`) and on the minute (`get_utc_datetime`, read where litellm reads it). Here they are
built by litellm's own function once per router, group, registry version, scope and minute, and the
same immutable tuples are handed out until one of those moves. The counters' values are still read
by litellm's store (memory, or Redis when the router has it) and summed by litellm, so every header
and usage number is litellm's own read.

Left to litellm's function, counted by reason: a group name that is not a string (no registry index
holds it, the pattern routers are asked: `unindexed_group`), a router with routing groups (a callable group's members can change
between reads: `routing_groups`), a registry without a live native handle (`no_registry_handle`).
In rust mode the names are served; in shadow mode litellm's are returned and compared with the
names served here.
"""

import weakref
from collections import Counter
from typing import TYPE_CHECKING

from litellm_rust import _native

if TYPE_CHECKING:
    from litellm_rust.components.routing import RoutingComponent


def _decline(reason: str):
    raise _native.Unsupported(reason)


class _Named:
    """One group's counters as litellm named them at one registry version, scope and minute."""

    __slots__ = ("handle", "version", "scope", "minute", "counters")

    def __init__(self, handle, version: int, scope, minute: str, counters) -> None:
        self.handle = handle
        self.version = version
        self.scope = scope
        self.minute = minute
        self.counters = counters

    def holds(self, handle, version: int, scope, minute: str) -> bool:
        return self.handle is handle and self.version == version and self.minute == minute and self.scope == scope


class GroupUsageCounters:
    """The routing component's replacement of `HostModelInfo._group_usage_counters`."""

    def __init__(self, component: "RoutingComponent") -> None:
        from litellm.router_rust.surface import model_info

        self._control = component.control
        self._steps = component.steps
        self._model_info = model_info
        # Per host registry: its groups' names, kept for one registry version and minute at a time.
        self._named: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.counts: Counter = Counter()  # served, named (litellm's function ran), then declines by reason
        self.reference = vars(model_info.HostModelInfo)["_group_usage_counters"]
        self._replacements = {self.reference: _group_usage_counters(self)}

    def replacements(self) -> dict:
        return self._replacements

    def status(self) -> dict:
        return dict(sorted(self.counts.items()))

    def counters(self, hosted, model_group):
        """The group's (tpm, rpm) counters as litellm's function names them now (or `None`)."""
        reference = self.reference
        if not self._steps.taken():
            return reference(hosted, model_group)
        try:
            minute = self._model_info.get_utc_datetime().strftime("%H-%M")
            if type(model_group) is not str:
                _decline("unindexed_group")  # `_core_get_model_list` asks the pattern routers
            if hosted._core_routing_groups:
                _decline("routing_groups")
            handle = hosted._live_handle()
            if handle is None:
                _decline("no_registry_handle")
            version = handle.registry_version()  # read before the names: a change while naming misses next time
            scope = hosted._list_scope(model_group)
            by_group = self._named.get(hosted)
            named = None if by_group is None else by_group.get(model_group)
        except Exception as error:
            self.counts[error.args[0] if isinstance(error, _native.Unsupported) else "rust_error"] += 1
            self._control.rust_failed(error, python_serves=False)
            return reference(hosted, model_group)
        if named is not None and named.holds(handle, version, scope, minute):
            if self._steps.shadowing():
                return self._settled(reference(hosted, model_group), named.counters, model_group)
            self.counts["served"] += 1
            return named.counters
        counters = reference(hosted, model_group)
        # litellm read the minute itself: names of another minute (it rolled over meanwhile) are not kept.
        if counters is None or not counters[0] or counters[0][0].minute == minute:
            if by_group is None or any(not kept.holds(handle, version, kept.scope, minute) for kept in by_group.values()):
                by_group = self._named[hosted] = {}  # one registry version and minute's groups at a time
            by_group[model_group] = _Named(handle, version, scope, minute, counters)
        self.counts["named"] += 1
        return counters

    def _settled(self, python, rust, model_group):
        """litellm's names; in shadow mode the names served here are compared with them."""
        self._control.record_comparison(
            python, rust, python == rust, lambda capture_content: {"step": "group_usage_counters", "model_group": model_group}
        )
        return python


def _group_usage_counters(access: GroupUsageCounters):
    def _group_usage_counters(self, model_group: str):
        return access.counters(self, model_group)

    return _group_usage_counters
