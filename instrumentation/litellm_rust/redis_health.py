"""Whether the shared (Redis) rate limits reach Redis: one record for the process.

`RateLimiter` is usable without the instrumentor, so it reports its Redis outcomes here rather
than to the control plane: every failed call, and the first answer after a failure. The record's
instrument exports the error count (`litellm_rust.redis.errors`), and its listener, the control
plane, emits the events of an outage's start and end.
"""

import threading
from collections.abc import Callable, Mapping

from litellm_rust.telemetry import ERROR_TYPE, OPERATION, Observable

# The metric and events are labelled with the rate-limiting operation, as dashboards and alert rules expect.
_ATTRIBUTES = {OPERATION: "rate_limits"}


class RedisHealth:
    """Shared-limit calls Redis failed, whether the last one reached it, and who hears of changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.errors = 0
        """Shared-limit calls Redis did not answer (the fail mode decided them)."""
        self.available = True
        """Whether the last call reached Redis. Callers report a success only while this is
        False, so a healthy Redis costs one attribute read per call."""
        self._listeners: list[Callable[[str, Mapping[str, object]], None]] = []

    def on_event(self, listener: Callable[[str, Mapping[str, object]], None]) -> None:
        """Call `listener(name, attributes)` with an event when Redis stops answering
        (`litellm_rust.redis.unavailable`, the error its `error.type`) and when it answers again
        (`litellm_rust.redis.available`): the start and the end of an outage, not every failed call."""
        self._listeners.append(listener)

    def record(self, error: str | None) -> None:
        """One shared-limit call's outcome: its Redis error, or None."""
        with self._lock:
            if error is not None:
                self.errors += 1
            changed = self.available != (error is None)
            self.available = error is None
        if not changed:
            return
        if error is None:
            name, attributes = "litellm_rust.redis.available", _ATTRIBUTES
        else:
            name, attributes = "litellm_rust.redis.unavailable", {**_ATTRIBUTES, ERROR_TYPE: error[:200]}
        for listener in self._listeners:
            listener(name, attributes)

    def instruments(self) -> list[Observable]:
        return [
            Observable(
                "litellm_rust.redis.errors",
                "counter",
                "{call}",
                "Shared (Redis) rate-limit calls Redis did not answer; the fail mode decided them.",
                lambda: [(self.errors, _ATTRIBUTES)],
            )
        ]


REDIS_HEALTH = RedisHealth()
