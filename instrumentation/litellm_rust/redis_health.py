"""Whether the shared (Redis) rate limits reach Redis: one record for the process.

`RateLimiter` is usable without the instrumentor, so it reports its Redis outcomes here rather
than to the control plane: every failed call, and the first answer after a failure. Whoever cares
reads the record: telemetry exports the error count (`litellm_rust.redis.errors`), and the control
plane, a listener, turns the start and the end of an outage into telemetry events.
"""

import threading
from collections.abc import Callable

from litellm_rust.telemetry import OPERATION, Observable


class RedisHealth:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.errors = 0
        """Shared-limit calls Redis did not answer (the fail mode decided them)."""
        self.available = True
        """Whether the last call reached Redis. Callers report a success only while this is
        False, so a healthy Redis costs one attribute read per call."""
        self._listeners: list[Callable[[str | None], None]] = []

    def on_change(self, listener: Callable[[str | None], None]) -> None:
        """Call `listener(error)` when Redis stops answering, and `listener(None)` when it answers again."""
        self._listeners.append(listener)

    def record(self, error: str | None) -> None:
        """One shared-limit call's outcome: its Redis error, or None."""
        with self._lock:
            if error is not None:
                self.errors += 1
            changed = self.available != (error is None)
            self.available = error is None
        if changed:
            for listener in self._listeners:
                listener(error)

    def instruments(self) -> list[Observable]:
        return [
            Observable(
                "litellm_rust.redis.errors",
                "counter",
                "{call}",
                "Shared (Redis) rate-limit calls Redis did not answer; the fail mode decided them.",
                lambda: [(self.errors, {OPERATION: "rate_limits"})],
            )
        ]


REDIS_HEALTH = RedisHealth()
