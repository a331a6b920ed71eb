"""`opentelemetry-instrument` discovers the instrumentor through its entry point."""

from pathlib import Path

import pytest

from apps import run_under_opentelemetry_instrument

APP = """
import json
import litellm
from litellm_rust import status

litellm.token_counter(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
served_by = litellm.utils.token_counter.__code__.co_filename
print(json.dumps({"accelerated": served_by.endswith("litellm_rust/components/token_counter.py"), "status": status()}))
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
