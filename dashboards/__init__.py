"""Dashboards and alert rules for litellm-rust, generated as code.

The generated files are the package's data (`ASSETS`), so a wheel ships them and
`litellm-rust export grafana|prometheus-rules|alertmanager DIR` writes them out for a user.
"""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "instrumentation" / "litellm_rust" / "assets"
