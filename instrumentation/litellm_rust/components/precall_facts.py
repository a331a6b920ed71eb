"""Pre-call facts: each deployment's context window and the group's tokenizer model, as the router's
pre-call checks read them, kept while litellm's own answer would be the same.

litellm 1.110's Rust core decides the `enable_pre_call_checks` filter and asks Python for its facts
on a `pre_call` step (`litellm.router_rust.steps.precall.PreCallFacts`). Building them asks every
candidate deployment's window on every request: `_max_input_tokens(registry, model, deployment)`
-> `HostModelInfo._core_get_router_model_info`, a model-info merge driven step by step between
litellm's native core and Python (the provider, the cost-map row converted to the core's wire form
and back, the deployment's own model info, what discovery found): ~250 µs per deployment, half of
a proxy request's CPU at 100 deployments.

## What the answer depends on, and the key it is kept under

The merge reads the deployment (its `model_info` and `litellm_params`), the group it was asked for,
litellm's provider resolution and `get_model_info` (looked up on `litellm` at call time), the cost
map (`litellm.model_cost`, whose every mutation through litellm moves its mutation generation),
the wildcard patterns of the registry, and the limits background discovery found for the
deployment (`_discovered_model_info_cache`, an in-memory cache whose entries expire). Here an answer
is litellm's own function's, kept per registry under:

* the registry's native handle and its `registry_version`, which every model-list change moves, an
  edit in place of a held entry (or of a dict inside it) included;
* the `litellm.model_cost` object and its mutation generation (`register_model`, a cost-map reload);
* the `litellm.get_model_info` and `litellm.get_llm_provider` objects litellm would call;
* the levels of the loggers the merge logs to (below);
* per answer: the deployment object itself (held, so its id is not reused; only the registry's own
  entries, whose writes move the version, are kept: any other dict is litellm's to read, counted),
  the group name, and the discovered-limits entry for the deployment's id, read on every call as
  litellm's merge reads it (an entry that expires or is replaced is a different key).

The aliases are not read by this merge (a pre-call step names the resolved group); an alias change
moves nothing here, and the tests check that the answers stay litellm's across one.

What litellm's own caches of the same merge (`_core_cached_deployment_model_info`, and
`get_model_info`'s `lru_cache` under it) do not see either is not seen here: a global litellm's
provider resolution reads (its provider lists, `custom_provider_map`) or a cost-map entry changed in
place without going through litellm's functions.

## The tokenizer model

The same step names the model the prompt is counted with (`PreCallFacts._tokenizer_model`): every
deployment the group's name indexes, renamed for the requested model, its served model checked
against the cost map and the tokenizer tables (~10 µs per deployment, every request that counts).
It reads the registry and the cost map only, so it is kept per group and requested name in the same
store. A group no deployment is named by (a wildcard route) is counted with the request's candidates
instead: litellm answers those (`unnamed_group`).

## Logs

litellm logs while it answers, on `LiteLLM Router`: the merge's own lines (an Azure deployment
without a base model logs an error on every request) and the debug line of a deployment it skips.
Those are logged on every call of litellm's function, so the lines computing a kept answer logged
are logged again, as new records with the same logger, level, message, arguments and source line,
each time the answer is served. A line on `LiteLLM` (the cost-map lookups under the merge) is logged
by litellm only when its own `get_model_info` cache misses: an answer whose computation logged one is
not kept (`windows["relogged"]`), and the next call asks litellm again, as it would. The loggers'
levels are part of the key, so lowering one computes the answers again with the lines it now shows.

## Why no native store

Every part of the key is a Python object read through Python (the handle, versions, the cache entry,
logger levels); a native map would take the same reads plus a crossing per deployment, while the dict
lookup is ~50 ns of a ~2 µs call. The honest speed-up is not recomputing: this component is Python.

In shadow mode litellm answers every call and the window kept here is compared with it (a miss is
computed by litellm's function, kept, and not compared).
"""

import logging
import threading
import weakref
from collections import Counter

from litellm_rust._component import Component
from litellm_rust._control import LITELLM_SERVES, Site, decline
from litellm_rust._litellm import PRECALL_FACTS

# Answers kept per registry and key (a deployment under every group name it is asked for: wildcard
# routes are asked under the requested names); past this the store starts afresh.
_MAX_ANSWERS = 8192


class _Capture(logging.Filter):
    """The records logged on the thread that computes an answer: the ones litellm logs on every call
    (`lines`), and whether any other was (`other`)."""

    def __init__(self, every_call: str) -> None:
        super().__init__()
        self.thread = threading.get_ident()
        self.every_call = every_call
        self.lines: list[logging.LogRecord] = []
        self.other = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread == self.thread:
            if record.name == self.every_call:
                self.lines.append(record)
            else:
                self.other = True
        return True


class _Store:
    """One registry's kept answers, under the state every one of them was computed at."""

    __slots__ = ("state", "model_cost", "answers", "tokenizers")

    def __init__(self, state: tuple, model_cost) -> None:
        self.state = state
        # Held: the state names it by id (a tuple of plain values compares in one step; a dict
        # would be compared item by item), and an object alive keeps its id.
        self.model_cost = model_cost
        # (id(deployment), group) -> (deployment, discovered entry, window, the lines to log again)
        self.answers: dict[tuple[int, str], tuple] = {}
        # (group, requested name) -> (tokenizer model, the lines to log again), or `_CANDIDATES`
        self.tokenizers: dict[tuple[str, str], object] = {}


class PreCallFactsComponent(Component):
    name = "precall_facts"

    def __init__(self) -> None:
        super().__init__()
        surface = PRECALL_FACTS
        self.reference = surface.max_input_tokens
        self._litellm = surface.litellm
        self._hosted_entry = surface.hosted_entry
        self._core_live_handle = vars(surface.rust_core)["_live_handle"]
        self._handle_type = surface.router_core_handle
        self._generation = surface.model_cost_mutation_generation
        self._loggers = (surface.verbose_logger, surface.verbose_router_logger)
        self._every_call = surface.verbose_router_logger.name
        self._manager = logging.Logger.manager
        self.reference_tokenizer = vars(surface.pre_call_facts)["_tokenizer_model"]
        self._stores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # counts per kind of answer: served (kept), kept (litellm's function computed one and it
        # was kept), relogged (computed, not kept: a line litellm's own caches decide whether to
        # log again)
        self.window_counts: Counter = Counter()
        self.tokenizer_counts: Counter = Counter()

    def sites(self):
        yield Site(
            self.reference,
            self.window,
            describe=_describe,
            shadow=self.kept_window,
        )
        yield Site(
            self.reference_tokenizer,
            self.tokenizer_model,
            describe=lambda capture_content, facts: {"model_group": str(facts._model), "model": str(facts._name)},
            shadow=self.kept_tokenizer_model,
        )

    def status(self) -> dict:
        return {
            **super().status(),
            "windows": dict(sorted(self.window_counts.items())),
            "tokenizer_models": dict(sorted(self.tokenizer_counts.items())),
        }

    # -- the windows ------------------------------------------------------------------------------

    def window(self, registry, model, deployment):
        """`_max_input_tokens`: the window kept for the deployment, else litellm's, kept."""
        kept, store, key, discovered = self._kept(registry, model, deployment)
        if kept is _MISSING:
            return self._computed(registry, model, deployment, store, key, discovered)
        window, lines = kept
        _log_again(lines)
        self.window_counts["served"] += 1
        return window

    def kept_window(self, registry, model, deployment):
        """In shadow mode, the window kept (compared with litellm's); a miss is computed and kept."""
        kept, store, key, discovered = self._kept(registry, model, deployment)
        if kept is _MISSING:
            self._computed(registry, model, deployment, store, key, discovered)
            return LITELLM_SERVES
        return kept[0]

    def _kept(self, registry, model, deployment) -> tuple:
        """The kept answer (or `_MISSING`), the registry's store now, the answer's key and the
        discovered-limits entry it is kept with; declines what is not kept here."""
        if type(deployment) is not self._hosted_entry or deployment._written.__self__ is not registry._core_model_list:
            decline("unheld_deployment")  # a dict whose edits would not move the registry's version
        if type(model) is not str:
            decline("unkeyed_lookup")
        deployment_id = (deployment.get("model_info") or {}).get("id")
        if type(deployment_id) is not str:
            decline("unkeyed_lookup")  # the discovered limits are looked up under it
        store = self._store(registry)
        cache = registry._discovered_model_info_cache
        # `get_cache` answers None for an id its dict does not hold, without reading the clock.
        discovered = cache.get_cache(deployment_id) if deployment_id in cache.cache_dict else None
        key = (id(deployment), model)
        held = store.answers.get(key)
        if held is not None and held[0] is deployment and held[1] is discovered:
            return held[2:], store, key, discovered
        return _MISSING, store, key, discovered

    def _store(self, registry) -> _Store:
        """The registry's store for the state litellm's answers now depend on."""
        handle = self._handle(registry)
        if handle is None:
            decline("no_registry_handle")
        litellm = self._litellm
        model_cost = litellm.model_cost
        first, second = self._loggers
        # Read before litellm's function runs: a change while it runs misses next time.
        state = (
            handle,
            handle.registry_version(),
            self._generation(),
            id(model_cost),
            litellm.get_model_info,
            litellm.get_llm_provider,
            first.getEffectiveLevel(),
            first.disabled,
            second.getEffectiveLevel(),
            second.disabled,
            self._manager.disable,
        )
        store = self._stores.get(registry)
        if store is None or store.state != state or store.model_cost is not model_cost:
            store = self._stores[registry] = _Store(state, model_cost)
        return store

    def _handle(self, registry):
        """`registry._live_handle()`: for a registry whose lookup is its `RustCore`'s, the handle that
        lookup returns, read without the import it makes on every call (~4 µs, paid per deployment)."""
        lookup = registry.handle_lookup
        if getattr(lookup, "__func__", None) is self._core_live_handle:
            handle = lookup.__self__.__dict__.get("_handle")
            return handle if isinstance(handle, self._handle_type) else None
        return registry._live_handle()

    def _computed(self, registry, model, deployment, store: _Store, key: tuple, discovered):
        """litellm's window, kept with the lines it logged on every-call loggers (see Logs)."""
        window, lines = self._logged(self.reference, registry, model, deployment)
        if lines is None:
            self.window_counts["relogged"] += 1
            return window
        answers = store.answers
        if len(answers) >= _MAX_ANSWERS:
            answers.clear()
        answers[key] = (deployment, discovered, window, lines)
        self.window_counts["kept"] += 1
        return window

    def _logged(self, function, *args) -> tuple:
        """`function`'s answer and the lines it logged on the every-call logger, or None for the
        lines when it logged another (see Logs)."""
        capture = _Capture(self._every_call)
        for logger in self._loggers:
            logger.addFilter(capture)
        try:
            answer = function(*args)
        finally:
            for logger in self._loggers:
                logger.removeFilter(capture)
        return answer, None if capture.other else tuple(capture.lines)

    # -- the tokenizer model ----------------------------------------------------------------------

    def tokenizer_model(self, facts):
        """`PreCallFacts._tokenizer_model`: the model the prompt is counted with, kept per group and
        requested name; litellm's where it reads the candidates (a group no deployment is named by)."""
        kept, store, key = self._kept_tokenizer(facts)
        if kept is _MISSING:
            return self._computed_tokenizer(facts, store, key)
        if kept is _CANDIDATES:
            decline("unnamed_group")
        model, lines = kept
        _log_again(lines)
        self.tokenizer_counts["served"] += 1
        return model

    def kept_tokenizer_model(self, facts):
        """In shadow mode, the model kept (compared with litellm's); a miss is computed and kept."""
        kept, store, key = self._kept_tokenizer(facts)
        if kept is _MISSING:
            self._computed_tokenizer(facts, store, key)
            return LITELLM_SERVES
        return LITELLM_SERVES if kept is _CANDIDATES else kept[0]

    def _kept_tokenizer(self, facts) -> tuple:
        group, name = facts._model, facts._name
        if type(group) is not str or type(name) is not str:
            decline("unkeyed_lookup")
        store = self._store(facts._registry)
        key = (group, name)
        return store.tokenizers.get(key, _MISSING), store, key

    def _computed_tokenizer(self, facts, store: _Store, key: tuple):
        try:
            model, lines = self._logged(self.reference_tokenizer, facts)
        except Exception:  # noqa: BLE001  # litellm's own call raises it again, as it would
            decline("lookup_raised")
        if lines is None:
            self.tokenizer_counts["relogged"] += 1
            return model
        # Only a group no deployment is named by reads the candidates (`served_openai_models(named) or ...`).
        named = facts._registry._core_deployments_named(facts._model)
        tokenizers = store.tokenizers
        if len(tokenizers) >= _MAX_ANSWERS:
            tokenizers.clear()
        tokenizers[key] = (model, lines) if named else _CANDIDATES
        self.tokenizer_counts["kept"] += 1
        return model


_MISSING = object()
# Kept for a group whose tokenizer model litellm reads off the request's candidates.
_CANDIDATES = object()


def _log_again(lines: tuple) -> None:
    """Each line logged again where litellm logged it: same logger, level, message, arguments and
    source line, as a record of now."""
    for line in lines:
        logger = logging.getLogger(line.name)
        logger.handle(
            logger.makeRecord(
                line.name,
                line.levelno,
                line.pathname,
                line.lineno,
                line.msg,
                line.args,
                line.exc_info,
                line.funcName,
                None,
                line.stack_info,
            )
        )


def _describe(capture_content: bool, registry, model, deployment) -> dict:
    info = deployment.get("model_info") if isinstance(deployment, dict) else None
    return {"model_group": str(model), "deployment": str(info.get("id") if isinstance(info, dict) else None)}
