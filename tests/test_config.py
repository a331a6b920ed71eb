"""The configuration layer of the control plane.

Sources, later ones overriding earlier ones field by field:

    defaults -> file (JSON or YAML) -> environment variables -> instrument(**kwargs) -> runtime API

Every value is validated and an error names the field; the file is re-read when it changes, and
an invalid rewrite keeps the last good configuration.
"""

import itertools
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import litellm
import litellm_rust
import pytest
from apps import run_under_opentelemetry_instrument
from litellm_rust import LiteLLMRustInstrumentor, environment_variables, status
from litellm_rust.components import components, settings_classes
from litellm_rust.config import (
    BreakerSettings,
    ComponentSettings,
    Config,
    ConfigError,
    bounded,
    choice,
    environment_variable_names,
    from_environment,
    load_file,
)
from litellm_rust.control_plane import PLANE
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

NAMES = {"token_counter": ComponentSettings}
_PLANE_STATE = (
    "_runtime_layer",
    "_kwargs_layer",
    "_file_layer",
    "_file_mtime",
    "config_path",
    "_last_reload_error",
    "telemetry",
    "tracer_provider",
)


# -- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_plane(monkeypatch):
    """Each test starts from the defaults with no litellm_rust variable set; afterwards the
    process-wide plane gets its layers back, with the environment restored first."""
    for name in environment_variable_names(settings_classes()):
        monkeypatch.delenv(name, raising=False)
    saved = {attribute: getattr(PLANE, attribute) for attribute in _PLANE_STATE}
    telemetry = {name: control.telemetry for name, control in PLANE.controls.items()}
    PLANE._runtime_layer = {"components": {}}
    PLANE._kwargs_layer = {}
    PLANE._file_layer = {}
    PLANE.config_path = None
    PLANE._apply()
    yield PLANE
    monkeypatch.undo()
    for attribute, value in saved.items():
        setattr(PLANE, attribute, value)
    PLANE._apply()
    for name, control in PLANE.controls.items():
        control.telemetry = telemetry[name]


@pytest.fixture
def instrumentor(isolated_plane):
    """The instrumentor, uninstrumented after the test whatever happened."""
    instrumentor = LiteLLMRustInstrumentor()
    try:
        yield instrumentor
    finally:
        if instrumentor._is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


@pytest.fixture
def write_config(tmp_path):
    """Writes the configuration file atomically with a fresh, strictly increasing mtime, so the
    reloader sees exactly one change per write, whenever it looks."""
    mtimes = itertools.count(1_700_000_000, 10)

    def write(content, name: str = "litellm_rust.json") -> Path:
        path = tmp_path / name
        staging = tmp_path / f".staging-{name}"
        if isinstance(content, bytes):
            staging.write_bytes(content)
        else:
            staging.write_text(content if isinstance(content, str) else json.dumps(content))
        mtime = next(mtimes)
        os.utime(staging, (mtime, mtime))
        os.replace(staging, path)
        return path

    return write


def token_counter_status() -> dict:
    return status()["token_counter"]


def token_counter_settings() -> ComponentSettings:
    return components()["token_counter"].control.settings


def build(*layers, names=NAMES) -> Config:
    return Config.build(names, layers)


def field_error(path: str):
    """`pytest.raises` for a ConfigError whose message starts with the field's path."""
    return pytest.raises(ConfigError, match=rf"^{re.escape(path)}: ")


def litellm_rust_errors(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "litellm_rust" and record.levelno >= logging.ERROR]


# -- defaults ------------------------------------------------------------------------------------


def test_with_no_sources_every_component_gets_the_default_settings():
    config = build()
    assert config.components["token_counter"] == ComponentSettings()
    settings = config.components["token_counter"]
    assert settings.mode == "rust"
    assert settings.rollout_percent == 100
    assert settings.shadow_sample_rate == 1.0
    assert settings.timing_sample_rate == 0.01
    assert settings.capture_content is False
    assert settings.breaker == BreakerSettings()
    assert settings.breaker.window_seconds == 60
    assert settings.breaker.min_calls == 20
    assert settings.breaker.cool_off_seconds == 30
    assert settings.breaker.probes_to_close == 20


def test_instrument_with_no_sources_serves_rust_at_full_rollout(instrumentor):
    instrumentor.instrument()
    assert token_counter_status()["instrumented"] is True
    assert token_counter_status()["mode"] == "rust"
    assert token_counter_status()["rollout_percent"] == 100
    assert token_counter_settings() == ComponentSettings()


# -- layer order ---------------------------------------------------------------------------------


def test_later_layers_override_earlier_ones_field_by_field():
    file = {"mode": "shadow", "rollout_percent": 10, "timing_sample_rate": 0.5, "shadow_sample_rate": 0.5}
    env = {"rollout_percent": "20", "shadow_sample_rate": "0.25"}
    kwargs = {"components": {"token_counter": {"rollout_percent": 30}}}
    runtime = {"components": {"token_counter": {"mode": "python"}}}

    settings = build(file, env, kwargs, runtime).components["token_counter"]

    assert settings.mode == "python"  # runtime
    assert settings.rollout_percent == 30  # kwargs over env over file
    assert settings.shadow_sample_rate == 0.25  # env over file
    assert settings.timing_sample_rate == 0.5  # file
    assert settings.capture_content is False  # default


def test_breaker_settings_merge_field_by_field_across_layers():
    settings = build({"breaker": {"cool_off_seconds": 5, "min_calls": 7}}, {"breaker": {"min_calls": 3}}).components[
        "token_counter"
    ]
    assert settings.breaker.cool_off_seconds == 5
    assert settings.breaker.min_calls == 3
    assert settings.breaker.window_seconds == BreakerSettings().window_seconds


def test_within_a_layer_a_component_setting_overrides_the_shared_one():
    component_first = {"components": {"token_counter": {"mode": "python"}}, "mode": "shadow"}
    shared_first = {"mode": "shadow", "components": {"token_counter": {"mode": "python"}}}
    assert build(component_first).components["token_counter"].mode == "python"
    assert build(shared_first).components["token_counter"].mode == "python"


def test_a_later_shared_setting_overrides_an_earlier_component_setting():
    config = build({"components": {"token_counter": {"mode": "python"}}}, {"mode": "shadow"})
    assert config.components["token_counter"].mode == "shadow"


def test_a_component_setting_applies_to_that_component_only():
    config = build(
        {"mode": "shadow", "components": {"token_counter": {"mode": "python"}}},
        names={"token_counter": ComponentSettings, "router": ComponentSettings},
    )
    assert config.components["token_counter"].mode == "python"
    assert config.components["router"].mode == "shadow"


def test_file_environment_kwargs_and_runtime_api_apply_in_order(instrumentor, write_config, monkeypatch):
    config_path = write_config(
        {"mode": "shadow", "rollout_percent": 10, "timing_sample_rate": 0.5, "shadow_sample_rate": 0.5}
    )
    monkeypatch.setenv("OTEL_PYTHON_LITELLM_RUST_ROLLOUT_PERCENT", "20")
    monkeypatch.setenv("OTEL_PYTHON_LITELLM_RUST_TOKEN_COUNTER_SHADOW_SAMPLE_RATE", "0.25")

    instrumentor.instrument(config_path=str(config_path), rollout_percent=30)
    assert token_counter_status()["mode"] == "shadow"  # file
    assert token_counter_status()["rollout_percent"] == 30  # kwargs over env over file
    assert token_counter_settings().shadow_sample_rate == 0.25  # env over file
    assert token_counter_settings().timing_sample_rate == 0.5  # file

    litellm_rust.set_mode("token_counter", "rust")
    assert token_counter_status()["mode"] == "rust"  # runtime over file
    assert token_counter_status()["rollout_percent"] == 30  # untouched by set_mode


def test_a_runtime_override_wins_over_kwargs_given_later_in_time(instrumentor):
    litellm_rust.set_mode("token_counter", "python")
    instrumentor.instrument(mode="shadow", rollout_percent=40)
    assert token_counter_status()["mode"] == "python"
    assert token_counter_status()["rollout_percent"] == 40


def test_runtime_overrides_of_one_component_accumulate_across_calls():
    litellm_rust.set_mode("token_counter", "shadow")
    litellm_rust.configure("token_counter", rollout_percent=25)
    assert token_counter_status()["mode"] == "shadow"
    assert token_counter_status()["rollout_percent"] == 25


def test_without_sources_every_setting_comes_from_the_defaults():
    sources = token_counter_status()["sources"]
    assert set(sources) >= {"mode", "rollout_percent", "capture_content", "breaker.probe_rate"}
    assert set(sources.values()) == {"default"}


def test_status_shows_which_source_set_each_setting(instrumentor, write_config, monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_LITELLM_RUST_ROLLOUT_PERCENT", "50")
    path = write_config({"mode": "shadow", "components": {"token_counter": {"breaker": {"probe_rate": 0.5}}}})
    instrumentor.instrument(config_path=str(path), timing_sample_rate=0.5)
    litellm_rust.set_mode("token_counter", "python")
    sources = token_counter_status()["sources"]
    assert sources["mode"] == "runtime"
    assert sources["rollout_percent"] == "environment"
    assert sources["timing_sample_rate"] == "instrument"
    assert sources["breaker.probe_rate"] == "file"
    assert sources["shadow_sample_rate"] == "default"
    assert status()["rate_limits"]["sources"]["mode"] == "file"


def test_clearing_a_components_overrides_lets_the_file_apply_again(instrumentor, write_config):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow"})))
    litellm_rust.set_mode("token_counter", "python")
    litellm_rust.clear_overrides("token_counter")
    assert token_counter_status()["mode"] == "shadow"
    assert token_counter_status()["sources"]["mode"] == "file"
    write_config({"mode": "python"})
    PLANE.check_reload()
    assert token_counter_status()["mode"] == "python"


def test_clearing_one_components_overrides_keeps_the_shared_and_the_others():
    litellm_rust.configure(rollout_percent=30)
    litellm_rust.set_mode("token_counter", "python")
    litellm_rust.set_mode("rate_limits", "shadow")
    litellm_rust.clear_overrides("token_counter")
    assert token_counter_status()["mode"] == "rust"
    assert token_counter_status()["rollout_percent"] == 30
    assert status()["rate_limits"]["mode"] == "shadow"


def test_clearing_every_override_restores_the_other_sources():
    litellm_rust.configure(rollout_percent=30, breaker={"min_calls": 3})
    litellm_rust.set_mode("token_counter", "python")
    litellm_rust.clear_overrides()
    assert token_counter_settings() == ComponentSettings()
    assert set(token_counter_status()["sources"].values()) == {"default"}


def test_clearing_the_overrides_of_an_unknown_component_is_an_error():
    litellm_rust.set_mode("token_counter", "python")
    with pytest.raises(ConfigError, match="unknown component 'embeddings'"):
        litellm_rust.clear_overrides("embeddings")
    assert token_counter_status()["mode"] == "python"


def test_runtime_breaker_overrides_accumulate_field_by_field_across_calls():
    litellm_rust.configure("token_counter", breaker={"cool_off_seconds": 5})
    litellm_rust.configure("token_counter", breaker={"min_calls": 3})
    assert token_counter_settings().breaker.min_calls == 3
    assert token_counter_settings().breaker.cool_off_seconds == 5


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer, path",
    [
        ({"components": {"token_counter": {"mode": "turbo"}}}, "components.token_counter.mode"),
        ({"mode": "turbo"}, "mode"),
        ({"mode": "RUST"}, "mode"),
        ({"components": {"embeddings": {"mode": "rust"}}}, "components.embeddings"),
        ({"components": {"token_counter": {"speed": 11}}}, "components.token_counter.speed"),
        ({"speed": 11}, "speed"),
        ({"components": {"token_counter": {"rollout_percent": 101}}}, "components.token_counter.rollout_percent"),
        ({"rollout_percent": -1}, "rollout_percent"),
        ({"timing_sample_rate": 1.5}, "timing_sample_rate"),
        ({"shadow_sample_rate": -0.1}, "shadow_sample_rate"),
        ({"rollout_percent": "lots"}, "rollout_percent"),
        ({"timing_sample_rate": ""}, "timing_sample_rate"),
        ({"rollout_percent": True}, "rollout_percent"),
        ({"rollout_percent": [50]}, "rollout_percent"),
        ({"rollout_percent": None}, "rollout_percent"),
        ({"capture_content": "maybe"}, "capture_content"),
        ({"capture_content": 1}, "capture_content"),
        ({"rate_limit_algorithm": "smooth"}, "rate_limit_algorithm"),
        (
            {"components": {"token_counter": {"rate_limit_algorithm": None}}},
            "components.token_counter.rate_limit_algorithm",
        ),
        (
            {"components": {"token_counter": {"breaker": {"min_calls": 0}}}},
            "components.token_counter.breaker.min_calls",
        ),
        ({"breaker": {"min_calls": 2.5}}, "breaker.min_calls"),
        ({"breaker": {"probes_to_close": "many"}}, "breaker.probes_to_close"),
        ({"breaker": {"cool_off_seconds": -1}}, "breaker.cool_off_seconds"),
        ({"breaker": {"probe_rate": 2}}, "breaker.probe_rate"),
        ({"breaker": {"max_error_rate": "1.01"}}, "breaker.max_error_rate"),
        ({"components": {"token_counter": {"breaker": {"tripwire": 1}}}}, "components.token_counter.breaker.tripwire"),
        ({"breaker": {"probe_rate": 0}}, "breaker.probe_rate"),
        ({"breaker": {"max_latency_ratio": 0}}, "breaker.max_latency_ratio"),
        ({"breaker": {"max_latency_ratio": 0.5}}, "breaker.max_latency_ratio"),
        ({"breaker": {"window_seconds": 0}}, "breaker.window_seconds"),
        ({"breaker": {"window_seconds": 86_401}}, "breaker.window_seconds"),
        ({"breaker": {"cool_off_seconds": 1e300}}, "breaker.cool_off_seconds"),
        ({"breaker": {"probes_to_close": 0}}, "breaker.probes_to_close"),
        ({"breaker": {"min_latency_samples": 0}}, "breaker.min_latency_samples"),
        ({"rollout_percent": 10**400}, "rollout_percent"),
        ({"rollout_percent": "1" * 400}, "rollout_percent"),
        ({"breaker": {"max_latency_ratio": 10**400}}, "breaker.max_latency_ratio"),
        ({"breaker": {"min_calls": "9" * 5000}}, "breaker.min_calls"),
        ({"mode": "x" * 5000}, "mode"),
        ({"breaker": 5}, "breaker"),
        ({"components": ["token_counter"]}, "components"),
        ({"components": {"token_counter": "shadow"}}, "components.token_counter"),
    ],
)
def test_an_invalid_value_is_rejected_with_an_error_naming_the_field(layer, path):
    with field_error(path):
        build(layer)


@pytest.mark.parametrize(
    "layer, message",
    [
        ({"mode": "turbo"}, "unknown mode 'turbo' (expected one of python, shadow, rust)"),
        ({"components": {"embeddings": {}}}, "unknown component (expected one of token_counter)"),
        ({"speed": 11}, "unknown setting"),
        ({"rollout_percent": 101}, "must be between 0 and 100, got 101"),
        ({"timing_sample_rate": 1.5}, "must be between 0 and 1, got 1.5"),
        ({"rollout_percent": "lots"}, "expected a number, got 'lots'"),
        ({"breaker": {"min_calls": 2.5}}, "expected a whole number, got 2.5"),
        ({"breaker": {"min_calls": 0}}, "must be at least 1, got 0"),
        ({"capture_content": "maybe"}, "expected true or false, got 'maybe'"),
        ({"breaker": {"probe_rate": 0}}, "must be greater than 0 and at most 1, got 0"),
        ({"breaker": {"window_seconds": 0}}, "must be greater than 0 and at most 86400.0, got 0"),
        ({"breaker": {"max_latency_ratio": 0.5}}, "must be at least 1, got 0.5"),
        ({"breaker": {"cool_off_seconds": 1e300}}, "must be between 0 and 86400.0, got 1e+300"),
        ({"rollout_percent": 10**400}, "must be between 0 and 100, got 1000000000000000000000000000000000000000..."),
        ({"breaker": {"max_latency_ratio": 10**400}}, "expected a finite number"),
        ({"mode": "x" * 5000}, "unknown mode 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (5002 characters)"),
    ],
)
def test_an_invalid_value_error_says_what_is_wrong(layer, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build(layer)


def test_the_extremes_of_the_breaker_ranges_are_accepted():
    breaker = (
        build(
            {"breaker": {"probe_rate": 1e-9, "window_seconds": 86_400, "cool_off_seconds": 0, "max_latency_ratio": 1}}
        )
        .components["token_counter"]
        .breaker
    )
    assert (breaker.probe_rate, breaker.window_seconds, breaker.cool_off_seconds) == (1e-9, 86_400, 0)
    assert breaker.max_latency_ratio == 1


def test_the_smallest_timing_sample_rate_applies_as_never_timing():
    litellm_rust.configure("token_counter", timing_sample_rate=5e-324)  # 1 / rate overflows
    assert token_counter_settings().timing_sample_rate == 5e-324


def test_a_huge_integer_given_to_configure_is_an_error_naming_the_field():
    with field_error("components.token_counter.rollout_percent"):
        litellm_rust.configure("token_counter", rollout_percent=10**400)
    assert token_counter_settings() == ComponentSettings()


def test_a_layer_that_is_not_a_mapping_is_rejected():
    with field_error("configuration"):
        build(["mode", "rust"])


def test_numbers_given_as_strings_are_parsed():
    settings = build({"rollout_percent": "25", "timing_sample_rate": "0.5", "breaker": {"min_calls": "7"}}).components[
        "token_counter"
    ]
    assert settings.rollout_percent == 25.0
    assert settings.timing_sample_rate == 0.5
    assert settings.breaker.min_calls == 7
    assert isinstance(settings.breaker.min_calls, int)


def test_a_whole_float_is_accepted_for_a_count():
    settings = build({"breaker": {"min_calls": 5.0}}).components["token_counter"]
    assert settings.breaker.min_calls == 5
    assert isinstance(settings.breaker.min_calls, int)


def test_bounds_are_inclusive():
    settings = build({"rollout_percent": 0, "timing_sample_rate": 1, "shadow_sample_rate": 0}).components[
        "token_counter"
    ]
    assert settings.rollout_percent == 0
    assert settings.timing_sample_rate == 1
    assert settings.shadow_sample_rate == 0


@pytest.mark.parametrize(
    "layer, path",
    [
        ({"rollout_percent": float("nan")}, "rollout_percent"),
        ({"rollout_percent": "nan"}, "rollout_percent"),
        ({"shadow_sample_rate": "NaN"}, "shadow_sample_rate"),
        ({"breaker": {"probe_rate": float("nan")}}, "breaker.probe_rate"),
    ],
    ids=["rollout-float", "rollout-string", "shadow-rate-string", "probe-rate-float"],
)
def test_not_a_number_is_rejected_for_a_bounded_setting(layer, path):
    with field_error(path):
        build(layer)


@pytest.mark.parametrize(
    "layer, path",
    [
        ({"breaker": {"min_calls": float("inf")}}, "breaker.min_calls"),
        ({"breaker": {"probes_to_close": float("nan")}}, "breaker.probes_to_close"),
    ],
    ids=["infinite", "nan"],
)
def test_a_non_finite_count_is_rejected_as_a_config_error(layer, path):
    with field_error(path):
        build(layer)


@pytest.mark.parametrize(
    "text, expected",
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("false", False), ("0", False), ("No", False)],
)
def test_boolean_settings_parse_from_environment_strings(text, expected):
    layer = from_environment(NAMES, {"OTEL_PYTHON_LITELLM_RUST_CAPTURE_CONTENT": text})
    assert build(layer).components["token_counter"].capture_content is expected


def test_set_mode_rejects_an_unknown_component_and_keeps_the_configuration():
    litellm_rust.set_mode("token_counter", "shadow")
    with pytest.raises(ConfigError, match="unknown component 'embeddings'"):
        litellm_rust.set_mode("embeddings", "python")
    assert token_counter_status()["mode"] == "shadow"


def test_set_mode_rejects_an_unknown_mode_and_keeps_the_configuration():
    litellm_rust.set_mode("token_counter", "shadow")
    with field_error("components.token_counter.mode"):
        litellm_rust.set_mode("token_counter", "turbo")
    assert token_counter_status()["mode"] == "shadow"
    litellm_rust.configure("token_counter", rollout_percent=50)  # the rejected mode was not kept
    assert token_counter_status()["mode"] == "shadow"


def test_configure_rejects_an_invalid_shared_setting_and_keeps_the_configuration():
    litellm_rust.configure(rollout_percent=50)
    with field_error("rollout_percent"):
        litellm_rust.configure(rollout_percent=150)
    assert token_counter_status()["rollout_percent"] == 50


def test_configure_rejects_an_unknown_setting():
    with field_error("components.token_counter.speed"):
        litellm_rust.configure("token_counter", speed=11)
    assert token_counter_settings() == ComponentSettings()


# -- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, text",
    [
        ("config.json", '{"mode": "shadow", "components": {"token_counter": {"rollout_percent": 25}}}'),
        ("config.yaml", "mode: shadow\ncomponents:\n  token_counter:\n    rollout_percent: 25\n"),
        ("config.yml", "mode: shadow\ncomponents:\n  token_counter:\n    rollout_percent: 25\n"),
        ("config.YAML", "mode: shadow\ncomponents:\n  token_counter:\n    rollout_percent: 25\n"),
    ],
)
def test_json_and_yaml_files_load_the_same_configuration(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    assert load_file(path) == {"mode": "shadow", "components": {"token_counter": {"rollout_percent": 25}}}


def test_an_empty_yaml_file_is_an_empty_configuration(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("")
    assert load_file(path) == {}


@pytest.mark.parametrize(
    "name, text, problem",
    [
        ("config.json", '{"mode": ', "not valid JSON"),
        ("config.json", "", "not valid JSON"),
        ("config.yaml", "mode: [shadow\n", "not valid YAML"),
        ("config.json", '["mode", "shadow"]', "expected a mapping at the top level"),
        ("config.yml", "- mode\n- shadow\n", "expected a mapping at the top level"),
    ],
    ids=["truncated-json", "empty-json", "broken-yaml", "json-list", "yaml-list"],
)
def test_an_invalid_file_is_rejected_naming_the_file_and_the_problem(tmp_path, name, text, problem):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: {re.escape(problem)}"):
        load_file(path)


def test_a_file_that_is_not_utf8_is_rejected_naming_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"mode": "\xff\xfe"}')
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: not UTF-8 text"):
        load_file(path)


def test_a_yaml_config_file_configures_instrument(instrumentor, write_config):
    path = write_config(
        "components:\n  token_counter:\n    mode: python\n    rollout_percent: 60\n", name="litellm_rust.yml"
    )
    instrumentor.instrument(config_path=str(path))
    assert token_counter_status()["mode"] == "python"
    assert token_counter_status()["rollout_percent"] == 60


def test_the_config_file_is_found_through_its_environment_variable(instrumentor, write_config, monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_LITELLM_RUST_CONFIG", str(write_config({"mode": "shadow"})))
    instrumentor.instrument()
    assert token_counter_status()["mode"] == "shadow"


def test_an_unparseable_config_file_at_instrument_raises_and_leaves_litellm_uninstrumented(instrumentor, write_config):
    original = litellm.utils.token_counter
    path = write_config('{"mode": "shadow",')
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: not valid JSON"):
        instrumentor.instrument(config_path=str(path))
    assert token_counter_status()["instrumented"] is False
    assert litellm.utils.token_counter is original
    assert token_counter_status()["mode"] == "rust"


def test_an_invalid_setting_in_the_config_file_at_instrument_raises_naming_the_field(instrumentor, write_config):
    original = litellm.utils.token_counter
    path = write_config({"components": {"token_counter": {"mode": "turbo"}}})
    with field_error("components.token_counter.mode"):
        instrumentor.instrument(config_path=str(path))
    assert token_counter_status()["instrumented"] is False
    assert litellm.utils.token_counter is original


def test_a_config_file_that_is_not_utf8_at_instrument_raises_a_config_error(instrumentor, tmp_path):
    path = tmp_path / "litellm_rust.json"
    path.write_bytes(b'{"mode": "\xc3\x28"}')
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: not UTF-8 text"):
        instrumentor.instrument(config_path=str(path))
    assert token_counter_status()["instrumented"] is False


def test_a_huge_integer_in_the_config_file_at_instrument_raises_naming_the_field(instrumentor, write_config):
    path = write_config('{"components": {"token_counter": {"rollout_percent": ' + "9" * 400 + "}}}")
    with field_error("components.token_counter.rollout_percent"):
        instrumentor.instrument(config_path=str(path))
    assert token_counter_status()["instrumented"] is False


def test_a_missing_config_file_at_instrument_raises_and_leaves_litellm_uninstrumented(instrumentor, tmp_path):
    original = litellm.utils.token_counter
    with pytest.raises(FileNotFoundError):
        instrumentor.instrument(config_path=str(tmp_path / "absent.json"))
    assert token_counter_status()["instrumented"] is False
    assert litellm.utils.token_counter is original


def test_a_failed_instrument_can_be_retried(instrumentor, write_config):
    with pytest.raises(ConfigError):
        instrumentor.instrument(config_path=str(write_config("{")))
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow"})))
    assert token_counter_status()["instrumented"] is True
    assert token_counter_status()["mode"] == "shadow"


def test_a_failed_instrument_leaves_the_runtime_api_usable(instrumentor):
    with field_error("mode"):
        instrumentor.instrument(mode="turbo")
    litellm_rust.set_mode("token_counter", "python")
    assert token_counter_status()["mode"] == "python"


# -- reload --------------------------------------------------------------------------------------


def test_a_rewritten_config_file_is_applied_on_reload(instrumentor, write_config):
    path = write_config({"mode": "shadow"})
    instrumentor.instrument(config_path=str(path))
    write_config({"mode": "python", "rollout_percent": 70})
    PLANE.check_reload()
    assert token_counter_status()["mode"] == "python"
    assert token_counter_status()["rollout_percent"] == 70


def test_an_unchanged_config_file_is_not_reloaded(instrumentor, write_config):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow"})))
    assert PLANE.check_reload() is False
    assert token_counter_status()["mode"] == "shadow"


def test_a_reloaded_file_replaces_the_previous_file_entirely(instrumentor, write_config):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow", "rollout_percent": 10})))
    write_config({"mode": "shadow"})
    PLANE.check_reload()
    assert token_counter_status()["rollout_percent"] == 100


def test_a_reloaded_file_does_not_override_a_runtime_override(instrumentor, write_config):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow"})))
    litellm_rust.set_mode("token_counter", "rust")
    write_config({"mode": "python", "rollout_percent": 70})
    PLANE.check_reload()
    assert token_counter_status()["mode"] == "rust"
    assert token_counter_status()["rollout_percent"] == 70


def test_an_invalid_rewrite_keeps_the_last_good_configuration_and_counts_an_error(instrumentor, write_config):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow", "rollout_percent": 10})))
    errors_before = PLANE.reload_errors
    write_config({"mode": "turbo"})
    PLANE.check_reload()
    assert token_counter_status()["mode"] == "shadow"
    assert token_counter_status()["rollout_percent"] == 10
    assert PLANE.reload_errors == errors_before + 1


def test_an_unparseable_rewrite_keeps_the_last_good_configuration(instrumentor, write_config):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow"})))
    errors_before = PLANE.reload_errors
    write_config('{"mode": "python"')
    PLANE.check_reload()
    assert token_counter_status()["mode"] == "shadow"
    assert PLANE.reload_errors == errors_before + 1


def test_a_deleted_config_file_keeps_the_last_good_configuration(instrumentor, write_config):
    path = write_config({"mode": "shadow"})
    instrumentor.instrument(config_path=str(path))
    errors_before = PLANE.reload_errors
    path.unlink()
    PLANE.check_reload()
    assert token_counter_status()["mode"] == "shadow"
    assert PLANE.reload_errors == errors_before + 1


def test_the_same_invalid_rewrite_twice_is_counted_twice_but_logged_once(instrumentor, write_config, caplog):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow"})))
    errors_before = PLANE.reload_errors
    with caplog.at_level(logging.ERROR, logger="litellm_rust"):
        for _ in range(2):
            write_config({"mode": "turbo"})
            PLANE.check_reload()
    assert PLANE.reload_errors == errors_before + 2
    [record] = litellm_rust_errors(caplog)
    assert "keeping the last good configuration" in record.getMessage()
    assert "mode: unknown mode 'turbo'" in record.getMessage()


def test_a_different_invalid_rewrite_is_logged_again(instrumentor, write_config, caplog):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow"})))
    with caplog.at_level(logging.ERROR, logger="litellm_rust"):
        write_config({"mode": "turbo"})
        PLANE.check_reload()
        write_config({"rollout_percent": 500})
        PLANE.check_reload()
    messages = [record.getMessage() for record in litellm_rust_errors(caplog)]
    assert len(messages) == 2
    assert "unknown mode 'turbo'" in messages[0]
    assert "rollout_percent: must be between 0 and 100" in messages[1]


def test_a_valid_rewrite_after_an_invalid_one_is_applied(instrumentor, write_config):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow"})))
    write_config({"mode": "turbo"})
    PLANE.check_reload()
    write_config({"mode": "python"})
    PLANE.check_reload()
    assert token_counter_status()["mode"] == "python"


def test_an_invalid_rewrite_with_an_infinite_count_keeps_the_last_good_configuration(instrumentor, write_config):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow"})))
    errors_before = PLANE.reload_errors
    write_config('{"mode": "python", "breaker": {"min_calls": 1e999}}')  # json.loads gives inf
    PLANE.check_reload()
    assert token_counter_status()["mode"] == "shadow"
    assert PLANE.reload_errors == errors_before + 1


@pytest.mark.parametrize(
    "content",
    [
        b'{"mode": "\xff"}',
        b'{"rollout_percent": ' + b"9" * 400 + b"}",
        b'{"breaker": {"max_latency_ratio": ' + b"9" * 400 + b"}}",
        b'{"breaker": {"probe_rate": 0}}',
    ],
    ids=["not-utf8", "huge-rollout", "huge-latency-ratio", "zero-probe-rate"],
)
def test_a_rewrite_with_extreme_content_keeps_the_last_good_configuration(instrumentor, write_config, content):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow", "rollout_percent": 10})))
    errors_before = PLANE.reload_errors
    write_config(content)
    assert PLANE.check_reload() is False
    assert (token_counter_status()["mode"], token_counter_status()["rollout_percent"]) == ("shadow", 10)
    assert PLANE.reload_errors == errors_before + 1
    write_config({"mode": "python"})
    assert PLANE.check_reload() is True
    assert token_counter_status()["mode"] == "python"


def test_an_unexpected_error_at_reload_is_counted_logged_with_its_traceback_and_survived(
    instrumentor, write_config, monkeypatch, caplog
):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow"})))
    errors_before = PLANE.reload_errors

    def broken(settings):
        raise RuntimeError("a component's check is broken")

    monkeypatch.setattr(components()["token_counter"], "check_settings", broken)
    write_config({"mode": "python"})
    with caplog.at_level(logging.ERROR, logger="litellm_rust"):
        assert PLANE.check_reload() is False
    assert token_counter_status()["mode"] == "shadow"
    assert PLANE.reload_errors == errors_before + 1
    [record] = litellm_rust_errors(caplog)
    assert "RuntimeError: a component's check is broken" in record.getMessage()
    assert record.exc_info is not None
    monkeypatch.undo()
    write_config({"mode": "python"})
    assert PLANE.check_reload() is True


def test_the_background_reloader_survives_a_file_that_is_not_utf8(instrumentor, write_config):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow"})))
    errors_before = PLANE.reload_errors
    write_config(b'{"mode": "\xff"}')
    deadline = time.monotonic() + 5
    while PLANE.reload_errors == errors_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert PLANE.reload_errors == errors_before + 1
    write_config({"mode": "python"})
    deadline = time.monotonic() + 5
    while token_counter_status()["mode"] != "python" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert token_counter_status()["mode"] == "python"
    assert PLANE._reloader.is_alive()


def test_the_background_reloader_applies_a_rewritten_file_on_its_own(instrumentor, write_config):
    instrumentor.instrument(config_path=str(write_config({"mode": "shadow"})))
    write_config({"mode": "python"})
    deadline = time.monotonic() + 5
    while token_counter_status()["mode"] != "python" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert token_counter_status()["mode"] == "python"


# -- environment ---------------------------------------------------------------------------------


def test_from_environment_reads_shared_and_per_component_variables():
    layer = from_environment(
        NAMES,
        {
            "OTEL_PYTHON_LITELLM_RUST_MODE": "shadow",
            "OTEL_PYTHON_LITELLM_RUST_TIMING_SAMPLE_RATE": "0.5",
            "OTEL_PYTHON_LITELLM_RUST_TOKEN_COUNTER_ROLLOUT_PERCENT": "25",
            "OTEL_PYTHON_LITELLM_RUST_TOKEN_COUNTER_MODE": "python",
            "UNRELATED": "1",
        },
    )
    assert layer == {
        "mode": "shadow",
        "timing_sample_rate": "0.5",
        "components": {"token_counter": {"rollout_percent": "25", "mode": "python"}},
    }
    settings = build(layer).components["token_counter"]
    assert settings.mode == "python"
    assert settings.rollout_percent == 25
    assert settings.timing_sample_rate == 0.5


def test_empty_environment_variables_are_ignored():
    environ = {"OTEL_PYTHON_LITELLM_RUST_MODE": "", "OTEL_PYTHON_LITELLM_RUST_TOKEN_COUNTER_ROLLOUT_PERCENT": ""}
    assert from_environment(NAMES, environ) == {}


def test_from_environment_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_LITELLM_RUST_TOKEN_COUNTER_CAPTURE_CONTENT", "true")
    assert from_environment(NAMES) == {"components": {"token_counter": {"capture_content": "true"}}}


def test_environment_variable_names_include_the_shared_and_per_component_names():
    names = environment_variable_names(NAMES)
    assert "OTEL_PYTHON_LITELLM_RUST_CONFIG" in names
    for setting in ("MODE", "ROLLOUT_PERCENT", "SHADOW_SAMPLE_RATE", "TIMING_SAMPLE_RATE", "CAPTURE_CONTENT"):
        assert f"OTEL_PYTHON_LITELLM_RUST_{setting}" in names
        assert f"OTEL_PYTHON_LITELLM_RUST_TOKEN_COUNTER_{setting}" in names
    assert len(names) == len(set(names))


def test_every_environment_variable_is_exposed_to_opentelemetry_instrument():
    for name in environment_variable_names(settings_classes()):
        assert getattr(environment_variables, name) == name


def test_a_huge_integer_in_an_environment_variable_at_instrument_raises_naming_the_field(instrumentor, monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_LITELLM_RUST_TOKEN_COUNTER_ROLLOUT_PERCENT", "9" * 400)
    with field_error("components.token_counter.rollout_percent"):
        instrumentor.instrument()
    assert token_counter_status()["instrumented"] is False


def test_an_invalid_environment_variable_at_instrument_raises_naming_the_field(instrumentor, monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_LITELLM_RUST_TOKEN_COUNTER_ROLLOUT_PERCENT", "half")
    with field_error("components.token_counter.rollout_percent"):
        instrumentor.instrument()
    assert token_counter_status()["instrumented"] is False


# -- settings a component declares ---------------------------------------------------------------


@dataclass(frozen=True)
class ShapingSettings(ComponentSettings):
    """A component's own settings, declared as a component declares them."""

    shape: str = choice("round", ("round", "square"), "shape")
    corners: int = bounded(4, 0, 8)
    sharp: bool = False


DECLARING = {"token_counter": ComponentSettings, "shaper": ShapingSettings}


def test_a_declared_setting_has_its_default_and_is_validated_from_its_declaration():
    assert build(names=DECLARING).components["shaper"] == ShapingSettings()
    settings = build({"shape": "square", "corners": "8", "sharp": "yes"}, names=DECLARING).components["shaper"]
    assert (settings.shape, settings.corners, settings.sharp) == ("square", 8, True)
    with pytest.raises(ConfigError, match=re.escape("shape: unknown shape 'oval' (expected one of round, square)")):
        build({"shape": "oval"}, names=DECLARING)
    with pytest.raises(ConfigError, match=re.escape("components.shaper.corners: must be between 0 and 8, got 9")):
        build({"components": {"shaper": {"corners": 9}}}, names=DECLARING)


def test_a_shared_declared_setting_reaches_only_the_components_that_declare_it():
    config = build({"shape": "square", "mode": "shadow"}, names=DECLARING)
    assert config.components["shaper"].shape == "square"
    assert config.components["token_counter"] == ComponentSettings(mode="shadow")


def test_a_setting_a_component_does_not_declare_is_rejected_for_it():
    with field_error("components.token_counter.shape"):
        build({"components": {"token_counter": {"shape": "square"}}}, names=DECLARING)


def test_a_shared_setting_no_component_declares_is_rejected_naming_it():
    with pytest.raises(ConfigError, match=r"^shape: unknown setting \(expected one of mode, "):
        build({"shape": "square"})


def test_declared_settings_have_environment_variables_shared_and_for_their_component_only():
    names = environment_variable_names(DECLARING)
    assert "OTEL_PYTHON_LITELLM_RUST_SHAPE" in names
    assert "OTEL_PYTHON_LITELLM_RUST_SHAPER_CORNERS" in names
    assert "OTEL_PYTHON_LITELLM_RUST_TOKEN_COUNTER_SHAPE" not in names
    layer = from_environment(
        DECLARING, {"OTEL_PYTHON_LITELLM_RUST_SHAPE": "square", "OTEL_PYTHON_LITELLM_RUST_SHAPER_SHARP": "true"}
    )
    assert layer == {"shape": "square", "components": {"shaper": {"sharp": "true"}}}
    assert build(layer, names=DECLARING).components["shaper"].sharp is True


def test_a_setting_declared_without_what_makes_a_value_valid_is_refused():
    @dataclass(frozen=True)
    class Undeclared(ComponentSettings):
        label: str = "free text"

    with pytest.raises(TypeError, match=r"Undeclared\.label: declare a str with choice\(\)"):
        build(names={"labeller": Undeclared})


def test_nested_declared_settings_merge_field_by_field():
    @dataclass(frozen=True)
    class Nested(ComponentSettings):
        inner: ShapingSettings = field(default_factory=ShapingSettings)

    settings = build({"inner": {"corners": 3}}, {"inner": {"sharp": True}}, names={"nested": Nested}).components[
        "nested"
    ]
    assert (settings.inner.corners, settings.inner.sharp, settings.inner.shape) == (3, True, "round")


def test_the_components_own_settings_keep_their_names_messages_and_variables():
    """rate_limits declares `rate_limit_algorithm`, routing `deployment_series_cap`: a top-level
    value reaches the component that declares it, under the names they always had."""
    config = build({"rate_limit_algorithm": "gcra", "deployment_series_cap": 3}, names=settings_classes())
    assert config.components["rate_limits"].rate_limit_algorithm == "gcra"
    assert config.components["routing"].deployment_series_cap == 3
    assert config.components["token_counter"] == ComponentSettings()
    with pytest.raises(ConfigError, match=re.escape("unknown algorithm 'GCRA' (expected one of parity, gcra)")):
        build({"rate_limit_algorithm": "GCRA"}, names=settings_classes())
    names = environment_variable_names(settings_classes())
    for variable in (
        "OTEL_PYTHON_LITELLM_RUST_RATE_LIMIT_ALGORITHM",
        "OTEL_PYTHON_LITELLM_RUST_RATE_LIMITS_RATE_LIMIT_ALGORITHM",
        "OTEL_PYTHON_LITELLM_RUST_DEPLOYMENT_SERIES_CAP",
        "OTEL_PYTHON_LITELLM_RUST_ROUTING_DEPLOYMENT_SERIES_CAP",
    ):
        assert variable in names


def test_a_declared_setting_is_read_from_its_environment_variable_at_instrument(instrumentor, monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_LITELLM_RUST_ROUTING_DEPLOYMENT_SERIES_CAP", "7")
    monkeypatch.setenv("OTEL_PYTHON_LITELLM_RUST_RATE_LIMIT_ALGORITHM", "gcra")
    instrumentor.instrument()
    assert components()["routing"].control.settings.deployment_series_cap == 7
    assert components()["rate_limits"].control.settings.rate_limit_algorithm == "gcra"


def test_opentelemetry_instrument_sets_a_declared_setting_from_its_flag(tmp_path):
    app = """
import json
from litellm_rust.components import components

print(json.dumps(components()["routing"].control.settings.deployment_series_cap))
"""
    assert run_under_opentelemetry_instrument(tmp_path, app, "--litellm_rust_routing_deployment_series_cap", "9") == 9


APP = """
import json
import litellm
from litellm_rust import status

litellm.token_counter(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
print(json.dumps(status()))
"""


def run_instrumented_app(tmp_path: Path, *options: str) -> dict:
    return run_under_opentelemetry_instrument(tmp_path, APP, *options)


def test_opentelemetry_instrument_sets_a_per_component_setting_from_its_flag(tmp_path):
    result = run_instrumented_app(tmp_path, "--litellm_rust_token_counter_mode", "shadow")
    assert result["token_counter"]["mode"] == "shadow"
    assert result["token_counter"]["shadow_comparisons"] == 1


def test_opentelemetry_instrument_reads_the_config_file_from_its_flag(tmp_path, write_config):
    path = write_config({"components": {"token_counter": {"mode": "python", "rollout_percent": 40}}})
    result = run_instrumented_app(tmp_path, "--litellm_rust_config", str(path))
    assert result["token_counter"]["mode"] == "python"
    assert result["token_counter"]["rollout_percent"] == 40
    assert result["token_counter"]["python_calls"] == 1


# -- telemetry -----------------------------------------------------------------------------------


def metric_points(reader: InMemoryMetricReader, name: str) -> list:
    data = reader.get_metrics_data()
    return [
        point
        for resource_metrics in (data.resource_metrics if data else [])
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_rejected_reloads_are_exported_as_the_reload_errors_metric(instrumentor, write_config):
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    try:
        instrumentor.instrument(config_path=str(write_config({"mode": "shadow"})), meter_provider=meter_provider)
        errors_before = PLANE.reload_errors
        [point] = metric_points(reader, "litellm_rust.config.reload_errors")
        assert point.value == errors_before

        write_config({"mode": "turbo"})
        PLANE.check_reload()

        [point] = metric_points(reader, "litellm_rust.config.reload_errors")
        assert point.value == errors_before + 1
    finally:
        meter_provider.shutdown()
