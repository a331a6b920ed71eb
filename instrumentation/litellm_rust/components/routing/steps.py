"""The router-core steps around a served pick, answered without the Python glue that costs.

litellm 1.110's `RustCore` drives a native selection loop and answers its steps in Python. Around a
strategy pick, three answers cost more than the pick itself (profiled at 100 deployments):

* `RustCore._strategy_inputs` builds every candidate's dict on every pick. Here the candidates are
  the router core's shared records (`records`), which the Rust pick only reads.
* The cooldown read (`RoutingStores.batch_get(_sync)`, whose `_cooldown_ids` runs a generator per
  key) is answered from the cooldown store's live entries (`snapshot`): the deployments it holds are
  read through the store's own `active_sync` (its expiry), every other key is no cooldown.
* `RustCore._usage_read_scope` reads the group's model list on every async pick and keeps it only
  for usage-based-routing-v2. With no request override and no routing groups the strategy is the
  router's own, and for latency, cost and least-busy the read is skipped.

Everything else stays litellm's: selector lookup, the encrypted-content pin, reservations, service
logging, override pre-call checks, the answer handed back to the core. Only the steps of the served
strategies are the component's (`Site.serves`); a step the Rust path declines is answered by
litellm and counted by reason (`duplicate_ids`: candidates that share an id come as records;
`encrypted_content_pin`; `redis_cache`; `unsupported_cache`; `prefetched_cooldowns`).

Each step stands on its own, so the rollout can take any of them separately: litellm's own pick
gets fresh dicts for shared records, and a Rust pick over litellm's candidates reads them in place.
In shadow mode litellm answers every step as shipped: its strategy candidates are handed to the
pick with the shared records of the same ids (so the shadowed Rust pick reads what the Rust path
would), and the cooldown answer is compared with litellm's.
"""

from contextlib import nullcontext

from litellm_rust import _native
from litellm_rust._control import LITELLM_SERVES, Control, Site, decline, nothing_to_compare
from litellm_rust._litellm import ROUTING
from litellm_rust.components.routing.records import SERVED_STRATEGIES, RecordsByCore, SharedCandidates, share

# The served strategies whose pick reads no usage counters alongside the cooldowns.
_WITHOUT_USAGE_READ = SERVED_STRATEGIES - {"usage-based-routing-v2"}
_REPLACED = ("_strategy_inputs", "_answer_cache", "_answer_cache_sync", "_usage_read_scope")


class RoutingSteps:
    """The routing component's sites of `RustCore`'s step answers."""

    def __init__(self, control: Control, records: RecordsByCore) -> None:
        surface = ROUTING
        self._control = control
        self._records = records
        self._plain = surface.plain
        self._usage_read = surface.usage_read
        self._cooldown_store_type = surface.cooldown_store
        self._request_batches = surface.active_request_redis_batches
        self._prefetched_cooldowns_slot = surface.prefetched_cooldowns_slot
        self._normalize_strategy = surface.normalize_strategy
        methods = vars(surface.rust_core)
        self.reference = {name: methods[name] for name in _REPLACED}

    def sites(self):
        yield Site(
            self.reference["_strategy_inputs"],
            self.shared_strategy_inputs,
            python=self.litellm_strategy_inputs,
            serves=_strategy_step,
            request_key=_request_key,
            shadow=nothing_to_compare,  # its shadow mode hands the pick the records (`litellm_strategy_inputs`)
        )
        for name, rust in (
            ("_answer_cache", self.cooldown_answer_awaiting_usage),
            ("_answer_cache_sync", self.cooldown_answer),
        ):
            yield Site(
                self.reference[name],
                rust,
                serves=self.is_cooldown_read,
                describe=_describe_cooldown_read,
                shadow=self.cooldown_answer,
            )
        yield Site(
            self.reference["_usage_read_scope"],
            _no_usage_read,
            serves=self.skips_usage_read,
            request_key=_request_key,
            shadow=nothing_to_compare,
        )

    def _router_strategy(self, core) -> str | None:
        return self._normalize_strategy(core._resolved.routing_strategy)

    # -- the strategy stage ----------------------------------------------------------------------

    def _shared(self, core, step, request) -> SharedCandidates:
        """The shared records of the step's candidates, listed as themselves."""
        if step.get("records") is not None:
            decline("duplicate_ids")
        if request.get("_encrypted_content_affinity_pinned"):
            decline("encrypted_content_pin")  # the pin takes no strategy pick
        ids = step.get("candidates")
        if type(ids) is not list:
            decline("unsupported_deployment")
        source = self._records.of(core)
        records = source.records(ids)
        return SharedCandidates(records, records, ids, source)

    def shared_strategy_inputs(self, core, step, request):
        """`_strategy_inputs` with the shared records as the candidates."""
        shared = self._shared(core, step, request)
        # litellm's own strategy, selector and keyed name, derived over no candidates.
        inputs = self.reference["_strategy_inputs"](core, {**step, "candidates": []}, request)
        share(shared)
        return (*inputs[:3], shared.records)

    def litellm_strategy_inputs(self, core, step, request):
        """litellm's `_strategy_inputs`; in shadow mode its candidates are handed to the pick with
        the shared records of the same ids, which the shadowed Rust pick reads."""
        inputs = self.reference["_strategy_inputs"](core, step, request)
        if self._control.shadowing:
            try:
                shared = self._shared(core, step, request)
            except Exception as error:
                self._control.rust_failed(error, python_serves=False)
            else:
                share(shared._replace(listed=inputs[3]))
        return inputs

    # -- the cooldown read -----------------------------------------------------------------------

    def is_cooldown_read(self, core, step) -> bool:
        """A batch read, in a router whose strategy is served (its keys may still be others)."""
        return (
            step.get("op") == "batch_get"
            and type(step.get("keys")) is list
            and self._router_strategy(core) in SERVED_STRATEGIES
        )

    def cooldown_answer(self, core, step) -> object:
        """The answer to a batch read of cooldown keys."""
        keys = step["keys"]
        store = core._cooldowns.cooldown_store
        if type(store) is not self._cooldown_store_type:
            decline("unsupported_cache")
        if store.has_redis:
            decline("redis_cache")
        batches = self._request_batches()
        if batches is not None and self._prefetched_cooldowns_slot in batches.prefetched:
            decline("prefetched_cooldowns")
        cooling = _native.cooling_keys(keys, store.snapshot())
        if cooling is None:
            return LITELLM_SERVES  # not a cooldown read
        answer = [None] * len(keys)
        if not cooling:
            return answer
        active = dict(store.active_sync([deployment_id for _, deployment_id in cooling]))
        for position, deployment_id in cooling:
            answer[position] = active.get(deployment_id)
        return self._plain(answer)  # the cooldown values as litellm hands them to the core

    def cooldown_answer_awaiting_usage(self, core, step) -> object:
        """`cooldown_answer` for the async read; a usage-based-routing-v2 pick's counters are read
        with its cooldowns (`_stored_with_usage`), so that read is awaited with the answer."""
        answer = self.cooldown_answer(core, step)
        usage_read = self._usage_read.get()
        if usage_read is None or answer is LITELLM_SERVES:
            return answer
        return _after_usage_read(answer, *usage_read)

    # -- the usage read scope --------------------------------------------------------------------

    def skips_usage_read(self, core, model, request) -> bool:
        """Whether `_usage_read_scope` would read the model list only to drop it: the pick's strategy
        is the router's own (no override, no routing groups) and reads no usage counters."""
        return (
            not (request and request.get("routing_strategy") is not None)
            and not core._hosted._core_routing_groups
            and self._router_strategy(core) in _WITHOUT_USAGE_READ
        )


async def _after_usage_read(answer: object, batch, deployments) -> object:
    await batch.read_usage(deployments, None)
    return answer


def _strategy_step(core, step, request) -> bool:
    return step.get("stage") == "strategy" and step.get("strategy") in SERVED_STRATEGIES


def _request_key(core, step_or_model, request) -> str | None:
    call_id = request.get("litellm_call_id") if isinstance(request, dict) else None
    return call_id if isinstance(call_id, str) else None


def _no_usage_read(core, model, request):
    return nullcontext()


def _describe_cooldown_read(capture_content: bool, core, step) -> dict:
    return {"step": "cooldowns", "keys": len(step.get("keys") or ())}
