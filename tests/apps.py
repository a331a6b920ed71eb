"""Running a small app under the real `opentelemetry-instrument` command."""

import json
import os
import subprocess
import sys
from pathlib import Path


def run_under_opentelemetry_instrument(tmp_path: Path, source: str, *options: str, **env: str) -> dict:
    """Run `source` as `opentelemetry-instrument [options] python app.py`; the JSON it prints last."""
    app = tmp_path / "app.py"
    app.write_text(source)
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
