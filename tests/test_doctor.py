"""`litellm-rust doctor`: each check finds what it is for, says why and the fix, and a problem exits 1."""

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from litellm_rust import force_open
from litellm_rust.__main__ import main
from litellm_rust._litellm import SURFACES
from litellm_rust.cli import doctor
from litellm_rust.components import COMPONENT_NAMES
from litellm_rust.config import ENV_PREFIX

# Exporters every test environment has: no OTLP package is needed for these.
INSTALLED_EXPORTERS = {
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "prometheus",
    "OTEL_LOGS_EXPORTER": "none",
}


def _environment(**settings: str) -> dict[str, str]:
    """This environment without litellm-rust's variables, with installed exporters and `settings`."""
    kept = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}
    return {**kept, **INSTALLED_EXPORTERS, **settings}


DOCTOR = (sys.executable, "-m", "litellm_rust", "doctor")


def _run(*command: str, **settings: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        env=_environment(**settings),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _problems(report: dict) -> list[dict]:
    return [finding for findings in report.values() for finding in findings if finding["level"] == "PROBLEM"]


@pytest.fixture
def doctor_in_process(monkeypatch, capsys):
    """`litellm-rust doctor --json` in this process with `settings` as the only litellm-rust
    variables: (exit status, findings by group)."""

    def run(**settings: str) -> tuple[int, dict]:
        for name in os.environ:
            if name.startswith(ENV_PREFIX):
                monkeypatch.delenv(name)
        for name, value in {**INSTALLED_EXPORTERS, **settings}.items():
            monkeypatch.setenv(name, value)
        status = main(["doctor", "--json"])
        return status, json.loads(capsys.readouterr().out)

    return run


def test_a_healthy_environment_exits_0_and_reports_every_component():
    completed = _run(*DOCTOR, "--json")
    report = json.loads(completed.stdout)
    assert _problems(report) == []
    assert completed.returncode == 0, completed.stdout
    assert [finding["subject"] for finding in report["components"]] == list(COMPONENT_NAMES)
    assert all("Rust serves every call" in finding["why"] for finding in report["components"])
    assert report["native module"][1]["level"] == "OK"  # the token count equals litellm's


def test_an_invalid_config_file_is_a_problem_naming_the_field(tmp_path, doctor_in_process):
    config = tmp_path / "litellm-rust.json"
    config.write_text(json.dumps({"components": {"token_counter": {"mode": "fast"}}}))
    status, report = doctor_in_process(OTEL_PYTHON_LITELLM_RUST_CONFIG=str(config))
    assert status == 1
    (problem,) = _problems(report)
    assert problem["subject"] == f"config file {config}"
    assert problem["why"].startswith("components.token_counter.mode: unknown mode 'fast'")


def test_an_invalid_environment_value_is_a_problem_naming_the_variable_and_field(doctor_in_process):
    status, report = doctor_in_process(OTEL_PYTHON_LITELLM_RUST_TOKEN_COUNTER_ROLLOUT_PERCENT="150")
    assert status == 1
    (problem,) = _problems(report)
    assert problem["subject"] == "OTEL_PYTHON_LITELLM_RUST_TOKEN_COUNTER_ROLLOUT_PERCENT=150"
    assert problem["why"].startswith("components.token_counter.rollout_percent: must be between 0 and 100")
    # The components say instrument() would refuse it, rather than what would serve.
    assert {finding["level"] for finding in report["components"]} == {"WARN"}


def test_an_unknown_variable_is_flagged_with_the_likely_one(doctor_in_process):
    status, report = doctor_in_process(OTEL_PYTHON_LITELLM_RUST_MOD="python")
    assert status == 0
    (flagged,) = [finding for finding in report["configuration"] if finding["level"] == "WARN"]
    assert flagged["subject"] == "OTEL_PYTHON_LITELLM_RUST_MOD=python"
    assert flagged["fix"] == "did you mean OTEL_PYTHON_LITELLM_RUST_MODE?"


def test_the_distro_without_its_exporter_is_detected_under_opentelemetry_instrument():
    """opentelemetry-distro installed, an exporter selected whose package is not: the agent loads no
    instrumentor, and doctor run under it says so, with the settings that fix it."""
    assert not entry_points(group="opentelemetry_traces_exporter", name="otlp_proto_grpc"), (
        "the OTLP exporter is installed"
    )
    agent = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    completed = _run(agent, *DOCTOR, OTEL_TRACES_EXPORTER="otlp_proto_grpc")
    assert completed.returncode == 1
    lines = completed.stdout.splitlines()
    assert (
        "  PROBLEM OTEL_TRACES_EXPORTER=otlp_proto_grpc: exporter 'otlp_proto_grpc' is not installed "
        "(no 'opentelemetry_traces_exporter' entry point of that name)"
    ) in lines
    assert "          fix: OTEL_TRACES_EXPORTER=none, or pip install opentelemetry-exporter-otlp" in lines
    assert "  PROBLEM this process: started by opentelemetry-instrument, but litellm_rust is not instrumented" in lines


def test_the_trap_is_detected_without_the_agent_with_the_settings_that_avoid_it(monkeypatch):
    for variable in INSTALLED_EXPORTERS:
        monkeypatch.delenv(variable, raising=False)  # opentelemetry-distro's default: otlp for every signal
    *_, trap = doctor.check_exporters()
    assert trap.level == "PROBLEM"
    assert trap.fix == (
        "OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=prometheus OTEL_LOGS_EXPORTER=none "
        "(or OTEL_METRICS_EXPORTER=none), or pip install opentelemetry-exporter-otlp"
    )


def test_disabling_the_instrumentation_is_a_problem(monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "redis, litellm_rust")
    problems = [finding for finding in doctor.check_agent() if finding.level == "PROBLEM"]
    assert [finding.why for finding in problems] == ["names litellm_rust: opentelemetry-instrument skips it"]


def test_a_missing_litellm_name_in_a_surface_is_reported(monkeypatch):
    monkeypatch.setitem(SURFACES["rate_limits"].paths, "vanished", "litellm.utils:no_such_function")
    findings = {finding.subject: finding for finding in doctor.check_components()}
    assert findings["rate_limits"].level == "PROBLEM"
    assert "vanished (litellm.utils:no_such_function: AttributeError" in findings["rate_limits"].why
    assert findings["token_counter"].level == "OK"


def test_an_open_breaker_is_reported_with_its_reason(instrumented):
    force_open("routing", "alert RoutingMismatches firing")
    findings = {finding.subject: finding for finding in doctor.check_breakers()}
    assert findings["routing"].level == "WARN"
    assert findings["routing"].why == ("open: forced: alert RoutingMismatches firing; Python serves its calls")
    assert findings["routing"].fix == "litellm_rust.release('routing') once the cause is resolved"
    assert findings["token_counter"].level == "OK"


def test_a_check_that_raises_is_a_problem_not_a_crash():
    def check_the_impossible():
        raise RuntimeError("boom")

    report = doctor.run_checks({"group": (check_the_impossible,)})
    assert report == {"group": [doctor.Finding("PROBLEM", "the_impossible", "the check raised RuntimeError: boom")]}
    assert doctor.render(report).splitlines()[-1] == "problems: 1, warnings: 0"
