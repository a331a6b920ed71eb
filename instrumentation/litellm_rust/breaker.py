"""A circuit breaker per component: takes the Rust path out of service when it misbehaves.

closed     Rust serves (per the component's mode and rollout).
open       Python serves. Entered when, over the sliding window, Rust errors, shadow mismatches
           or a latency regression pass their thresholds, or when forced by an external signal
           (the Alertmanager webhook). After `cool_off_seconds` it goes half-open, unless forced.
half_open  A `probe_rate` share of calls goes to Rust; `probes_to_close` successes in a row close
           the breaker, one failure opens it again.

The breaker only sees rare events (errors, mismatches, sampled timings) plus the native call
counter read at those moments, so the hot path pays nothing for it.
"""

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from litellm_rust.config import BreakerSettings

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
# Latency percentiles sort the window's samples: bound both the samples and how often.
_TIMINGS_PER_WINDOW = 2_000
_LATENCY_CHECK_SECONDS = 1.0
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


@dataclass(frozen=True)
class Transition:
    at: float
    """Wall-clock time (seconds since the epoch)."""
    from_state: str
    to_state: str
    reason: str

    def as_dict(self) -> dict:
        return {"at": self.at, "from": self.from_state, "to": self.to_state, "reason": self.reason}


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `samples` (non-empty): the smallest value with at least
    `fraction` of the samples at or below it."""
    ordered = sorted(samples)
    rank = math.ceil(fraction * len(ordered) - 1e-9)  # 0.95 * 100 is 95.00000000000001 in floats
    return ordered[min(len(ordered), max(rank, 1)) - 1]


class CircuitBreaker:
    def __init__(
        self,
        settings: BreakerSettings,
        on_transition: Callable[[Transition], None] = lambda transition: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.transitions: deque[Transition] = deque(maxlen=50)
        self._on_transition = on_transition
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Closed, with nothing remembered: no window, no forced opening, no transitions."""
        self.state = CLOSED
        self.forced = False
        self.transitions.clear()
        self._opened_at = 0.0
        self._probe_successes = 0
        self._errors: deque[float] = deque()
        self._mismatches: deque[float] = deque()
        self._comparisons: deque[float] = deque()
        self._call_counts: deque[tuple[float, int]] = deque()
        self._timings: dict[str, deque[tuple[float, float]]] = {
            implementation: deque(maxlen=_TIMINGS_PER_WINDOW) for implementation in ("rust", "python")
        }
        self._latency_checked_at = float("-inf")

    # -- what the component reports ---------------------------------------------------------

    def rust_error(self, rust_calls_total: int, reason: str) -> None:
        with self._lock:
            now = self._clock()
            self._errors.append(now)
            self._count_calls(now, rust_calls_total)
            if self.state == HALF_OPEN:
                self._open(f"probe failed: {reason}")
            else:
                self._evaluate(now)

    def comparison(self, rust_calls_total: int, matched: bool) -> None:
        with self._lock:
            now = self._clock()
            self._comparisons.append(now)
            if not matched:
                self._mismatches.append(now)
            self._count_calls(now, rust_calls_total)
            if self.state == HALF_OPEN and not matched:
                self._open("probe mismatched")
            else:
                self._evaluate(now)

    def timing(self, implementation: str, seconds: float, rust_calls_total: int) -> None:
        with self._lock:
            now = self._clock()
            self._timings[implementation].append((now, seconds))
            self._count_calls(now, rust_calls_total)
            self._evaluate(now)

    def probe_succeeded(self) -> None:
        with self._lock:
            if self.state != HALF_OPEN:
                return
            self._probe_successes += 1
            if self._probe_successes >= self.settings.probes_to_close:
                self._move(CLOSED, f"{self._probe_successes} probes succeeded")

    # -- what the router of calls asks -------------------------------------------------------

    def route_to_rust(self) -> bool:
        """Whether this call may use Rust: always when closed, a probe share when half-open."""
        state = self.state
        if state == CLOSED:
            return True
        if state == OPEN:
            if self.forced or self._clock() - self._opened_at < self.settings.cool_off_seconds:
                return False
            with self._lock:
                if self.state == OPEN and not self.forced:
                    self._move(HALF_OPEN, "cool-off elapsed")
        return random.random() < self.settings.probe_rate

    # -- external control --------------------------------------------------------------------

    def force_open(self, reason: str) -> None:
        with self._lock:
            self.forced = True
            if self.state != OPEN:
                self._open(f"forced: {reason}")

    def release(self, reason: str) -> None:
        """End a forced opening: back to probing, not straight to full Rust."""
        with self._lock:
            if not self.forced:
                return
            self.forced = False
            self._move(HALF_OPEN, f"released: {reason}")

    def status(self) -> dict:
        return {
            "state": self.state,
            "forced": self.forced,
            "transitions": [transition.as_dict() for transition in self.transitions],
        }

    # -- internals (lock held) ---------------------------------------------------------------

    def _count_calls(self, now: float, total: int) -> None:
        self._call_counts.append((now, total))

    def _trim(self, now: float) -> None:
        horizon = now - self.settings.window_seconds
        for events in (self._errors, self._mismatches, self._comparisons):
            while events and events[0] < horizon:
                events.popleft()
        for timings in self._timings.values():
            while timings and timings[0][0] < horizon:
                timings.popleft()
        # Keep the newest count at or before the horizon as the window's baseline.
        while len(self._call_counts) > 1 and self._call_counts[1][0] <= horizon:
            self._call_counts.popleft()

    def _evaluate(self, now: float) -> None:
        self._trim(now)
        if self.state != CLOSED:
            return
        settings = self.settings
        calls = self._call_counts[-1][1] - self._call_counts[0][1] if self._call_counts else 0
        calls = max(calls, len(self._errors))
        if calls >= settings.min_calls and len(self._errors) / calls > settings.max_error_rate:
            self._open(f"Rust error rate {len(self._errors)}/{calls} over {settings.window_seconds:g}s")
            return
        compared = len(self._comparisons)
        if self._mismatches and compared and len(self._mismatches) / compared > settings.max_mismatch_rate:
            self._open(f"shadow mismatches {len(self._mismatches)}/{compared} over {settings.window_seconds:g}s")
            return
        if now - self._latency_checked_at < _LATENCY_CHECK_SECONDS:
            return
        self._latency_checked_at = now
        rust = [seconds for _, seconds in self._timings["rust"]]
        python = [seconds for _, seconds in self._timings["python"]]
        if min(len(rust), len(python)) >= settings.min_latency_samples:
            rust_p95, python_p95 = percentile(rust, 0.95), percentile(python, 0.95)
            if rust_p95 > settings.max_latency_ratio * python_p95:
                self._open(
                    f"Rust p95 {rust_p95 * 1e6:.1f}us > {settings.max_latency_ratio:g}x Python p95 {python_p95 * 1e6:.1f}us"
                )

    def _open(self, reason: str) -> None:
        self._opened_at = self._clock()
        self._move(OPEN, reason)

    def _move(self, state: str, reason: str) -> None:
        transition = Transition(time.time(), self.state, state, reason)
        self.state = state
        self._probe_successes = 0
        if state == CLOSED:
            # A fresh start: what tripped the breaker is not held against the recovered path.
            self._errors.clear()
            self._mismatches.clear()
            self._comparisons.clear()
            for timings in self._timings.values():
                timings.clear()
        self.transitions.append(transition)
        self._on_transition(transition)
