"""Parallel slots: the router's `max_parallel_requests` slots taken in one native call.

litellm 1.110's Rust router core holds a deployment's slot around each async attempt
(`litellm/router_rust/invoke/slots.py`: `enter_deployment_slot`, `deployment_slot`, and the lookup
`max_parallel_requests_limit` behind them and behind `_get_client(client_type=
"max_parallel_requests")`); an open chat stream takes the slot along (`ExitStack.pop_all`) until it
is exhausted or closed. Those three functions are replaced wherever they are bound (`core.py` and
`slots.py` copy them). The lookup alone costs litellm several µs per attempt (a pydantic copy of
`model_info`, three imports, a service-target context, `DualCache.get_cache` with a failing
`json.loads`), against ~0.2 µs for the acquire and release themselves.

The count stays on litellm's object. The `MaxParallelRequestsLimit` cached in the router's routing
cache keeps its `in_flight`, which Rust increments and decrements in place: whoever else holds the
object (a `_get_client` caller, a call served by Python in another mode or after a fallback) shares
one count, and nothing reads a second one. The object is read in the cache as litellm's lookup reads
it, on every call: a limit litellm has not built yet, one whose 600 s TTL expired (litellm then
builds a fresh one with the deployment's current limits, so an edited `max_parallel_requests`
takes effect when litellm's does), one replaced by `InitalizeCachedClient.set_max_parallel_requests_client`,
a deployment or request litellm reads differently, or verbose logging — all go through litellm's own
lookup, whose answer is then used the same way. A full deployment is handed to litellm's own
`enter_deployment_slot`, which raises its 429 (`MaxParallelRequestsLimit.acquire`), so the error is
litellm's own. The slot returned is a native `Slot` with the part of `contextlib.ExitStack` litellm
uses (`with`, `pop_all`, `close`).

Falls back to litellm (counted): a subclass of `MaxParallelRequestsLimit` (`subclassed_limit`), an
`in_flight` that is not an int (`unusual_in_flight`), a lookup litellm fails (`lookup_raised`: its own
path raises the error), and in shadow mode a limit litellm has not built yet (`first_use`: Rust only
compares, it builds nothing).
"""

from functools import partial

from litellm_rust import _native
from litellm_rust._component import Component
from litellm_rust.components.rate_limits import _deployment_id, _refused
from litellm_rust.components.routing import _reraise

_REPLACED = ("max_parallel_requests_limit", "enter_deployment_slot", "deployment_slot")


class ParallelSlotsComponent(Component):
    name = "parallel_slots"

    def __init__(self) -> None:
        super().__init__()
        import litellm
        import litellm._logging
        from litellm.caching.dual_cache import DualCache
        from litellm.caching.in_memory_cache import InMemoryCache
        from litellm.router_rust.invoke import slots
        from litellm.router_utils.client_initalization_utils import MaxParallelRequestsLimit

        self.error = litellm.RateLimitError
        self.references = {name: getattr(slots, name) for name in _REPLACED}
        self.slots = _native.ParallelSlots(
            self.stats,
            lookup=self.references["max_parallel_requests_limit"],
            limit_type=MaxParallelRequestsLimit,
            dual_cache_type=DualCache,
            in_memory_cache_type=InMemoryCache,
            slotted_kinds=slots._SLOTTED_KINDS,
            logging=litellm._logging,
        )
        self._replacements = {
            self.references["max_parallel_requests_limit"]: _accelerated_limit(self),
            self.references["enter_deployment_slot"]: _accelerated_enter_deployment_slot(self),
            self.references["deployment_slot"]: _accelerated_deployment_slot(self),
        }

    def replacements(self):
        return self._replacements

    def compare(self, python_result: object, rust_result: object) -> bool:
        """A lookup: the very object. A slot: litellm's stack holds the limit Rust would take (or
        none), or litellm refused where Rust found every slot taken."""
        if not isinstance(rust_result, tuple):
            return python_result is rust_result
        decision, limit = rust_result
        if isinstance(python_result, self.error):
            return decision == "full"
        held = _held(python_result)
        return (decision, limit) == ("no_slot", None) if held is None else decision == "admit" and held is limit


def _held(stack) -> object:
    """The limit whose slot litellm's `ExitStack` holds: `enter_context` pushes its bound `__exit__`."""
    callbacks = stack._exit_callbacks
    return getattr(callbacks[-1][1], "__self__", None) if callbacks else None


def _standing_in_for(original, replacement):
    replacement.__doc__ = original.__doc__
    replacement.__wrapped__ = original
    return replacement


def _describe(plan, deployment: object):
    return lambda capture_content: {"plan": getattr(plan, "endpoint", None), "id": _deployment_id(deployment)}


def _accelerated_limit(component: ParallelSlotsComponent):
    original = component.references["max_parallel_requests_limit"]
    control = component.control
    ticks = control.ticks
    limit = component.slots.limit

    def max_parallel_requests_limit(core, deployment, kwargs):
        if control.rust_fast and next(ticks) % control.timing_every:
            try:
                return limit(core, deployment, kwargs)
            except Exception as failure:
                control.rust_failed(failure)
                return original(core, deployment, kwargs)
        return control.serve(
            lambda: limit(core, deployment, kwargs),
            lambda: original(core, deployment, kwargs),
            request_key=_deployment_id(deployment),
            describe=_describe(None, deployment),
        )

    return _standing_in_for(original, max_parallel_requests_limit)


def _slot_taker(component: ParallelSlotsComponent):
    """Both slot functions' body: `python()` is litellm's own call with the same arguments."""
    control = component.control
    ticks = control.ticks
    enter = component.slots.enter
    peek = component.slots.peek
    error = component.error

    def take(core, plan, deployment, kwargs, python):
        if control.rust_fast and next(ticks) % control.timing_every:
            try:
                slot = enter(core, plan, deployment, kwargs)
            except Exception as failure:
                control.rust_failed(failure)
                return python()
            # None: every slot is taken, and litellm's own path raises its 429.
            return python() if slot is None else slot
        if control.settings.mode == "shadow":
            # Compared on the slots as they are before litellm's enter takes one.
            try:
                peeked = peek(core, plan, deployment, kwargs)
                run_rust = lambda: peeked  # noqa: E731
            except Exception as failure:
                run_rust = partial(_reraise, failure)
        else:
            run_rust = lambda: enter(core, plan, deployment, kwargs)  # noqa: E731
        decided = control.serve(
            run_rust,
            _refused(python, error),
            request_key=_deployment_id(deployment),
            describe=_describe(plan, deployment),
        )
        if isinstance(decided, error):
            raise decided
        return python() if decided is None else decided

    return take


def _accelerated_enter_deployment_slot(component: ParallelSlotsComponent):
    original = component.references["enter_deployment_slot"]
    take = _slot_taker(component)

    def enter_deployment_slot(core, plan, deployment, kwargs):
        return take(core, plan, deployment, kwargs, lambda: original(core, plan, deployment, kwargs))

    return _standing_in_for(original, enter_deployment_slot)


def _accelerated_deployment_slot(component: ParallelSlotsComponent):
    original = component.references["deployment_slot"]
    take = _slot_taker(component)

    def deployment_slot(core, deployment, kwargs):
        return take(core, None, deployment, kwargs, lambda: original(core, deployment, kwargs))

    return _standing_in_for(original, deployment_slot)
