"""Parallel slots: the router's `max_parallel_requests` slots taken in one native call.

litellm's router core holds a deployment's slot around each async attempt
(`litellm/router_rust/invoke/slots.py`: `enter_deployment_slot`, `deployment_slot`, and the lookup
`max_parallel_requests_limit` behind them); looking the limit up costs litellm far more than taking
the slot. The count stays on litellm's own `MaxParallelRequestsLimit` (Rust increments its
`in_flight` in place), so every holder of the object shares one count. Whatever litellm's lookup
would build, rebuild or read differently goes through its own lookup; a full deployment goes to
litellm's `enter_deployment_slot`, so the 429 is litellm's own.
"""

from litellm_rust import _native
from litellm_rust._component import Component
from litellm_rust._control import LITELLM_SERVES, Site
from litellm_rust._litellm import PARALLEL_SLOTS, deployment_id

_REPLACED = ("max_parallel_requests_limit", "enter_deployment_slot", "deployment_slot")


class ParallelSlotsComponent(Component):
    name = "parallel_slots"

    def __init__(self) -> None:
        super().__init__()
        surface = PARALLEL_SLOTS
        self.error = surface.litellm.RateLimitError
        self.references = {name: getattr(surface.slots, name) for name in _REPLACED}
        self.slots = _native.ParallelSlots(
            self.stats,
            lookup=self.references["max_parallel_requests_limit"],
            limit_type=surface.max_parallel_requests_limit,
            dual_cache_type=surface.dual_cache,
            in_memory_cache_type=surface.in_memory_cache,
            slotted_kinds=surface.slotted_kinds,
            logging=surface.logging,
        )

    def sites(self):
        slots = self.slots
        refusal = (self.error,)
        yield Site(
            self.references["max_parallel_requests_limit"],
            slots.limit,
            request_key=lambda core, deployment, kwargs: deployment_id(deployment),
            describe=lambda capture_content, core, deployment, kwargs: _description(None, deployment),
        )
        yield Site(
            self.references["enter_deployment_slot"],
            lambda core, plan, deployment, kwargs: _slot_or_litellm(slots.enter(core, plan, deployment, kwargs)),
            request_key=lambda core, plan, deployment, kwargs: deployment_id(deployment),
            describe=lambda capture_content, core, plan, deployment, kwargs: _description(plan, deployment),
            answers=refusal,
            # Compared on the slots as they are before litellm's enter takes one.
            shadow=slots.peek,
        )
        yield Site(
            self.references["deployment_slot"],
            lambda core, deployment, kwargs: _slot_or_litellm(slots.enter(core, None, deployment, kwargs)),
            request_key=lambda core, deployment, kwargs: deployment_id(deployment),
            describe=lambda capture_content, core, deployment, kwargs: _description(None, deployment),
            answers=refusal,
            shadow=lambda core, deployment, kwargs: slots.peek(core, None, deployment, kwargs),
        )

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


def _slot_or_litellm(slot):
    """No slot: every slot is taken, and litellm's own path raises its 429."""
    return LITELLM_SERVES if slot is None else slot


def _held(stack) -> object:
    """The limit whose slot litellm's `ExitStack` holds: `enter_context` pushes its bound `__exit__`."""
    callbacks = stack._exit_callbacks
    return getattr(callbacks[-1][1], "__self__", None) if callbacks else None


def _description(plan, deployment: object) -> dict:
    return {"plan": getattr(plan, "endpoint", None), "id": deployment_id(deployment)}
