"""A circuit breaker per component: takes the Rust path out of service when it misbehaves.

closed     Rust serves (per the component's mode and rollout).
open       Python serves. Entered when, over the sliding window, Rust errors, shadow mismatches
           or a latency regression pass their thresholds, or when forced by an external signal
           (the Alertmanager webhook). After `cool_off_seconds` it goes half-open, unless forced.
half_open  A `probe_rate` share of calls goes to Rust; `probes_to_close` successes in a row close
           the breaker, one failure opens it again.

The breaker only sees rare events (errors, mismatches, sampled timings) plus the native call
counter read at those moments, so the hot path pays nothing for it. Shadow mode makes comparisons
frequent, so the window keeps counts in a fixed number of time buckets, never one entry per event:
its memory does not grow with the call rate.
"""

import math
import random
import threading
import time
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

from litellm_rust.config import BreakerSettings

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}
_IMPLEMENTATIONS = ("rust", "python")
# An event leaves the window at most window/60 late (1 s at the default 60 s window).
_BUCKETS_PER_WINDOW = 60
# Latencies are counted in log-scale bins 5% wide from 100 ns to ~100 s: a p95 is known to within
# 5%, so only a latency ratio within 5% of `max_latency_ratio` could get another verdict than the
# exact samples would give. The coarser `telemetry.DURATION_BUCKETS` (2x-2.5x steps) could not
# judge a 2x ratio.
_LATENCY_FLOOR_SECONDS = 1e-7
_LATENCY_BIN_GROWTH = 1.05
_LOG_LATENCY_BIN_GROWTH = math.log(_LATENCY_BIN_GROWTH)
_LATENCY_BINS = 426
_LATENCY_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Transition:
    at: float
    """Wall-clock time (seconds since the epoch)."""
    from_state: str
    to_state: str
    reason: str

    def as_dict(self) -> dict:
        return {"at": self.at, "from": self.from_state, "to": self.to_state, "reason": self.reason}


def _nearest_rank(fraction: float, count: int) -> int:
    """The 1-based rank of the nearest-rank percentile among `count` (at least 1) ordered values."""
    rank = math.ceil(fraction * count - 1e-9)  # 0.95 * 100 is 95.00000000000001 in floats
    return min(count, max(rank, 1))


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `samples` (non-empty): the smallest value with at least
    `fraction` of the samples at or below it."""
    return sorted(samples)[_nearest_rank(fraction, len(samples)) - 1]


def _latency_bins() -> array:
    """A count per latency bin, none counted yet: the same size for any number of samples."""
    return array("I", [0]) * _LATENCY_BINS


def _latency_bin(seconds: float) -> int:
    if seconds <= _LATENCY_FLOOR_SECONDS:
        return 0
    return min(int(math.log(seconds / _LATENCY_FLOOR_SECONDS) / _LOG_LATENCY_BIN_GROWTH), _LATENCY_BINS - 1)


def _latency_percentile(bins: array, count: int, fraction: float) -> float:
    """Nearest-rank percentile of the `count` (at least 1) latencies in `bins`, as the geometric
    middle of its bin."""
    bin_index = bisect_left(list(accumulate(bins)), _nearest_rank(fraction, count))
    return _LATENCY_FLOOR_SECONDS * _LATENCY_BIN_GROWTH ** (bin_index + 0.5)


class _Bucket:
    """The window's events in one slice of time, as counts."""

    __slots__ = ("ends_at", "first_calls_total", "last_calls_total", "errors", "comparisons", "mismatches", "latencies")

    def __init__(self, ends_at: float, calls_total: int) -> None:
        self.ends_at = ends_at
        self.first_calls_total = self.last_calls_total = calls_total
        self.errors = self.comparisons = self.mismatches = 0
        self.latencies: dict[str, array] = {}


class _Window:
    """The sliding window: its totals, and the buckets they are made of so that old buckets can
    leave. A bucket leaves once all of it is older than the window; the newest always stays."""

    def __init__(self) -> None:
        self._buckets: deque[_Bucket] = deque()
        self._calls_total_at_start: int | None = None
        self.errors = self.comparisons = self.mismatches = 0
        self.latencies = {implementation: _latency_bins() for implementation in _IMPLEMENTATIONS}

    @property
    def calls(self) -> int:
        """Rust calls in the window: the native counter now less the counter when the window began."""
        if not self._buckets:
            return 0
        start = self._calls_total_at_start
        if start is None:  # nothing has left the window yet: it begins with its first count
            start = self._buckets[0].first_calls_total
        return self._buckets[-1].last_calls_total - start

    def add_error(self, now: float, calls_total: int, window_seconds: float) -> None:
        self._bucket(now, calls_total, window_seconds).errors += 1
        self.errors += 1

    def add_comparison(self, now: float, calls_total: int, window_seconds: float, matched: bool) -> None:
        bucket = self._bucket(now, calls_total, window_seconds)
        bucket.comparisons += 1
        self.comparisons += 1
        if not matched:
            bucket.mismatches += 1
            self.mismatches += 1

    def add_timing(
        self, now: float, calls_total: int, window_seconds: float, implementation: str, seconds: float
    ) -> None:
        bucket = self._bucket(now, calls_total, window_seconds)
        bins = bucket.latencies.get(implementation)
        if bins is None:
            bins = bucket.latencies[implementation] = _latency_bins()
        bin_index = _latency_bin(seconds)
        bins[bin_index] += 1
        self.latencies[implementation][bin_index] += 1

    def forget_events(self) -> None:
        """Errors, comparisons and latencies go; the call counts stay, the window still spans them."""
        for bucket in self._buckets:
            bucket.errors = bucket.comparisons = bucket.mismatches = 0
            bucket.latencies.clear()
        self.errors = self.comparisons = self.mismatches = 0
        self.latencies = {implementation: _latency_bins() for implementation in _IMPLEMENTATIONS}

    def _bucket(self, now: float, calls_total: int, window_seconds: float) -> _Bucket:
        """The bucket for an event at `now`, the call counter noted, once the window has slid to `now`."""
        buckets = self._buckets
        if not buckets or now >= buckets[-1].ends_at:
            buckets.append(_Bucket(now + window_seconds / _BUCKETS_PER_WINDOW, calls_total))
        newest = buckets[-1]
        newest.last_calls_total = calls_total
        horizon = now - window_seconds
        while len(buckets) > 1 and buckets[0].ends_at <= horizon:
            self._leave(buckets.popleft())
        return newest

    def _leave(self, bucket: _Bucket) -> None:
        self._calls_total_at_start = bucket.last_calls_total
        self.errors -= bucket.errors
        self.comparisons -= bucket.comparisons
        self.mismatches -= bucket.mismatches
        for implementation, bins in bucket.latencies.items():
            totals = self.latencies[implementation]
            for bin_index, in_bin in enumerate(bins):
                if in_bin:
                    totals[bin_index] -= in_bin


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
        self._window = _Window()
        self._latency_checked_at = float("-inf")

    # -- what the component reports ---------------------------------------------------------

    def rust_error(self, rust_calls_total: int, reason: str) -> None:
        with self._lock:
            now = self._clock()
            self._window.add_error(now, rust_calls_total, self.settings.window_seconds)
            if self.state == HALF_OPEN:
                self._open(f"probe failed: {reason}")
            else:
                self._evaluate(now)

    def comparison(self, rust_calls_total: int, matched: bool) -> None:
        with self._lock:
            now = self._clock()
            self._window.add_comparison(now, rust_calls_total, self.settings.window_seconds, matched)
            if self.state == HALF_OPEN and not matched:
                self._open("probe mismatched")
            else:
                self._evaluate(now)

    def timing(self, implementation: str, seconds: float, rust_calls_total: int) -> None:
        with self._lock:
            now = self._clock()
            self._window.add_timing(now, rust_calls_total, self.settings.window_seconds, implementation, seconds)
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

    def _evaluate(self, now: float) -> None:
        if self.state != CLOSED:
            return
        settings = self.settings
        window = self._window
        calls = max(window.calls, window.errors)
        if calls >= settings.min_calls and window.errors / calls > settings.max_error_rate:
            self._open(f"Rust error rate {window.errors}/{calls} over {settings.window_seconds:g}s")
            return
        compared = window.comparisons
        if window.mismatches and compared and window.mismatches / compared > settings.max_mismatch_rate:
            self._open(f"shadow mismatches {window.mismatches}/{compared} over {settings.window_seconds:g}s")
            return
        if now - self._latency_checked_at < _LATENCY_CHECK_SECONDS:
            return
        self._latency_checked_at = now
        rust, python = window.latencies["rust"], window.latencies["python"]
        rust_count, python_count = sum(rust), sum(python)
        if min(rust_count, python_count) >= settings.min_latency_samples:
            rust_p95 = _latency_percentile(rust, rust_count, 0.95)
            python_p95 = _latency_percentile(python, python_count, 0.95)
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
            self._window.forget_events()
        self.transitions.append(transition)
        self._on_transition(transition)
