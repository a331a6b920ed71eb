"""Environment variables read by litellm-rust.

Registered under the ``opentelemetry_environment_variables`` entry point so that every one of them
is also an ``opentelemetry-instrument`` flag (``--litellm_rust_mode shadow``,
``--litellm_rust_token_counter_rollout_percent 25``, ``--litellm_rust_config path.yaml``):

``OTEL_PYTHON_LITELLM_RUST_CONFIG``
    A JSON or YAML configuration file, re-read when it changes.
``OTEL_PYTHON_LITELLM_RUST_WEBHOOK_ADDRESS`` / ``..._WEBHOOK_TOKEN_FILE``
    Run the Alertmanager webhook receiver on ``host:port`` while instrumented (a bearer token,
    read from the file, is required beyond loopback).
``OTEL_PYTHON_LITELLM_RUST_<SETTING>``
    A setting for every component that has it: the generic ``MODE`` (python, shadow, rust),
    ``ROLLOUT_PERCENT``, ``SHADOW_SAMPLE_RATE``, ``TIMING_SAMPLE_RATE``, ``SPAN_SAMPLE_RATE``,
    ``CAPTURE_CONTENT``, and those a component declares in its settings class.
``OTEL_PYTHON_LITELLM_RUST_<COMPONENT>_<SETTING>``
    One component's setting, e.g. ``OTEL_PYTHON_LITELLM_RUST_TOKEN_COUNTER_MODE``.

The settings variables are generated from the components' settings classes, which this module reads
without importing litellm (the entry point runs before litellm is importable).
"""

from litellm_rust.components import settings_classes
from litellm_rust.config import environment_variable_names

# One module attribute per variable, named as its value: that is what opentelemetry-instrument reads.
globals().update({name: name for name in environment_variable_names(settings_classes())})
