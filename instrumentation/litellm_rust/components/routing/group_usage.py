"""Group usage: the router's per-request usage work whose answers do not change between requests:
the names of a group's usage counters, the prompt-management check's read of the group, and whether
a deployment's usage is counted at all.

## The counters' names

litellm 1.110's router stamps the `x-ratelimit-remaining-*` headers on every response of a group that
sets tpm or rpm (`RustCore`'s `finish(_async)` -> `HostModelInfo._core_get_remaining_model_group_usage`
(`_sync`)), and `Router.get_model_group_usage` / `get_remaining_model_group_usage` read the same
counters. Every read first names the counters (`HostModelInfo._group_usage_counters`,
`litellm/router_rust/surface/model_info.py`): the group's model list, copied row by row, and a
frozen `UsageCounter` per deployment and kind, a cost that grows with the group and is larger than
litellm's native store's read of the counters.

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
handle (`no_registry_handle`). In rust mode the names are served; in shadow mode litellm's are
returned and compared with the names kept here (`served` / `named` count the two).

The same list is read once more per request, for the prompt-management check
(`litellm.router_rust.invoke.prompt_management.is_prompt_management_model`: a group of exactly one
deployment whose model's provider prefix is a known prompt-management callback), copying the whole
list to learn that the group has more than one. The provider prefix it looks up (or that there is
none) is kept the same way, per router, group, registry version and scope, and looked up in
litellm's known callbacks on every call, as litellm looks it up (`prompt_listed` / `prompt_served`).

## Whether a deployment's usage is counted

Every success asks `RustHealthCallbacks.deployment_tracks_usage` twice (the attempt, under the
deployment's model; the success callback, under its group), and each asks the host registry's
`cached_deployment_tracks_usage`: an `lru_cache` of 64 entries over `_deployment_tracks_usage`, whose
miss merges the deployment's model info. A router with more than 32 deployments asks for more keys
than it holds, so most successes miss. Here the answers litellm's cache gave are kept for as long as
litellm's would be valid: per router, for one registry version, one `litellm.model_cost` mutation
generation and one `cached_deployment_tracks_usage` object, and emptied whenever litellm empties its
own (`HostRegistry._invalidate_model_group_info_cache`, wrapped). A miss here asks litellm's cache;
an answer it raised for (which litellm reads as not tracked) is not kept, as `lru_cache` keeps none.
Every answer is one litellm's cache gave since it was last emptied; the one difference is for a
deployment litellm's cache would have evicted by the next request: it recomputes, and a change its
inputs saw without emptying the cache (a cost-map entry edited in place, which litellm's own cache
does not see either while it holds the entry) would show there first. In shadow mode litellm
answers and is compared (`served` / `asked` count the answers kept and litellm's cache asked).

These are separate from the picks (`routing`): they run once or twice per request whatever the
routing strategy, on the registry rather than on a strategy's state.
"""

import weakref
from collections import Counter

from litellm_rust._component import Component
from litellm_rust._control import LITELLM_SERVES, Site, decline, standing_in_for
from litellm_rust._litellm import GROUP_USAGE


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
            decline("unindexed_group")  # `_core_get_model_list` asks the pattern routers
        if hosted._core_routing_groups:
            decline("routing_groups")  # a callable group's members can change between reads
        handle = hosted._live_handle()
        if handle is None:
            decline("no_registry_handle")
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


_MISSING = object()


def _same(kept: tuple, key: tuple) -> bool:
    return kept[0] is key[0] and kept[1:] == key[1:]


class GroupUsageComponent(Component):
    name = "group_usage"

    def __init__(self) -> None:
        super().__init__()
        surface = GROUP_USAGE
        self._endpoint_port = surface.endpoint_port
        self._as_dict = surface.as_dict
        self._counters = _GroupListings()
        self._prompt_prefixes = _GroupListings()
        # Per host registry: (handle, registry version, cost-map generation, litellm's cache) -> answers.
        self._tracked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._model_cost_generation = surface.model_cost_mutation_generation
        # counts: served, named (litellm's function ran), prompt_listed, prompt_served
        self.usage_counts: Counter = Counter()
        # counts: served, asked (litellm's cache answered)
        self.tracked_counts: Counter = Counter()
        self.reference = vars(surface.host_model_info)["_group_usage_counters"]
        self.reference_prompt = surface.is_prompt_management_model
        self.reference_tracks = vars(surface.health_callbacks)["deployment_tracks_usage"]
        self.reference_invalidate = vars(surface.host_registry)["_invalidate_model_group_info_cache"]

    def sites(self):
        yield Site(
            self.reference,
            self.counters,
            describe=lambda capture_content, hosted, model_group: {"model_group": str(model_group)},
            shadow=self.kept_counters,
        )
        yield Site(
            self.reference_prompt,
            self.prompt_management,
            serves=lambda core, model: type(core) is self._endpoint_port,
            describe=lambda capture_content, core, model: {"prompt_management": str(model)},
            shadow=lambda core, model: self._prompt_answer(core, model)[0],
        )
        yield Site(
            self.reference_tracks,
            self.tracks_usage,
            serves=_named_by_strings,
            describe=lambda capture_content, core, deployment_id, model_group: {
                "deployment": deployment_id,
                "model_group": model_group,
            },
            shadow=lambda core, deployment_id, model_group: self._tracks_usage(core, deployment_id, model_group)[0],
        )

    def wrappers(self):
        reference = self.reference_invalidate
        emptied = self._tracked.pop

        def _invalidate_model_group_info_cache(self) -> None:
            try:
                return reference(self)
            finally:
                emptied(self, None)

        return {reference: standing_in_for(reference, _invalidate_model_group_info_cache)}

    def status(self) -> dict:
        return {
            **super().status(),
            "usage_counters": dict(sorted(self.usage_counts.items())),
            "deployment_tracks_usage": dict(sorted(self.tracked_counts.items())),
        }

    # -- the counters' names ---------------------------------------------------------------------

    def _kept(self, hosted, model_group) -> tuple:
        """The names kept for the group now (or `_MISSING`), under the key and minute they need."""
        minute = GROUP_USAGE.live("utc_now")().strftime("%H-%M")
        key = self._counters.key(hosted, model_group, minute)
        return self._counters.get(hosted, model_group, key), key, minute

    def counters(self, hosted, model_group):
        """The group's (tpm, rpm) counters as litellm's function names them now (or `None`)."""
        kept, key, minute = self._kept(hosted, model_group)
        if kept is not _MISSING:
            self.usage_counts["served"] += 1
            return kept
        return self._named(hosted, model_group, key, minute)

    def kept_counters(self, hosted, model_group):
        """In shadow mode, the names kept (compared with litellm's); a miss is named and kept."""
        kept, key, minute = self._kept(hosted, model_group)
        if kept is _MISSING:
            self._named(hosted, model_group, key, minute)
            return LITELLM_SERVES
        return kept

    def _named(self, hosted, model_group, key: tuple, minute: str):
        counters = self.reference(hosted, model_group)
        # litellm read the minute itself: names of another minute (it rolled over meanwhile) are not kept.
        if counters is None or not counters[0] or counters[0][0].minute == minute:
            self._counters.put(hosted, model_group, key, counters)
        self.usage_counts["named"] += 1
        return counters

    # -- the prompt-management check -------------------------------------------------------------

    def prompt_management(self, core, model) -> bool:
        answer, listed = self._prompt_answer(core, model)
        self.usage_counts["prompt_listed" if listed else "prompt_served"] += 1
        return answer

    def _prompt_answer(self, core, model) -> tuple[bool, bool]:
        """`is_prompt_management_model`: the group's one deployment's provider prefix (kept per model
        list), looked up in litellm's known callbacks as litellm looks it up, now; and whether the
        model list was read for it."""
        hosted = core._core._hosted
        key = self._prompt_prefixes.key(hosted, model)
        prefix = kept = self._prompt_prefixes.get(hosted, model, key)
        if kept is _MISSING:
            prefix = self._prompt_prefix(hosted._core_get_model_list(model_name=model))
            self._prompt_prefixes.put(hosted, model, key, prefix)
        answer = prefix is not None and prefix in core.host.dynamic().known_custom_logger_compatible_callbacks
        return answer, kept is _MISSING

    def _prompt_prefix(self, model_list) -> str | None:
        """The provider prefix `is_prompt_management_model` looks up: a group of exactly one
        deployment whose model is a string with a `/`; `None` where litellm answers False first."""
        if model_list is None or len(model_list) != 1:
            return None
        litellm_model = self._as_dict(model_list[0].get("litellm_params")).get("model")
        if not isinstance(litellm_model, str) or "/" not in litellm_model:
            return None
        return litellm_model.split("/")[0]

    # -- whether a deployment's usage is counted -------------------------------------------------

    def tracks_usage(self, core, deployment_id, model_group) -> bool:
        """`deployment_tracks_usage`: litellm's answer, kept while litellm's cache would keep it."""
        answer, kept = self._tracks_usage(core, deployment_id, model_group)
        if kept:
            self.tracked_counts["served"] += 1
        return answer

    def _tracks_usage(self, core, deployment_id: str, model_group: str) -> tuple[bool, bool]:
        """The answer, and whether it was kept here (else litellm's cache was asked)."""
        hosted = core.__dict__["_hosted"]
        cached = hosted.cached_deployment_tracks_usage
        handle = hosted._live_handle()
        version = None if handle is None else handle.registry_version()
        key = (handle, version, self._model_cost_generation(), cached)
        held = self._tracked.get(hosted)
        if held is None or held[0] != key:
            held = self._tracked[hosted] = (key, {})
        answers = held[1]
        answer = answers.get((deployment_id, model_group))
        if answer is not None:
            return answer, True
        self.tracked_counts["asked"] += 1
        try:
            answer = cached(deployment_id, model_group)
        except Exception:  # noqa: BLE001  # as `deployment_tracks_usage` reads it: not tracked, and not cached
            return False, False
        answers[(deployment_id, model_group)] = answer
        return answer, False


def _named_by_strings(core, deployment_id: object, model_group: object) -> bool:
    return isinstance(deployment_id, str) and isinstance(model_group, str)
