"""The generic layers know no particular component: configuration, telemetry and the control plane
take what a component declares (its settings class, its instruments), and the standalone
`RateLimiter` reports to a process-wide Redis health record, not to the instrumentor's runtime."""

import ast
import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from conftest import metric_points
from imports import MODULES, import_closure
from litellm_rust import RateLimiter
from litellm_rust.components import COMPONENT_NAMES, components, settings_classes
from litellm_rust.config import ComponentSettings
from litellm_rust.redis_health import REDIS_HEALTH, RedisHealth

GENERIC_MODULES = ("config", "telemetry", "control_plane", "environment_variables", "_component")


def names_in_code(path: Path) -> set[str]:
    """The identifiers and string constants of a module, documentation (bare strings) left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    documentation = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in documentation:
            names.add(node.value)
    return names


def own_settings() -> set[str]:
    """The settings components declare beyond the generic ones."""
    generic = {setting.name for setting in fields(ComponentSettings)}
    return {setting.name for cls in settings_classes().values() for setting in fields(cls)} - generic


# -- import graph --------------------------------------------------------------------------------


def test_the_import_closure_follows_imports_through_modules():
    """The helper itself: routing's component reaches its health module, and through it telemetry."""
    closure = import_closure("litellm_rust.components.routing.picks")
    assert {"litellm_rust.components.routing.health", "litellm_rust.telemetry", "litellm_rust.breaker"} <= closure


def test_telemetry_imports_no_component_and_no_routing_health():
    closure = import_closure("litellm_rust.telemetry")
    assert not {name for name in closure if name.startswith("litellm_rust.components")}
    assert "litellm_rust.routing_health" not in closure


def test_the_standalone_rate_limiter_does_not_import_the_instrumentors_runtime():
    closure = import_closure("litellm_rust.rate_limiter")
    assert not closure & {"litellm_rust.control_plane", "litellm_rust.instrumentor", "litellm_rust.components"}


def test_the_generic_layers_name_no_component_and_no_components_own_setting():
    assert own_settings() >= {"rate_limit_algorithm", "deployment_series_cap"}
    for module in GENERIC_MODULES:
        named = names_in_code(MODULES[f"litellm_rust.{module}"])
        particular = {name for name in named for word in (*COMPONENT_NAMES, *own_settings()) if word in name.split(".")}
        assert not particular, f"{module} names {particular}"


def test_the_environment_variable_entry_point_reads_every_components_settings_without_litellm():
    program = (
        "import json, sys\n"
        "import litellm_rust.environment_variables as variables\n"
        "print(json.dumps(['litellm' in sys.modules, sorted(n for n in vars(variables) if n.startswith('OTEL'))]))"
    )
    completed = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True)
    litellm_imported, variables = json.loads(completed.stdout)
    assert litellm_imported is False
    assert "OTEL_PYTHON_LITELLM_RUST_ROUTING_DEPLOYMENT_SERIES_CAP" in variables
    assert "OTEL_PYTHON_LITELLM_RUST_RATE_LIMIT_ALGORITHM" in variables


# -- instruments a component contributes ---------------------------------------------------------


def test_routing_contributes_its_health_gauges_through_the_instruments_hook():
    contributed = {instrument.name: instrument for instrument in components()["routing"].instruments()}
    assert set(contributed) == {
        "litellm_rust.routing.deployments",
        "litellm_rust.routing.deployment.in_flight",
        "litellm_rust.routing.deployment.latency",
    }
    assert {instrument.kind for instrument in contributed.values()} == {"gauge"}
    assert contributed["litellm_rust.routing.deployment.latency"].unit == "s"
    for name, instrument in components().items():
        if name != "routing":
            assert list(instrument.instruments()) == []


# -- the Redis health record ---------------------------------------------------------------------


@pytest.fixture
def redis_health_restored():
    """The process-wide record starts the test with Redis reachable, and gets its state back after
    it without an event."""
    saved = (REDIS_HEALTH.errors, REDIS_HEALTH.available)
    REDIS_HEALTH.available = True
    yield REDIS_HEALTH
    REDIS_HEALTH.errors, REDIS_HEALTH.available = saved


def test_the_record_counts_errors_and_tells_listeners_only_of_changes():
    health = RedisHealth()
    heard = []
    health.on_event(lambda name, attributes: heard.append((name, dict(attributes))))
    health.record(None)
    for error in ("refused", "refused again"):
        health.record(error)
    health.record(None)
    health.record(None)
    assert health.errors == 2 and health.available
    assert heard == [
        ("litellm_rust.redis.unavailable", {"litellm_rust.operation": "rate_limits", "error.type": "refused"}),
        ("litellm_rust.redis.available", {"litellm_rust.operation": "rate_limits"}),
    ]


def test_a_rate_limiter_used_alone_reports_redis_outcomes_to_the_record(redis_health_restored):
    errors_before = REDIS_HEALTH.errors
    limiter = RateLimiter(rpm=5, redis_url="redis://127.0.0.1:1", redis_timeout=0.2)  # nothing listens there
    assert limiter.check("k").error is not None
    assert (REDIS_HEALTH.errors - errors_before, REDIS_HEALTH.available) == (1, False)


def test_the_records_errors_and_outage_reach_the_instrumentors_telemetry(otel, redis_health_restored):
    otel.instrument()
    error = RateLimiter(rpm=5, redis_url="redis://127.0.0.1:1", redis_timeout=0.2).check("k").error
    [(_, point)] = metric_points(otel.reader)["litellm_rust.redis.errors"]
    assert point.value == REDIS_HEALTH.errors and point.attributes == {"litellm_rust.operation": "rate_limits"}
    [event] = [span for span in otel.exporter.get_finished_spans() if span.name.startswith("litellm_rust.redis")]
    assert (event.name, event.attributes["error.type"]) == ("litellm_rust.redis.unavailable", error)
