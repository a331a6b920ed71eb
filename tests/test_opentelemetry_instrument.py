"""`opentelemetry-instrument` discovers the instrumentor through its entry point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

APP = """
import json
import litellm
from litellm_rust import status

litellm.token_counter(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
served_by = litellm.utils.token_counter.__code__.co_filename
print(json.dumps({"accelerated": served_by.endswith("litellm_rust/components/token_counter.py"), "status": status()}))
"""


def run_app(tmp_path: Path, *options: str, **env: str) -> dict:
    app = tmp_path / "app.py"
    app.write_text(APP)
    command = [str(Path(sys.executable).with_name("opentelemetry-instrument")), *options, sys.executable, str(app)]
    environment = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        **env,
    }
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


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
