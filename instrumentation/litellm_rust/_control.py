"""The run-time side of a component: which implementation serves a call, shadow comparison,
fallback, timing samples and the circuit breaker.

A component's replacement function takes the fast path itself (mode `rust`, full rollout, breaker
closed, not a timing sample: call Rust, fall back on error) and hands every other call to
`Control.serve` with two thunks, one per implementation.
"""

import itertools
import logging
import random
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from litellm_rust import _native
from litellm_rust.breaker import CLOSED, HALF_OPEN, CircuitBreaker, Transition, percentile
from litellm_rust.config import ComponentSettings

if TYPE_CHECKING:
    from litellm_rust._component import Component
    from litellm_rust.telemetry import Telemetry

_logger = logging.getLogger("litellm_rust")

_TIMINGS_KEPT = 10_000
_MISMATCH_DETAILS_KEPT = 20
_ROLLOUT_BUCKETS = 10_000
_NEVER = 1 << 62


def rollout_bucket(request_key: str) -> int:
    """A stable bucket in [0, 10000) for a request key, the same in every process."""
    return zlib.crc32(request_key.encode("utf-8", "surrogatepass")) % _ROLLOUT_BUCKETS


# `_serve_rust`'s answer when Rust declined or failed the call.
_FELL_BACK = object()


class _Failed:
    """An implementation's exception, held so shadow mode can re-raise Python's after comparing."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Control:
    def __init__(self, component: "Component") -> None:
        self.component = component
        self.name = component.name
        self.stats = component.stats
        self.telemetry: Telemetry | None = None
        self.settings = component.settings_class()
        self.breaker = CircuitBreaker(self.settings.breaker, on_transition=self._transitioned)
        self.ticks = itertools.count(1)
        self.timings: dict[str, deque[float]] = {
            "rust": deque(maxlen=_TIMINGS_KEPT),
            "python": deque(maxlen=_TIMINGS_KEPT),
        }
        self.mismatch_details: deque[dict] = deque(maxlen=_MISMATCH_DETAILS_KEPT)
        self._since_mode_change = self._evidence()
        self.apply(self.settings)

    # -- configuration ------------------------------------------------------------------------

    def apply(self, settings: ComponentSettings) -> None:
        if settings.mode != self.settings.mode:
            self._since_mode_change = self._evidence()
        self.settings = settings
        self.breaker.settings = settings.breaker
        self.stats.set_mode(settings.mode)
        rate = settings.timing_sample_rate
        self.timing_every = max(1, round(1 / rate)) if rate > 0 else _NEVER
        self._refresh()

    def _refresh(self) -> None:
        """`rust_fast`: the replacement may call Rust directly (see the module docstring)."""
        settings = self.settings
        self.rust_fast = settings.mode == "rust" and settings.rollout_percent >= 100 and self.breaker.state == CLOSED

    def _transitioned(self, transition: Transition) -> None:
        self._refresh()
        _logger.warning(
            "litellm_rust %s breaker %s -> %s: %s",
            self.name,
            transition.from_state,
            transition.to_state,
            transition.reason,
        )
        self._event(
            "litellm_rust.breaker.transition",
            {
                "litellm_rust.breaker.from": transition.from_state,
                "litellm_rust.breaker.to": transition.to_state,
                "litellm_rust.breaker.reason": transition.reason,
            },
        )

    # -- serving ------------------------------------------------------------------------------

    def serve(
        self,
        run_rust: Callable[[], object],
        run_python: Callable[[], object],
        request_key: str | None = None,
        describe: Callable[[bool], dict] | None = None,
        timed: bool | None = None,
    ) -> object:
        """One call, routed by mode, rollout and breaker. `describe(capture_content)` gives the
        call's inputs for a mismatch record. `timed` forces the timing-sample decision."""
        if timed is None:
            timed = next(self.ticks) % self.timing_every == 0
        route = self._route(request_key)
        if route == "rust":
            result = self._serve_rust(run_rust, timed)
            return run_python() if result is _FELL_BACK else result
        try:
            python = self._run("python", run_python, timed)
        except Exception as error:
            python = _Failed(error)
        return self._python_served(route, python, run_rust, describe, timed)

    async def serve_async(
        self,
        run_rust: Callable[[], object],
        run_python: Callable[[], Awaitable[object]],
        request_key: str | None = None,
        describe: Callable[[bool], dict] | None = None,
        timed: bool | None = None,
    ) -> object:
        """`serve` for a litellm coroutine: `run_python()` returns an awaitable; Rust stays synchronous."""
        if timed is None:
            timed = next(self.ticks) % self.timing_every == 0
        route = self._route(request_key)
        if route == "rust":
            result = self._serve_rust(run_rust, timed)
            return await run_python() if result is _FELL_BACK else result
        start = time.perf_counter() if timed else 0.0
        try:
            python = await run_python()
        except Exception as error:
            python = _Failed(error)
        if timed:
            self._timing("python", time.perf_counter() - start)
        return self._python_served(route, python, run_rust, describe, timed)

    def _python_served(self, route: str, python, run_rust, describe, timed: bool) -> object:
        """Python's outcome (a result or `_Failed`) as the call's answer; in shadow mode Rust runs
        second on the same inputs and is compared first."""
        if route == "shadow":
            self._shadow_compare(python, run_rust, describe, timed)
        if isinstance(python, _Failed):
            raise python.error
        return python

    def _route(self, request_key: str | None) -> str:
        """`python`, `shadow` or `rust`; Python's share of the calls is counted here."""
        mode = self.settings.mode
        if mode == "shadow" or (mode == "rust" and self._in_rollout(request_key) and self.breaker.route_to_rust()):
            return mode
        self.stats.python_call()
        return "python"

    def _serve_rust(self, run_rust: Callable[[], object], timed: bool) -> object:
        """Rust's result, or `_FELL_BACK` when Python must serve the call instead."""
        probing = self.breaker.state == HALF_OPEN
        try:
            result = self._run("rust", run_rust, timed)
        except Exception as error:
            self.rust_failed(error)
            return _FELL_BACK
        if probing:
            self.breaker.probe_succeeded()
        return result

    def rust_failed(self, error: Exception, python_serves: bool = True) -> None:
        """The Rust path declined or failed this call; Python serves it (or, in shadow mode,
        already did)."""
        if python_serves:
            self.stats.python_call()
        if isinstance(error, _native.Unsupported):
            self.stats.fallback(error.args[0])
            return
        reason = "rust_panic" if isinstance(error, _native.RustPanic) else "rust_error"
        self.stats.fallback(reason)
        _logger.debug("litellm_rust %s fell back to Python after %s", self.name, reason, exc_info=error)
        self._event("litellm_rust.fallback", {"error.type": reason})
        self.breaker.rust_error(self.stats.rust_calls, reason)

    def _in_rollout(self, request_key: str | None) -> bool:
        percent = self.settings.rollout_percent
        if percent >= 100:
            return True
        bucket = rollout_bucket(request_key) if request_key else random.randrange(_ROLLOUT_BUCKETS)
        return bucket < percent * (_ROLLOUT_BUCKETS // 100)

    def _run(self, implementation: str, run: Callable[[], object], timed: bool) -> object:
        if not timed:
            return run()
        start = time.perf_counter()
        try:
            return run()
        finally:
            self._timing(implementation, time.perf_counter() - start)

    def _timing(self, implementation: str, seconds: float) -> None:
        self.timings[implementation].append(seconds)
        settings = self.settings
        if self.telemetry is not None:
            self.telemetry.record_duration(seconds, self.name, implementation, settings.mode)
            # Spans are drawn from the timed calls: span_sample_rate of all calls.
            if random.random() * settings.timing_sample_rate < settings.span_sample_rate:
                self._event(
                    "litellm_rust.call",
                    {"litellm_rust.implementation": implementation, "litellm_rust.duration_s": seconds},
                )
        self.breaker.timing(implementation, seconds, self.stats.rust_calls)

    def _shadow_compare(self, python, run_rust, describe, timed) -> None:
        """Compare Rust with the Python outcome of a shadowed call. A component whose Rust path
        keeps its own state runs it on every call."""
        self.stats.python_call()
        sampled = self.component.stateful or random.random() < self.settings.shadow_sample_rate
        if sampled and self.breaker.route_to_rust():
            self._compare(python, run_rust, describe, timed)

    def _compare(self, python, run_rust, describe, timed) -> None:
        try:
            rust = self._run("rust", run_rust, timed)
        except Exception as error:  # declined (nothing to compare) or failed
            self.rust_failed(error, python_serves=False)
            return
        matched = not isinstance(python, _Failed) and self.component.compare(python, rust)
        self.record_comparison(python, rust, matched, describe)

    def record_comparison(self, python, rust, matched: bool, describe) -> None:
        """One shadow comparison's outcome, also for a step a component compares itself: counted,
        fed to the breaker and, when it mismatched, kept with the call's inputs."""
        self.stats.comparison(matched)
        self.breaker.comparison(self.stats.rust_calls, matched)
        if matched:
            return
        python_shown = f"raised {type(python.error).__name__}" if isinstance(python, _Failed) else repr(python)
        detail = {
            "at": time.time(),
            "inputs": describe(self.settings.capture_content) if describe else {},
            "python": python_shown[:200],
            "rust": repr(rust)[:200],
        }
        self.mismatch_details.append(detail)
        self._event(
            "litellm_rust.shadow.mismatch",
            {"litellm_rust.python_result": detail["python"], "litellm_rust.rust_result": detail["rust"]},
        )

    def _event(self, name: str, attributes: dict) -> None:
        if self.telemetry is not None:
            self.telemetry.event(
                name, {"litellm_rust.operation": self.name, "litellm_rust.mode": self.settings.mode, **attributes}
            )

    def reset(self) -> None:
        """Forget the breaker's window and state, the timings and the mismatch details."""
        self.breaker.reset()
        for samples in self.timings.values():
            samples.clear()
        self.mismatch_details.clear()
        self._since_mode_change = self._evidence()
        self._refresh()

    def _evidence(self) -> dict[str, int]:
        reasons = self.stats.fallback_reasons
        return {
            "comparisons": self.stats.comparisons,
            "mismatches": self.stats.mismatches,
            "rust_errors": reasons.get("rust_error", 0) + reasons.get("rust_panic", 0),
        }

    def evidence_since_mode_change(self) -> dict[str, int]:
        """Shadow comparisons, mismatches and Rust errors since the mode last changed."""
        now = self._evidence()
        return {key: now[key] - self._since_mode_change[key] for key in now}

    # -- reporting ----------------------------------------------------------------------------

    def percentiles(self) -> dict:
        result = {}
        for implementation, samples in self.timings.items():
            values = list(samples)
            result[implementation] = (
                {"samples": len(values), **{f"p{p}": percentile(values, p / 100) for p in (50, 95, 99)}}
                if values
                else {"samples": 0}
            )
        return result

    def status(self) -> dict:
        stats = self.stats
        return {
            "mode": self.settings.mode,
            "rollout_percent": self.settings.rollout_percent,
            "rust_calls": stats.rust_calls,
            "python_calls": stats.python_calls,
            "calls": {
                f"{mode}/{implementation}": count for (mode, implementation), count in sorted(stats.calls().items())
            },
            "fallbacks": stats.fallbacks,
            "fallback_reasons": dict(sorted(stats.fallback_reasons.items())),
            "shadow_comparisons": stats.comparisons,
            "shadow_mismatches": stats.mismatches,
            "mismatch_details": list(self.mismatch_details),
            "breaker": self.breaker.status(),
        }
