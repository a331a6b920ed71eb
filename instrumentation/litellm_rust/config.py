"""Configuration: per-component settings from layered sources.

Later sources override earlier ones, field by field:

    defaults -> file (JSON or YAML) -> environment variables -> instrument(**kwargs) -> runtime API

A source is a plain mapping. Top-level settings apply to every component that has them;
`components.<name>` overrides them for one component:

    {"mode": "rust", "timing_sample_rate": 0.01,
     "components": {"token_counter": {"mode": "shadow", "breaker": {"cool_off_seconds": 10}}}}

Every component has the generic `ComponentSettings`; one with settings of its own declares a frozen
subclass adding them (`Component.settings_class`), each field with its default, a docstring and
what a valid value is (`choice`, `bounded`, or a bool). Validation and the environment variables
come from those declarations alone, so this module knows no component.

Every field is validated; an error names the field (`components.token_counter.mode: ...`).
Unknown components, fields and modes are errors, never ignored; so is a top-level setting that
no component has.
"""

import dataclasses
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from functools import cache, partial
from pathlib import Path
from typing import get_type_hints

MODES = ("python", "shadow", "rust")
DAY_SECONDS = 86_400.0
"""The longest breaker window and cool-off: longer ones are a typo, not a policy."""
ENV_PREFIX = "OTEL_PYTHON_LITELLM_RUST_"


class ConfigError(ValueError):
    """An invalid configuration value; the message starts with the field's path."""


def choice(default: str, choices: tuple[str, ...], what: str):
    """A setting that is one of `choices`; any other value is an `unknown <what>` error."""
    return field(default=default, metadata={"choices": choices, "what": what})


def bounded(default: float, minimum: float, maximum: float | None = None, *, above_minimum: bool = False):
    """A number from `minimum` to `maximum` inclusive (no upper bound when None), or greater than
    `minimum` when `above_minimum`; a whole number when the field is annotated `int`."""
    return field(default=default, metadata={"minimum": minimum, "maximum": maximum, "above_minimum": above_minimum})


@dataclass(frozen=True)
class BreakerSettings:
    """When a component's Rust path is taken out of service, and how it comes back."""

    window_seconds: float = bounded(60.0, 0, DAY_SECONDS, above_minimum=True)
    """Errors, mismatches and latencies are judged over this sliding window."""
    min_calls: int = bounded(20, 1)
    """No verdict on error or mismatch rates before this many Rust calls in the window."""
    max_error_rate: float = bounded(0.01, 0, 1)
    """Rust errors and panics per Rust call above which the breaker opens."""
    max_mismatch_rate: float = bounded(0.0, 0, 1)
    """Shadow mismatches per comparison above which the breaker opens (any mismatch, by default)."""
    max_latency_ratio: float = bounded(2.0, 1)
    """Opens when Rust p95 exceeds Python p95 by this factor (on sampled timings). At least 1: below
    it the breaker would hand calls to Python when Rust is the faster of the two."""
    min_latency_samples: int = bounded(50, 1)
    """Timing samples needed per implementation before latencies are compared."""
    cool_off_seconds: float = bounded(30.0, 0, DAY_SECONDS)
    """How long an open breaker stays open before probing."""
    probe_rate: float = bounded(0.05, 0, 1, above_minimum=True)
    """Fraction of calls sent to Rust while half-open (above 0: no probe would stay half-open forever)."""
    probes_to_close: int = bounded(20, 1)
    """Consecutive successful probes that close the breaker again."""


@dataclass(frozen=True)
class ComponentSettings:
    """The settings every component has. A component with settings of its own subclasses this
    (frozen, every field declared as here) and names the subclass in `Component.settings_class`."""

    mode: str = choice("rust", MODES, "mode")
    """`python` (Python serves), `shadow` (Python serves, Rust is compared) or `rust`."""
    rollout_percent: float = bounded(100.0, 0, 100)
    """In `rust` mode, the share of requests Rust serves (consistent per request key)."""
    shadow_sample_rate: float = bounded(1.0, 0, 1)
    """In `shadow` mode, the share of calls on which Rust also runs and is compared."""
    timing_sample_rate: float = bounded(0.01, 0, 1)
    """The share of calls timed into the duration histogram and the percentiles."""
    span_sample_rate: float = bounded(0.0001, 0, 1)
    """The share of calls that also become a span (or an event on the current span); drawn from
    the timed calls, so at most `timing_sample_rate`."""
    capture_content: bool = False
    """Whether mismatch details may include prompt text (otherwise only its shape)."""
    breaker: BreakerSettings = field(default_factory=BreakerSettings)


SettingsClasses = Mapping[str, type[ComponentSettings]]
"""Component name -> the settings class it declares."""


def _check_number(
    path: str, value: object, kind: type, minimum: float, maximum: float | None, above_minimum: bool
) -> float | int:
    if isinstance(value, str):
        try:
            value = kind(value)
        except ValueError:  # also a whole number too long to parse
            raise ConfigError(f"{path}: expected a number, got {_shown(value)}") from None
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{path}: expected a number, got {_shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path}: expected a finite number, got {value!r}")
    if kind is int and value != int(value):
        raise ConfigError(f"{path}: expected a whole number, got {value!r}")
    # Compared as given: an integer of any size compares exactly with a float bound.
    too_low = value <= minimum if above_minimum else value < minimum
    if too_low or (maximum is not None and value > maximum):
        low = f"greater than {minimum}" if above_minimum else f"at least {minimum}"
        if maximum is None:
            bounds = low
        elif above_minimum:
            bounds = f"{low} and at most {maximum}"
        else:
            bounds = f"between {minimum} and {maximum}"
        raise ConfigError(f"{path}: must be {bounds}, got {_shown(value)}")
    try:
        return kind(value)
    except OverflowError:  # an integer beyond any float, for a setting with no upper bound
        raise ConfigError(f"{path}: expected a finite number, got {_shown(value)}") from None


def _shown(value: object) -> str:
    """`value` for an error message, cut short: a 400-digit number or a long string stays readable."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 4_000 else "a very large integer"
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _check_choice(path: str, value: object, what: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{path}: unknown {what} {_shown(value)} (expected one of {', '.join(choices)})")
    return value


def _check_bool(path: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ConfigError(f"{path}: expected true or false, got {_shown(value)}")


@cache
def _checks(settings_class: type) -> dict[str, Callable[[str, object], object]]:
    """The check of each scalar field of a settings class, `check(path, value) -> value`, from its
    declaration; nested settings (`breaker`) are not in it, they are applied field by field."""
    types = get_type_hints(settings_class)
    checks = {}
    for setting in fields(settings_class):
        kind, declared = types[setting.name], setting.metadata
        if dataclasses.is_dataclass(kind):
            _checks(kind)  # its declaration is checked now too
            continue
        if kind is str and "choices" in declared:
            checks[setting.name] = partial(_check_choice, what=declared["what"], choices=declared["choices"])
        elif kind is bool:
            checks[setting.name] = _check_bool
        elif kind in (int, float) and "minimum" in declared:
            checks[setting.name] = partial(
                _check_number,
                kind=kind,
                minimum=declared["minimum"],
                maximum=declared["maximum"],
                above_minimum=declared["above_minimum"],
            )
        else:
            raise TypeError(
                f"{settings_class.__name__}.{setting.name}: declare a str with choice(), a number with bounded(), "
                "or a bool"
            )
    return checks


def _apply(settings, overrides: Mapping, path: str):
    """`settings` with `overrides` applied, every value validated."""
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{path or 'configuration'}: expected a mapping, got {overrides!r}")
    known = [setting.name for setting in fields(settings)]
    checks = _checks(type(settings))
    changes = {}
    for name, value in overrides.items():
        field_path = f"{path}.{name}" if path else str(name)
        if name not in known:
            raise ConfigError(f"{field_path}: unknown setting (expected one of {', '.join(known)})")
        if name in checks:
            changes[name] = checks[name](field_path, value)
        else:
            changes[name] = _apply(getattr(settings, name), value, field_path)
    return dataclasses.replace(settings, **changes)


def _shared_settings(settings_classes: SettingsClasses) -> dict[str, None]:
    """Every setting some component has, in declaration order (the generic ones first)."""
    return {setting.name: None for cls in settings_classes.values() for setting in fields(cls)}


def _setting_paths(settings_class: type, prefix: str = "") -> Iterator[str]:
    """The path of every scalar setting of a settings class (`mode`, `breaker.probe_rate`)."""
    for setting in fields(settings_class):
        kind = get_type_hints(settings_class)[setting.name]
        if dataclasses.is_dataclass(kind):
            yield from _setting_paths(kind, f"{prefix}{setting.name}.")
        else:
            yield f"{prefix}{setting.name}"


def _paths_set(overrides: Mapping, prefix: str = "") -> Iterator[str]:
    """The scalar settings a validated layer sets, by path."""
    for name, value in overrides.items():
        if isinstance(value, Mapping):
            yield from _paths_set(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


@dataclass(frozen=True)
class Config:
    """Effective settings per component, and per component the source that set each of them."""

    components: Mapping[str, ComponentSettings]
    sources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Component -> setting path (`mode`, `breaker.probe_rate`) -> the name of the layer that set
    it last, or `default`."""

    @classmethod
    def build(
        cls, settings_classes: SettingsClasses, layers: Iterable[Mapping], layer_names: Iterable[str] = ()
    ) -> "Config":
        """Apply `layers` in order over each component's defaults. Within a layer a component's
        own settings win over the shared ones, which reach the components that have them; across
        layers the later layer wins. `layer_names` name the layers in `sources` (by default
        `layer 0`, `layer 1`, ...)."""
        for settings_class in settings_classes.values():
            _checks(settings_class)  # a faulty declaration fails at start, not when a source sets it
        resolved = {name: settings_class() for name, settings_class in settings_classes.items()}
        sources = {name: dict.fromkeys(_setting_paths(kind), "default") for name, kind in settings_classes.items()}
        shared_settings = _shared_settings(settings_classes)
        names = itertools.chain(layer_names, (f"layer {index}" for index in itertools.count()))
        for layer, layer_name in zip(layers, names, strict=False):  # names run on past the last layer
            if not isinstance(layer, Mapping):
                raise ConfigError(f"configuration: expected a mapping, got {layer!r}")
            components = layer.get("components", {})
            if not isinstance(components, Mapping):
                raise ConfigError(f"components: expected a mapping, got {components!r}")
            for name in components:
                if name not in resolved:
                    raise ConfigError(f"components.{name}: unknown component (expected one of {', '.join(resolved)})")
            shared = {key: value for key, value in layer.items() if key != "components"}
            for key in shared:
                if key not in shared_settings:
                    raise ConfigError(f"{key}: unknown setting (expected one of {', '.join(shared_settings)})")
            for name, settings in resolved.items():
                own = {setting.name for setting in fields(settings)}
                own_shared = {key: value for key, value in shared.items() if key in own}
                settings = _apply(settings, own_shared, "")
                resolved[name] = _apply(settings, components.get(name, {}), f"components.{name}")
                for path in itertools.chain(_paths_set(own_shared), _paths_set(components.get(name, {}))):
                    sources[name][path] = layer_name
        return cls(components=resolved, sources=sources)


def load_file(path: str | os.PathLike) -> Mapping:
    """A configuration file: JSON, or YAML for `.yaml` / `.yml`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text: {error}") from None
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


# Process-wide variables: the configuration file, and the alert webhook started by instrument().
CONFIG_ENV = f"{ENV_PREFIX}CONFIG"
WEBHOOK_ADDRESS_ENV = f"{ENV_PREFIX}WEBHOOK_ADDRESS"
WEBHOOK_TOKEN_FILE_ENV = f"{ENV_PREFIX}WEBHOOK_TOKEN_FILE"


# Settings variables, one per scalar setting (not `breaker`): OTEL_PYTHON_LITELLM_RUST_<SETTING> for
# every component that has it, OTEL_PYTHON_LITELLM_RUST_<COMPONENT>_<SETTING> for one.
def _environment_settings(settings_classes: SettingsClasses) -> Iterator[tuple[str | None, str, str]]:
    """(component or None for the shared variable, setting, variable name) of each variable."""
    for setting in _shared_settings(settings_classes):
        if any(setting in _checks(cls) for cls in settings_classes.values()):
            yield None, setting, f"{ENV_PREFIX}{setting.upper()}"
    for component, settings_class in settings_classes.items():
        for setting in _checks(settings_class):
            yield component, setting, f"{ENV_PREFIX}{component.upper()}_{setting.upper()}"


def environment_variable_names(settings_classes: SettingsClasses) -> list[str]:
    """Every variable litellm-rust reads, for the components with these settings classes."""
    names = [CONFIG_ENV, WEBHOOK_ADDRESS_ENV, WEBHOOK_TOKEN_FILE_ENV]
    return names + [variable for _, _, variable in _environment_settings(settings_classes)]


def from_environment(settings_classes: SettingsClasses, environ: Mapping[str, str] = os.environ) -> dict:
    """The layer the environment variables make (empty values are ignored)."""
    layer: dict = {}
    components: dict = {}
    for component, setting, variable in _environment_settings(settings_classes):
        value = environ.get(variable)
        if value:
            (layer if component is None else components.setdefault(component, {}))[setting] = value
    if components:
        layer["components"] = components
    return layer
