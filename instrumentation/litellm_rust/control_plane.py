"""The control plane: configuration sources, reloads, telemetry wiring and the runtime API.

One process-wide `ControlPlane` holds the configuration layers (file, environment, instrument
kwargs, runtime overrides), builds the effective settings and applies them to every component's
`Control`. A daemon thread re-reads the file when its mtime changes (checked once a second), off
the hot path. It hands telemetry the instruments the components and the shared Redis limits'
record contribute, and emits that record's outage events. The functions at the bottom are the
public runtime API, re-exported by `litellm_rust`.
"""

import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping

from litellm_rust.components import components, settings_classes, unsupported
from litellm_rust.config import CONFIG_ENV, Config, ConfigError, from_environment, load_file
from litellm_rust.redis_health import REDIS_HEALTH

_logger = logging.getLogger("litellm_rust")

RELOAD_INTERVAL_SECONDS = 1.0
OPERATOR = "operator"


class ControlPlane:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.config_path: str | None = None
        self._file_layer: Mapping = {}
        self._file_mtime: float | None = None
        self._kwargs_layer: Mapping = {}
        self._runtime_layer: dict = {"components": {}}
        self.reload_errors = 0
        self.config: Config | None = None
        """The configuration in effect (None until the first is applied)."""
        self._last_reload_error: str | None = None
        self._telemetry_by_providers: dict = {}
        self.telemetry = None
        self.tracer_provider = None
        self.webhook_decisions: Counter[str] = Counter({"degrade": 0, "release": 0, "ignore": 0, "reject": 0})
        # component -> who holds its breaker forced open (the operator, an alert webhook)
        self._holders: dict[str, set[str]] = {}
        self._reloader: threading.Thread | None = None
        self._stop_reloading = threading.Event()
        REDIS_HEALTH.on_event(self.event)

    @property
    def controls(self) -> dict:
        return {name: component.control for name, component in components().items()}

    # -- lifecycle (driven by the instrumentor) ------------------------------------------------

    def start(self, config_path: str | None, settings: Mapping, meter_provider=None, tracer_provider=None) -> None:
        """Load every source (raising `ConfigError` on an invalid one) and apply the result."""
        with self._lock:
            path = config_path or os.environ.get(CONFIG_ENV) or None
            file_layer = load_file(path) if path else {}
            config = self._build(file_layer=file_layer, kwargs_layer=dict(settings))
            self.config_path, self._file_layer, self._kwargs_layer = path, file_layer, dict(settings)
            self._file_mtime = self._mtime()
            self._last_reload_error = None
            self._apply(config)
            self.use_telemetry(meter_provider, tracer_provider)
        if self.config_path:
            self._stop_reloading.clear()
            self._reloader = threading.Thread(target=self._reload_loop, name="litellm-rust-config", daemon=True)
            self._reloader.start()

    def stop(self) -> None:
        self._stop_reloading.set()
        if self._reloader is not None:
            self._reloader.join(timeout=5)
            self._reloader = None

    def use_telemetry(self, meter_provider=None, tracer_provider=None) -> None:
        """Send telemetry to these providers (None: the global ones)."""
        # Instruments are created once per provider pair: creating them again on re-instrument
        # would register duplicate observable callbacks.
        from litellm_rust.telemetry import Telemetry

        self.tracer_provider = tracer_provider
        key = (id(meter_provider), id(tracer_provider))
        if key not in self._telemetry_by_providers:
            # The providers are kept with their instruments, so their ids cannot be reused.
            self._telemetry_by_providers[key] = (
                meter_provider,
                tracer_provider,
                Telemetry(self, meter_provider, tracer_provider),
            )
        self.telemetry = self._telemetry_by_providers[key][2]
        for control in self.controls.values():
            control.telemetry = self.telemetry

    def record_webhook_decision(self, decision: str, reason: str, component: str | None = None) -> None:
        """Count an alert-webhook decision (`degrade`, `release`, `ignore`, `reject`) and emit it."""
        self.webhook_decisions[decision] += 1
        attributes = {"litellm_rust.webhook.decision": decision, "litellm_rust.webhook.reason": reason}
        if component is not None:
            attributes["litellm_rust.operation"] = component
        self.event("litellm_rust.webhook.decision", attributes)

    def event(self, name: str, attributes: Mapping[str, object]) -> None:
        """A rare event (see `Telemetry.event`), dropped while no telemetry is set up."""
        if self.telemetry is not None:
            self.telemetry.event(name, attributes)

    def instruments(self) -> list:
        """The observable instruments contributed to telemetry beyond its generic ones: the shared
        Redis limits' errors, and each component's own."""
        contributed = [*REDIS_HEALTH.instruments()]
        for component in components().values():
            contributed += component.instruments()
        return contributed

    # -- building and applying ----------------------------------------------------------------

    def _build(self, *, file_layer=None, kwargs_layer=None, runtime_layer=None) -> Config:
        """The settings the layers make, with any of them replaced; raises `ConfigError` before
        anything changes, so a rejected source leaves the previous layers in place."""
        layers = {
            "file": self._file_layer if file_layer is None else file_layer,
            "environment": from_environment(settings_classes()),
            "instrument": self._kwargs_layer if kwargs_layer is None else kwargs_layer,
            "runtime": self._runtime_layer if runtime_layer is None else runtime_layer,
        }
        config = Config.build(settings_classes(), layers.values(), layers)
        for name, component in components().items():
            component.check_settings(config.components[name])
        return config

    def _apply(self, config: Config | None = None) -> None:
        config = config or self._build()
        for name, control in self.controls.items():
            control.apply(config.components[name])
        self.config = config

    def sources(self, component: str) -> dict[str, str]:
        """Which source (`default`, `file`, `environment`, `instrument`, `runtime`) set each of the
        component's settings in effect."""
        config = self.config or Config.build(settings_classes(), [])  # nothing applied yet: the defaults
        return dict(config.sources[component])

    def _mtime(self) -> float | None:
        try:
            return os.stat(self.config_path).st_mtime if self.config_path else None
        except OSError:
            return None

    def check_reload(self) -> bool:
        """Re-read the file if it changed; keep the last good configuration if it is invalid.
        Returns whether a new configuration was applied."""
        with self._lock:
            mtime = self._mtime()
            if not self.config_path or mtime == self._file_mtime:
                return False
            self._file_mtime = mtime
            try:
                layer = load_file(self.config_path)
                config = self._build(file_layer=layer)
            except Exception as error:  # whatever the file holds, the reloader lives on
                self.reload_errors += 1
                expected = isinstance(error, (ConfigError, OSError))
                message = str(error) if expected else f"{type(error).__name__}: {error}"
                if message != self._last_reload_error:  # log each distinct problem once
                    _logger.error(
                        "litellm_rust: keeping the last good configuration: %s",
                        message,
                        exc_info=None if expected else error,
                    )
                    self._last_reload_error = message
                return False
            self._file_layer = layer
            self._last_reload_error = None
            self._apply(config)
            _logger.info("litellm_rust: configuration reloaded from %s", self.config_path)
            return True

    def _reload_loop(self) -> None:
        while not self._stop_reloading.wait(RELOAD_INTERVAL_SECONDS):
            self.check_reload()

    # -- runtime API --------------------------------------------------------------------------

    def configure(self, component: str | None = None, **settings) -> None:
        """Override settings at run time (the last layer): for one component, or all of them."""
        with self._lock:
            if component is None:
                runtime = _merged(self._runtime_layer, settings)
            else:
                self._control(component)
                runtime = _merged(self._runtime_layer, {"components": {component: settings}})
            self._use_runtime_layer(runtime)

    def clear_overrides(self, component: str | None = None) -> None:
        """Drop the runtime overrides: one component's own, or (None) every runtime override,
        shared and per component. The settings fall back to the other sources."""
        with self._lock:
            if component is None:
                runtime = {"components": {}}
            else:
                self._control(component)
                runtime = {**self._runtime_layer, "components": dict(self._runtime_layer.get("components", {}))}
                runtime["components"].pop(component, None)
            self._use_runtime_layer(runtime)

    def _use_runtime_layer(self, runtime: dict) -> None:
        """Make `runtime` the runtime layer, unless the settings it makes are invalid."""
        config = self._build(runtime_layer=runtime)
        self._runtime_layer = runtime
        self._apply(config)

    def _control(self, component: str):
        controls = self.controls
        if component in unsupported():
            raise ConfigError(f"{component}: not supported with the installed litellm ({unsupported()[component]})")
        if component not in controls:
            raise ConfigError(f"unknown component {component!r} (expected one of {', '.join(controls)})")
        return controls[component]

    def force_open(self, component: str, reason: str, holder: str = OPERATOR) -> None:
        """Hold the breaker open on behalf of `holder` until that holder releases it."""
        with self._lock:
            breaker = self._control(component).breaker
            self.holders(component).add(holder)
            breaker.force_open(reason)

    def release(self, component: str, reason: str, holder: str = OPERATOR) -> set[str]:
        """Drop `holder`'s hold; the breaker goes to probing once nobody holds it. Returns who still does."""
        with self._lock:
            breaker = self._control(component).breaker
            holders = self.holders(component)
            holders.discard(holder)
            if not holders:
                breaker.release(reason)
            return set(holders)

    def holders(self, component: str) -> set[str]:
        """Who holds the component's breaker forced open."""
        with self._lock:
            if not self._control(component).breaker.forced:
                # A reset breaker (re-instrumented, reset by a test) forgot its hold, and so do we.
                self._holders[component] = set()
            return self._holders.setdefault(component, set())


def _merged(base: Mapping, overrides: Mapping) -> dict:
    """`base` with `overrides` applied, nested mappings (`breaker`, `components`) merged field by
    field, so successive runtime calls accumulate."""
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = (
            _merged(merged[key], value)
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping)
            else value
        )
    return merged


PLANE = ControlPlane()


def set_mode(component: str, mode: str) -> None:
    """Switch one component to `python`, `shadow` or `rust` at run time."""
    PLANE.configure(component, mode=mode)


def clear_overrides(component: str | None = None) -> None:
    """Undo `set_mode()` / `configure()`: for one component its own runtime overrides, or (None)
    all of them; the file, environment and `instrument()` settings apply again."""
    PLANE.clear_overrides(component)


def configure(component: str | None = None, **settings) -> None:
    """Override any setting (`rollout_percent`, `shadow_sample_rate`, `breaker={...}`, ...) at
    run time, for one component or for all."""
    PLANE.configure(component, **settings)


def force_open(component: str, reason: str = "external signal") -> None:
    """Take a component's Rust path out of service until `release()` (e.g. a firing alert)."""
    PLANE.force_open(component, reason)


def release(component: str, reason: str = "external signal resolved") -> None:
    """End `force_open()`: the breaker goes half-open and probes before closing, unless an alert
    webhook also holds it open (then it stays open until that alert resolves)."""
    still_held_by = PLANE.release(component, reason)
    if still_held_by:
        _logger.warning("litellm_rust: %s stays open, still held by %s", component, ", ".join(sorted(still_held_by)))


def stats() -> dict:
    """p50/p95/p99 (seconds) per component and implementation, from the sampled timings."""
    return {name: control.percentiles() for name, control in PLANE.controls.items()}


def recommendations() -> list[str]:
    """Plain advice per component from its sampled timings and what happened since its mode last
    changed (shadow comparisons, mismatches, Rust errors)."""
    advice = []
    for name, control in PLANE.controls.items():
        timings = control.percentiles()
        rust, python = timings["rust"], timings["python"]
        mode, breaker = control.settings.mode, control.breaker.state
        if breaker != "closed":
            advice.append(f"{name}: breaker {breaker} ({control.breaker.transitions[-1].reason}); Python is serving.")
            continue
        speed = (
            f"Rust p50 {python['p50'] / rust['p50']:.0f}x faster over {rust['samples'] + python['samples']:,} timed calls"
            if rust["samples"] and python["samples"]
            else "not enough timed calls of both implementations to compare speed"
        )
        evidence = control.evidence_since_mode_change()
        errors, compared, mismatched = evidence["rust_errors"], evidence["comparisons"], evidence["mismatches"]
        if mismatched or errors:
            verdict = (
                f"{mismatched} mismatches and {errors} Rust errors -> stay on Python and report the mismatch details"
            )
        elif mode == "shadow" and compared:
            verdict = f"0 mismatches in {compared:,} shadow comparisons -> safe to move to rust at 100%"
        elif mode == "shadow":
            verdict = "no shadow comparisons yet -> keep shadowing"
        elif mode == "python":
            verdict = "serving Python -> try shadow mode to compare"
        else:
            verdict = f"serving Rust at {control.settings.rollout_percent:g}% with no Rust errors"
        advice.append(f"{name}: {speed}, {verdict}.")
    return advice
