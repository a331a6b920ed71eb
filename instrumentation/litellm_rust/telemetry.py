"""Metrics and spans comparing the Rust and Python implementations, at a cost the hot path can pay.

An SDK `histogram.record` costs ~20 us and a span ~40 us, more than Rust saves on a short chat.
So per call nothing is recorded: calls, fallbacks and shadow comparisons are counted in the
native atomics and exported by observable instruments when the reader collects; only sampled
calls (`timing_sample_rate`) record a duration, and only rare events (fallbacks, mismatches,
breaker transitions) become spans, or events on the current span when one is recording.
"""

from collections.abc import Iterable, Mapping

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import CallbackOptions, Observation, get_meter

from litellm_rust.breaker import STATE_VALUES
from litellm_rust.components.routing import health as routing_health
from litellm_rust.version import __version__

OPERATION = "litellm_rust.operation"
IMPLEMENTATION = "litellm_rust.implementation"
MODE = "litellm_rust.mode"
ERROR_TYPE = "error.type"

# Rust paths take microseconds: the SDK's default buckets would put every sample in the first one.
DURATION_BUCKETS = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2)


class Telemetry:
    """The instruments of one meter/tracer provider pair, reading `controls()` at collection."""

    def __init__(self, plane, meter_provider=None, tracer_provider=None) -> None:
        """`plane`: the control plane, read at collection time (its controls, reload errors and
        webhook decisions)."""
        self._plane = plane
        meter = get_meter("litellm_rust", __version__, meter_provider)
        self.tracer = trace.get_tracer("litellm_rust", __version__, tracer_provider)
        self.duration = meter.create_histogram(
            "litellm_rust.operation.duration",
            unit="s",
            description="Duration of sampled accelerated operations, by implementation.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        meter.create_observable_counter(
            "litellm_rust.operation.calls",
            callbacks=[self._observe_calls],
            unit="{call}",
            description="Calls to accelerated operations, by the implementation that served or shadowed them.",
        )
        meter.create_observable_counter(
            "litellm_rust.fallbacks",
            callbacks=[self._observe_fallbacks],
            unit="{call}",
            description="Calls the Rust path handed to Python, by reason.",
        )
        meter.create_observable_counter(
            "litellm_rust.shadow.mismatches",
            callbacks=[self._observe_mismatches],
            unit="{call}",
            description="Shadow comparisons where Rust and Python disagreed.",
        )
        meter.create_observable_gauge(
            "litellm_rust.breaker.state",
            callbacks=[self._observe_breakers],
            unit="1",
            description="Circuit breaker state: 0 closed, 1 half-open, 2 open.",
        )
        meter.create_observable_counter(
            "litellm_rust.config.reload_errors",
            callbacks=[self._observe_reload_errors],
            unit="{error}",
            description="Configuration file reloads rejected (the last good configuration stays).",
        )
        meter.create_observable_counter(
            "litellm_rust.webhook.decisions",
            callbacks=[self._observe_webhook_decisions],
            unit="{decision}",
            description="Alert webhook decisions: degrade, release, ignore, reject.",
        )

        meter.create_observable_counter(
            "litellm_rust.redis.errors",
            callbacks=[self._observe_redis_errors],
            unit="{call}",
            description="Shared (Redis) rate-limit calls Redis did not answer; the fail mode decided them.",
        )

        # Routing health of the routers whose picks reached the routing component, read from
        # litellm's own state at collection (routing_health); deployment ids only up to the cap.
        meter.create_observable_gauge(
            "litellm_rust.routing.deployments",
            callbacks=[self._observe_routing_deployments],
            unit="{deployment}",
            description="Router deployments by model group and state (healthy, cooldown); per deployment "
            "when the router has at most deployment_series_cap deployments.",
        )
        meter.create_observable_gauge(
            "litellm_rust.routing.deployment.in_flight",
            callbacks=[self._observe_routing_in_flight],
            unit="{request}",
            description="Requests in flight per deployment (per model group above the cap), as least-busy "
            "routing counts them in this worker.",
        )
        meter.create_observable_gauge(
            "litellm_rust.routing.deployment.latency",
            callbacks=[self._observe_routing_latency],
            unit="s",
            description="p50 of the latency samples latency-based routing keeps per deployment (per model "
            "group above the cap): seconds per completion token when usage is known.",
        )

    # -- collection-time observations (zeros included, so series exist from start-up) ---------

    def _observe_calls(self, options: CallbackOptions) -> Iterable[Observation]:
        for name, control in self._plane.controls.items():
            for (mode, implementation), count in control.stats.calls().items():
                yield Observation(count, {OPERATION: name, IMPLEMENTATION: implementation, MODE: mode})

    def _observe_fallbacks(self, options: CallbackOptions) -> Iterable[Observation]:
        for name, control in self._plane.controls.items():
            # Rust errors and panics are reported as zero until they happen, so alerts on them
            # have a series to evaluate; input-driven reasons appear when first seen.
            reasons = {"rust_error": 0, "rust_panic": 0, **control.stats.fallback_reasons}
            for reason, count in reasons.items():
                yield Observation(count, {OPERATION: name, ERROR_TYPE: reason})

    def _observe_mismatches(self, options: CallbackOptions) -> Iterable[Observation]:
        for name, control in self._plane.controls.items():
            yield Observation(control.stats.mismatches, {OPERATION: name})

    def _observe_breakers(self, options: CallbackOptions) -> Iterable[Observation]:
        for name, control in self._plane.controls.items():
            yield Observation(STATE_VALUES[control.breaker.state], {OPERATION: name})

    def _observe_reload_errors(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._plane.reload_errors)

    def _observe_redis_errors(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._plane.redis_errors, {OPERATION: "rate_limits"})

    def _observe_webhook_decisions(self, options: CallbackOptions) -> Iterable[Observation]:
        for decision, count in self._plane.webhook_decisions.items():
            yield Observation(count, {"litellm_rust.webhook.decision": decision})

    def _routing_cap(self) -> int:
        return self._plane.controls["routing"].settings.deployment_series_cap

    def _observe_routing_deployments(self, options: CallbackOptions) -> Iterable[Observation]:
        for attributes, count in routing_health.deployment_counts(self._routing_cap()).items():
            yield Observation(count, dict(attributes))

    def _observe_routing_in_flight(self, options: CallbackOptions) -> Iterable[Observation]:
        for attributes, count in routing_health.in_flight(self._routing_cap()).items():
            yield Observation(count, dict(attributes))

    def _observe_routing_latency(self, options: CallbackOptions) -> Iterable[Observation]:
        for attributes, seconds in routing_health.latency_p50(self._routing_cap()).items():
            yield Observation(seconds, dict(attributes))

    # -- sampled and rare records -------------------------------------------------------------

    def record_duration(self, seconds: float, operation: str, implementation: str, mode: str) -> None:
        self.duration.record(seconds, {OPERATION: operation, IMPLEMENTATION: implementation, MODE: mode})

    def event(self, name: str, attributes: Mapping[str, object]) -> None:
        """An event on the current span when one is recording, else a span of its own."""
        if not is_instrumentation_enabled():
            return
        current = trace.get_current_span()
        if current.is_recording():
            current.add_event(name, attributes)
            return
        with self.tracer.start_as_current_span(name, attributes=attributes):
            pass
