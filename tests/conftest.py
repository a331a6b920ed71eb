import os

# Nothing may download during tests: litellm's cost map and HuggingFace tokenizers stay local.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import litellm  # noqa: E402
import pytest  # noqa: E402

from litellm_rust import LiteLLMRustInstrumentor  # noqa: E402
from litellm_rust.components import components  # noqa: E402

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
