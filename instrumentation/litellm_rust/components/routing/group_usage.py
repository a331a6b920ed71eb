"""The router's per-request usage work that does not change between requests: the names of a group's
usage counters, the prompt-management check's read of the group, and whether a deployment's usage
is counted at all.

## The counters' names

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
holds it, the pattern routers are asked: `unindexed_group`), a router with routing groups (a callable
group's members can change between reads: `routing_groups`), a registry without a live native
handle (`no_registry_handle`).
In rust mode the names are served; in shadow mode litellm's are returned and compared with the
names served here (`served` / `named` count the two).

The same list is read once more per request, for the prompt-management check
(`litellm.router_rust.invoke.prompt_management.is_prompt_management_model`: a group of exactly one
deployment whose model's provider prefix is a known prompt-management callback): ~90 µs at 100
deployments to learn that the group has more than one. The provider prefix it looks up (or that
there is none) is kept the same way, per router, group, registry version and scope, and looked up in
litellm's known callbacks on every call, as litellm looks it up (`prompt_listed` / `prompt_served`).

## Whether a deployment's usage is counted

Every success asks `RustHealthCallbacks.deployment_tracks_usage` twice (the attempt, under the
deployment's model; the success callback, under its group), and each asks the host registry's
`cached_deployment_tracks_usage`: an `lru_cache` of 64 entries over `_deployment_tracks_usage`, whose
miss merges the deployment's model info (~270 µs). A router with more than 32 deployments asks for
more keys than it holds, so at 100 deployments most successes miss. Here the answers litellm's cache
gave are kept for as long as litellm's would be valid: per router, for one registry version, one
`litellm.model_cost` mutation generation and one `cached_deployment_tracks_usage` object, and
emptied whenever litellm empties its own (`HostRegistry._invalidate_model_group_info_cache`,
wrapped). A miss here asks litellm's cache; an answer it raised for (which litellm reads as not
tracked) is not kept, as `lru_cache` keeps none. Every answer is one litellm's cache gave since it was
last emptied; the one difference is for a deployment litellm's cache would have evicted by the next
request: it recomputes, and a change its inputs saw without emptying the cache (a cost-map entry
edited in place, which litellm's own cache does not see either while it holds the entry) would show
there first. In shadow mode litellm answers and is compared.
"""

import weakref
from collections import Counter
from typing import TYPE_CHECKING

from litellm_rust import _native

if TYPE_CHECKING:
    from litellm_rust.components.routing import RoutingComponent


def _decline(reason: str):
    raise _native.Unsupported(reason)


class _GroupListings:
    """Values derived from one group's model list (`_core_get_model_list(model_name=group)`), kept per
    router while that list cannot change: for one registry handle and version and one `_list_scope`."""

    # Group names asked of one router at one registry version (a proxy's requests name any string).
    _MAX_GROUPS = 256

    def __init__(self) -> None:
        self._held: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @staticmethod
    def key(hosted, model_group, *more) -> tuple:
        """What the group's list reads now; raises `Unsupported` where it is litellm's to read."""
        if type(model_group) is not str:
            _decline("unindexed_group")  # `_core_get_model_list` asks the pattern routers
        if hosted._core_routing_groups:
            _decline("routing_groups")  # a callable group's members can change between reads
        handle = hosted._live_handle()
        if handle is None:
            _decline("no_registry_handle")
        # The version is read before the list: a change while litellm reads it misses next time.
        return (handle, handle.registry_version(), *more, hosted._list_scope(model_group))

    def get(self, hosted, model_group, key: tuple):
        """The value kept under `key`, or `_MISSING`."""
        by_group = self._held.get(hosted)
        kept = None if by_group is None else by_group.get(model_group)
        return kept[1] if kept is not None and _same(kept[0], key) else _MISSING

    def put(self, hosted, model_group, key: tuple, value) -> None:
        by_group = self._held.get(hosted)
        if (
            by_group is None
            or len(by_group) >= self._MAX_GROUPS
            or any(not _same(kept[:-1], key[:-1]) for kept, _ in by_group.values())
        ):
            by_group = self._held[hosted] = {}  # one registry version (and minute) at a time
        by_group[model_group] = (key, value)


_MISSING = object()


def _same(kept: tuple, key: tuple) -> bool:
    return kept[0] is key[0] and kept[1:] == key[1:]


class _KeptAnswers:
    """What both replacement sets share: the control plane and step switch, counts, replacements,
    and the shadow comparison of a kept answer with litellm's."""

    def __init__(self, component: "RoutingComponent") -> None:
        self._control = component.control
        self._steps = component.steps
        self.counts: Counter = Counter()
        self._replacements: dict = {}

    def replacements(self) -> dict:
        return self._replacements

    def status(self) -> dict:
        return dict(sorted(self.counts.items()))

    def _settled(self, python, rust, **details):
        """litellm's answer; in shadow mode the one kept here is compared with it."""
        self._control.record_comparison(python, rust, python == rust, lambda capture_content: details)
        return python


class GroupUsageCounters(_KeptAnswers):
    """The routing component's replacements of `HostModelInfo._group_usage_counters` and of the
    prompt-management check (`litellm.router_rust.invoke.prompt_management.is_prompt_management_model`)."""

    def __init__(self, component: "RoutingComponent") -> None:
        from litellm.router_rust import core
        from litellm.router_rust.invoke import prompt_management, shaping
        from litellm.router_rust.surface import model_info

        super().__init__(component)
        self._model_info = model_info
        self._endpoint_port = core._EndpointPort
        self._as_dict = shaping.as_dict
        self._counters = _GroupListings()
        self._prompt_prefixes = _GroupListings()
        # counts: served, named (litellm's function ran), then declines by reason
        self.reference = vars(model_info.HostModelInfo)["_group_usage_counters"]
        self.reference_prompt = prompt_management.is_prompt_management_model
        self._replacements = {
            self.reference: _group_usage_counters(self),
            self.reference_prompt: _is_prompt_management_model(self),
        }

    def _declined(self, error: Exception) -> None:
        self.counts[error.args[0] if isinstance(error, _native.Unsupported) else "rust_error"] += 1
        self._control.rust_failed(error, python_serves=False)

    def counters(self, hosted, model_group):
        """The group's (tpm, rpm) counters as litellm's function names them now (or `None`)."""
        reference = self.reference
        if not self._steps.taken():
            return reference(hosted, model_group)
        try:
            minute = self._model_info.get_utc_datetime().strftime("%H-%M")
            key = self._counters.key(hosted, model_group, minute)
            kept = self._counters.get(hosted, model_group, key)
        except Exception as error:
            self._declined(error)
            return reference(hosted, model_group)
        if kept is not _MISSING:
            if self._steps.shadowing():
                return self._settled(
                    reference(hosted, model_group), kept, step="group_usage_counters", model_group=str(model_group)
                )
            self.counts["served"] += 1
            return kept
        counters = reference(hosted, model_group)
        # litellm read the minute itself: names of another minute (it rolled over meanwhile) are not kept.
        if counters is None or not counters[0] or counters[0][0].minute == minute:
            self._counters.put(hosted, model_group, key, counters)
        self.counts["named"] += 1
        return counters

    def prompt_management(self, core, model) -> bool:
        """`is_prompt_management_model`: the group's one deployment's provider prefix (kept per model
        list), looked up in litellm's known callbacks as litellm looks it up, now."""
        reference = self.reference_prompt
        if not self._steps.taken() or type(core) is not self._endpoint_port:
            return reference(core, model)
        try:
            hosted = core._core._hosted
            key = self._prompt_prefixes.key(hosted, model)
            prefix = kept = self._prompt_prefixes.get(hosted, model, key)
            if kept is _MISSING:
                prefix = self._prompt_prefix(hosted._core_get_model_list(model_name=model))
                self._prompt_prefixes.put(hosted, model, key, prefix)
            answer = prefix is not None and prefix in core.host.dynamic().known_custom_logger_compatible_callbacks
        except Exception as error:
            self._declined(error)
            return reference(core, model)
        if self._steps.shadowing():
            return self._settled(reference(core, model), answer, step="prompt_management", model_group=str(model))
        self.counts["prompt_listed" if kept is _MISSING else "prompt_served"] += 1
        return answer

    def _prompt_prefix(self, model_list) -> str | None:
        """The provider prefix `is_prompt_management_model` looks up: a group of exactly one
        deployment whose model is a string with a `/`; `None` where litellm answers False first."""
        if model_list is None or len(model_list) != 1:
            return None
        litellm_model = self._as_dict(model_list[0].get("litellm_params")).get("model")
        if not isinstance(litellm_model, str) or "/" not in litellm_model:
            return None
        return litellm_model.split("/")[0]


class TrackedDeployments(_KeptAnswers):
    """The routing component's replacement of `RustHealthCallbacks.deployment_tracks_usage`, and the
    wrap of `HostRegistry._invalidate_model_group_info_cache` that empties its answers."""

    def __init__(self, component: "RoutingComponent") -> None:
        from litellm import utils
        from litellm.router_rust.surface import health, registry

        super().__init__(component)
        self._utils = utils
        # Per host registry: (handle, registry version, cost-map generation, litellm's cache) -> answers.
        self._answers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # counts: served, asked (litellm's cache answered)
        self.reference = vars(health.RustHealthCallbacks)["deployment_tracks_usage"]
        self.reference_invalidate = vars(registry.HostRegistry)["_invalidate_model_group_info_cache"]
        self._replacements = {
            self.reference: _deployment_tracks_usage(self),
            self.reference_invalidate: _invalidate_model_group_info_cache(self),
        }

    def emptied(self, hosted) -> None:
        self._answers.pop(hosted, None)

    def tracks_usage(self, core, deployment_id, model_group) -> bool:
        """`deployment_tracks_usage`: litellm's answer, kept while litellm's cache would keep it."""
        if not self._steps.taken() or not isinstance(deployment_id, str) or not isinstance(model_group, str):
            return self.reference(core, deployment_id, model_group)
        try:
            hosted = core.__dict__["_hosted"]
            cached = hosted.cached_deployment_tracks_usage
            handle = hosted._live_handle()
            version = None if handle is None else handle.registry_version()
            key = (handle, version, self._utils.get_model_cost_mutation_generation(), cached)
            held = self._answers.get(hosted)
            if held is None or held[0] != key:
                held = self._answers[hosted] = (key, {})
        except Exception as error:
            self._control.rust_failed(error, python_serves=False)
            return self.reference(core, deployment_id, model_group)
        answers = held[1]
        answer = answers.get((deployment_id, model_group))
        if answer is not None:
            if self._steps.shadowing():
                python = self.reference(core, deployment_id, model_group)
                return self._settled(
                    python, answer, step="deployment_tracks_usage", deployment=deployment_id, model_group=model_group
                )
            self.counts["served"] += 1
            return answer
        self.counts["asked"] += 1
        try:
            answer = cached(deployment_id, model_group)
        except Exception:  # noqa: BLE001  # as `deployment_tracks_usage` reads it: not tracked, and not cached
            return False
        answers[(deployment_id, model_group)] = answer
        return answer


def _deployment_tracks_usage(tracked: TrackedDeployments):
    def deployment_tracks_usage(self, deployment_id: object, model_group: object) -> bool:
        return tracked.tracks_usage(self, deployment_id, model_group)

    return deployment_tracks_usage


def _invalidate_model_group_info_cache(tracked: TrackedDeployments):
    reference = tracked.reference_invalidate

    def _invalidate_model_group_info_cache(self) -> None:
        try:
            return reference(self)
        finally:
            tracked.emptied(self)

    return _invalidate_model_group_info_cache


def _group_usage_counters(access: GroupUsageCounters):
    def _group_usage_counters(self, model_group: str):
        return access.counters(self, model_group)

    return _group_usage_counters


def _is_prompt_management_model(access: GroupUsageCounters):
    def is_prompt_management_model(core, model: str) -> bool:
        return access.prompt_management(core, model)

    return is_prompt_management_model
