"""`LiteLLMRustInstrumentor`: serves litellm's hot paths from Rust."""

import os
from collections.abc import Collection

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from litellm_rust._bindings import rebind
from litellm_rust._component import validate_mode
from litellm_rust.components import components
from litellm_rust.environment_variables import OTEL_PYTHON_LITELLM_RUST_MODE
from litellm_rust.package import _instruments


class LiteLLMRustInstrumentor(BaseInstrumentor):
    """Rust acceleration for litellm.

    ``instrument()`` rebinds every loaded reference to an accelerated litellm function (and the
    lazy-import paths litellm resolves later) to a plain function served by Rust, with litellm's
    own Python as the per-call fallback. ``uninstrument()`` restores the original objects
    everywhere, including in modules imported while instrumented.

    Keyword arguments:
        mode: ``"rust"`` (default) or ``"python"``; defaults to ``$OTEL_PYTHON_LITELLM_RUST_MODE``.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs):
        mode = validate_mode(kwargs.get("mode") or os.environ.get(OTEL_PYTHON_LITELLM_RUST_MODE) or "rust")
        for component in components().values():
            component.mode = mode
            rebind(component.replacements())
            component.instrumented = True

    def _uninstrument(self, **kwargs):
        for component in components().values():
            rebind({new: old for old, new in component.replacements().items()})
            component.instrumented = False
