"""`opentelemetry-instrument` discovers the instrumentor through its entry point."""

from pathlib import Path

import pytest
from apps import run_under_opentelemetry_instrument

APP = """
import json
import litellm
from litellm_rust import status

litellm.token_counter(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
# A replacement stands in for litellm's function and names it as `__wrapped__`.
print(json.dumps({"accelerated": hasattr(litellm.utils.token_counter, "__wrapped__"), "status": status()}))
"""


def run_app(tmp_path: Path, *options: str, **env: str) -> dict:
    return run_under_opentelemetry_instrument(tmp_path, APP, *options, **env)


def test_opentelemetry_instrument_serves_token_counting_from_rust(tmp_path):
    result = run_app(tmp_path)
    assert result["accelerated"] is True
    assert result["status"]["token_counter"]["mode"] == "rust"
    assert result["status"]["token_counter"]["rust_calls"] == 1


def test_disabled_instrumentation_leaves_litellm_untouched(tmp_path):
    result = run_app(tmp_path, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="litellm_rust")
    assert result["accelerated"] is False
    assert result["status"]["token_counter"]["rust_calls"] == 0


@pytest.mark.parametrize(
    "options, env",
    [(("--litellm_rust_mode", "python"), {}), ((), {"OTEL_PYTHON_LITELLM_RUST_MODE": "python"})],
    ids=["cli-flag", "env-var"],
)
def test_mode_is_configurable_without_code(tmp_path, options, env):
    result = run_app(tmp_path, *options, **env)
    assert result["accelerated"] is True
    assert result["status"]["token_counter"]["mode"] == "python"
    assert result["status"]["token_counter"]["python_calls"] == 1


PROMETHEUS_APP = """
import json, os, urllib.request
import litellm

litellm.token_counter(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
port = os.environ["OTEL_EXPORTER_PROMETHEUS_PORT"]
exposition = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
print(json.dumps({line.split("{")[0]: line.rsplit(" ", 1)[1] for line in exposition.splitlines() if line.startswith("litellm_rust_operation_calls_total") and 'implementation="rust",litellm_rust_mode="rust",litellm_rust_operation="token_counter"' in line}))
"""


def test_the_standard_prometheus_exporter_serves_the_metrics(tmp_path):
    from servers import free_port

    result = run_under_opentelemetry_instrument(
        tmp_path,
        PROMETHEUS_APP,
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(free_port()),
    )
    assert result == {"litellm_rust_operation_calls_total": "1.0"}
