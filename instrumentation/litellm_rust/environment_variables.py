"""Environment variables read by litellm-rust.

Registered under the ``opentelemetry_environment_variables`` entry point so that
``opentelemetry-instrument --litellm_rust_mode python`` sets them.
"""

OTEL_PYTHON_LITELLM_RUST_MODE = "OTEL_PYTHON_LITELLM_RUST_MODE"
"""
.. envvar:: OTEL_PYTHON_LITELLM_RUST_MODE

Which implementation serves every accelerated component: ``rust`` (default; Python is the
per-call fallback) or ``python`` (Python serves, calls are still counted).
"""
