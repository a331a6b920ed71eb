"""`LiteLLMRustInstrumentor`: serves litellm's hot paths from Rust."""

import os
from collections.abc import Collection
from pathlib import Path

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from litellm_rust._bindings import rebind
from litellm_rust.components import components
from litellm_rust.config import WEBHOOK_ADDRESS_ENV, WEBHOOK_TOKEN_FILE_ENV
from litellm_rust.control_plane import PLANE
from litellm_rust.package import _instruments
from litellm_rust.webhook import AlertWebhook


class LiteLLMRustInstrumentor(BaseInstrumentor):
    """Rust acceleration for litellm.

    ``instrument()`` rebinds every loaded reference to an accelerated litellm function (and the
    lazy-import paths litellm resolves later) to a plain function served by Rust, with litellm's
    own Python as the per-call fallback. ``uninstrument()`` restores the original objects
    everywhere, including in modules imported while instrumented.

    Keyword arguments:
        config_path: a JSON or YAML configuration file (default ``$OTEL_PYTHON_LITELLM_RUST_CONFIG``),
            re-read when it changes.
        meter_provider, tracer_provider: where telemetry goes (default: the global providers).
        Any setting, for every component (``mode="shadow"``, ``rollout_percent=25``,
        ``timing_sample_rate=0.01``, ``breaker={...}``, ...) or per component
        (``components={"token_counter": {"mode": "shadow"}}``). These override the file and the
        environment; ``litellm_rust.configure()`` / ``set_mode()`` override them at run time.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs):
        config_path = kwargs.pop("config_path", None)
        meter_provider = kwargs.pop("meter_provider", None)
        tracer_provider = kwargs.pop("tracer_provider", None)
        PLANE.start(config_path, kwargs, meter_provider, tracer_provider)
        try:
            self._webhook = _webhook_from_environment()
        except Exception:
            PLANE.stop()  # nothing is left running when instrument() fails
            raise
        for component in components().values():
            rebind(component.replacements())
            component.instrumented = True

    def _uninstrument(self, **kwargs):
        if self._webhook is not None:
            self._webhook.stop()
            self._webhook = None
        PLANE.stop()
        for component in components().values():
            rebind({new: old for old, new in component.replacements().items()})
            component.instrumented = False


def _webhook_from_environment() -> AlertWebhook | None:
    address = os.environ.get(WEBHOOK_ADDRESS_ENV)
    if not address:
        return None
    host, _, port = address.rpartition(":")
    token_file = os.environ.get(WEBHOOK_TOKEN_FILE_ENV)
    token = Path(token_file).read_text().strip() if token_file else None
    # Naming an address in the environment is the deliberate choice; beyond loopback a token is still required.
    return AlertWebhook(host or "127.0.0.1", int(port), token, allow_remote=True)
