import os

# Nothing may download during tests: litellm's cost map and HuggingFace tokenizers stay local.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import litellm  # noqa: E402
import pytest  # noqa: E402

from litellm_rust import LiteLLMRustInstrumentor, _native  # noqa: E402
from litellm_rust.components import components  # noqa: E402
from litellm_rust.control_plane import PLANE  # noqa: E402

litellm.suppress_debug_info = True


@pytest.fixture
def instrumented():
    """litellm instrumented in the default (rust) mode for one test."""
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def token_component():
    return components()["token_counter"]


@pytest.fixture(autouse=True)
def fresh_control_state():
    """Each test starts from default settings and a closed breaker, with no fault injected."""
    yield
    _native.inject_fault(None)
    PLANE._runtime_layer = {"components": {}}
    PLANE._kwargs_layer = {}
    PLANE._file_layer = {}
    PLANE.config_path = None
    PLANE._apply()
    for component in components().values():
        component.control.reset()
