"""Configuration: per-component settings from layered sources.

Later sources override earlier ones, field by field:

    defaults -> file (JSON or YAML) -> environment variables -> instrument(**kwargs) -> runtime API

A source is a plain mapping. Top-level settings apply to every component; `components.<name>`
overrides them for one component:

    {"mode": "rust", "timing_sample_rate": 0.01,
     "components": {"token_counter": {"mode": "shadow", "breaker": {"cool_off_seconds": 10}}}}

Every field is validated; an error names the field (`components.token_counter.mode: ...`).
Unknown components, fields and modes are errors, never ignored.
"""

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

MODES = ("python", "shadow", "rust")
RATE_LIMIT_ALGORITHMS = ("parity", "gcra")
ENV_PREFIX = "OTEL_PYTHON_LITELLM_RUST_"


class ConfigError(ValueError):
    """An invalid configuration value; the message starts with the field's path."""


@dataclass(frozen=True)
class BreakerSettings:
    """When a component's Rust path is taken out of service, and how it comes back."""

    window_seconds: float = 60.0
    """Errors, mismatches and latencies are judged over this sliding window."""
    min_calls: int = 20
    """No verdict on error or mismatch rates before this many Rust calls in the window."""
    max_error_rate: float = 0.01
    """Rust errors and panics per Rust call above which the breaker opens."""
    max_mismatch_rate: float = 0.0
    """Shadow mismatches per comparison above which the breaker opens (any mismatch, by default)."""
    max_latency_ratio: float = 2.0
    """Opens when Rust p95 exceeds Python p95 by this factor (on sampled timings)."""
    min_latency_samples: int = 50
    """Timing samples needed per implementation before latencies are compared."""
    cool_off_seconds: float = 30.0
    """How long an open breaker stays open before probing."""
    probe_rate: float = 0.05
    """Fraction of calls sent to Rust while half-open."""
    probes_to_close: int = 20
    """Consecutive successful probes that close the breaker again."""


@dataclass(frozen=True)
class ComponentSettings:
    mode: str = "rust"
    """`python` (Python serves), `shadow` (Python serves, Rust is compared) or `rust`."""
    rollout_percent: float = 100.0
    """In `rust` mode, the share of requests Rust serves (consistent per request key)."""
    shadow_sample_rate: float = 1.0
    """In `shadow` mode, the share of calls on which Rust also runs and is compared."""
    timing_sample_rate: float = 0.01
    """The share of calls timed into the duration histogram and the percentiles."""
    span_sample_rate: float = 0.0001
    """The share of calls that also become a span (or an event on the current span); drawn from
    the timed calls, so at most `timing_sample_rate`."""
    capture_content: bool = False
    """Whether mismatch details may include prompt text (otherwise only its shape)."""
    deployment_series_cap: int = 50
    """Routing health metrics: a router with at most this many deployments is reported per
    deployment (its id an attribute); a larger one per model group. 0 always aggregates."""
    rate_limit_algorithm: str = "parity"
    """The router's `enforce_model_rate_limits` where Rust serves it: `parity` (litellm's
    wall-clock minutes, decision for decision) or `gcra` (rpm and tpm as token buckets: a burst of
    the limit, then a steady limit per minute). Not comparable with litellm, so never shadowed."""
    breaker: BreakerSettings = field(default_factory=BreakerSettings)


_RATES = (
    "shadow_sample_rate",
    "timing_sample_rate",
    "span_sample_rate",
    "max_error_rate",
    "max_mismatch_rate",
    "probe_rate",
)


def _check_number(path: str, value: object, kind: type, minimum: float, maximum: float | None) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                value = kind(value)
            except ValueError:
                raise ConfigError(f"{path}: expected a number, got {value!r}") from None
        else:
            raise ConfigError(f"{path}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{path}: expected a finite number, got {value!r}")
    if kind is int and value != int(value):
        raise ConfigError(f"{path}: expected a whole number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(f"{path}: must be {bounds}, got {value!r}")
    return kind(value)


def _check_choice(path: str, value: object, what: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{path}: unknown {what} {value!r} (expected one of {', '.join(choices)})")
    return value


def _check_bool(path: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ConfigError(f"{path}: expected true or false, got {value!r}")


def _apply(settings, overrides: Mapping, path: str):
    """`settings` with `overrides` applied, every value validated."""
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{path or 'configuration'}: expected a mapping, got {overrides!r}")
    known = {f.name: f for f in fields(settings)}
    changes = {}
    for name, value in overrides.items():
        field_path = f"{path}.{name}" if path else str(name)
        if name not in known:
            raise ConfigError(f"{field_path}: unknown setting (expected one of {', '.join(known)})")
        current = getattr(settings, name)
        if dataclasses.is_dataclass(current):
            changes[name] = _apply(current, value, field_path)
        elif name == "mode":
            changes[name] = _check_choice(field_path, value, "mode", MODES)
        elif name == "rate_limit_algorithm":
            changes[name] = _check_choice(field_path, value, "algorithm", RATE_LIMIT_ALGORITHMS)
        elif name == "deployment_series_cap":
            changes[name] = _check_number(field_path, value, int, 0, None)
        elif name == "rollout_percent":
            changes[name] = _check_number(field_path, value, float, 0, 100)
        elif name in _RATES:
            changes[name] = _check_number(field_path, value, float, 0, 1)
        elif isinstance(current, bool):
            changes[name] = _check_bool(field_path, value)
        elif isinstance(current, int):
            changes[name] = _check_number(field_path, value, int, 1, None)
        else:
            changes[name] = _check_number(field_path, value, float, 0, None)
    return dataclasses.replace(settings, **changes)


@dataclass(frozen=True)
class Config:
    """Effective settings per component."""

    components: Mapping[str, ComponentSettings]

    @classmethod
    def build(cls, component_names: Iterable[str], layers: Iterable[Mapping]) -> "Config":
        """Apply `layers` in order over the defaults. Within a layer a component's own settings
        win over the shared ones; across layers the later layer wins."""
        names = tuple(component_names)
        resolved = dict.fromkeys(names, ComponentSettings())
        for layer in layers:
            if not isinstance(layer, Mapping):
                raise ConfigError(f"configuration: expected a mapping, got {layer!r}")
            components = layer.get("components", {})
            if not isinstance(components, Mapping):
                raise ConfigError(f"components: expected a mapping, got {components!r}")
            for name in components:
                if name not in resolved:
                    raise ConfigError(f"components.{name}: unknown component (expected one of {', '.join(names)})")
            shared = {key: value for key, value in layer.items() if key != "components"}
            for name in names:
                resolved[name] = _apply(resolved[name], shared, "")
                resolved[name] = _apply(resolved[name], components.get(name, {}), f"components.{name}")
        return cls(components=resolved)


def load_file(path: str | os.PathLike) -> Mapping:
    """A configuration file: JSON, or YAML for `.yaml` / `.yml`."""
    text = Path(path).read_text()
    is_yaml = Path(path).suffix.lower() in (".yaml", ".yml")
    try:
        if is_yaml:
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as error:
        raise ConfigError(f"{path}: not valid {'YAML' if is_yaml else 'JSON'}: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


# Environment variables: OTEL_PYTHON_LITELLM_RUST_<SETTING> for every component and
# OTEL_PYTHON_LITELLM_RUST_<COMPONENT>_<SETTING> for one.
ENV_SETTINGS = (
    "mode",
    "rollout_percent",
    "shadow_sample_rate",
    "timing_sample_rate",
    "span_sample_rate",
    "capture_content",
    "deployment_series_cap",
    "rate_limit_algorithm",
)


# Process-wide variables: the configuration file, and the alert webhook started by instrument().
CONFIG_ENV = f"{ENV_PREFIX}CONFIG"
WEBHOOK_ADDRESS_ENV = f"{ENV_PREFIX}WEBHOOK_ADDRESS"
WEBHOOK_TOKEN_FILE_ENV = f"{ENV_PREFIX}WEBHOOK_TOKEN_FILE"


def environment_variable_names(component_names: Iterable[str]) -> list[str]:
    names = [CONFIG_ENV, WEBHOOK_ADDRESS_ENV, WEBHOOK_TOKEN_FILE_ENV]
    names += [f"{ENV_PREFIX}{setting.upper()}" for setting in ENV_SETTINGS]
    for component in component_names:
        names += [f"{ENV_PREFIX}{component.upper()}_{setting.upper()}" for setting in ENV_SETTINGS]
    return names


def from_environment(component_names: Iterable[str], environ: Mapping[str, str] = os.environ) -> dict:
    """The layer the environment variables make (empty values are ignored)."""
    layer: dict = {}
    for setting in ENV_SETTINGS:
        value = environ.get(f"{ENV_PREFIX}{setting.upper()}")
        if value:
            layer[setting] = value
    components: dict = {}
    for component in component_names:
        for setting in ENV_SETTINGS:
            value = environ.get(f"{ENV_PREFIX}{component.upper()}_{setting.upper()}")
            if value:
                components.setdefault(component, {})[setting] = value
    if components:
        layer["components"] = components
    return layer
