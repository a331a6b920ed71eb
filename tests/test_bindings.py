"""Wired in for real: every binding site of litellm's token_counter is swapped, and restored."""

import importlib
import json
import subprocess
import sys
import textwrap

import litellm
import pytest
from litellm_rust import LiteLLMRustInstrumentor
from litellm_rust._bindings import binding_sites

# Modules that copy a token_counter with `from ... import token_counter` at import time.
COPYING_MODULES = (
    "litellm.utils",
    "litellm.litellm_core_utils.token_counter",
    "litellm.litellm_core_utils.streaming_chunk_builder_utils",
    "litellm.router_utils.pre_call_checks.io_token_rate_limit_check",
    "litellm.llms.openai.common_utils",
    "litellm.batches.batch_utils",
    "litellm.compression.compress",
    "litellm.llms.sagemaker.completion.transformation",
    "litellm.llms.huggingface.embedding.transformation",
    "litellm.llms.vertex_ai.gemini_embeddings.batch_embed_content_transformation",
)


@pytest.fixture(scope="module", autouse=True)
def import_copying_modules():
    for name in COPYING_MODULES:
        importlib.import_module(name)
    litellm.token_counter  # noqa: B018 - resolves and caches litellm's lazy attribute


def sites_holding(objects) -> set[tuple[str, str]]:
    return {(module.__name__, name) for module, name in binding_sites({id(o): o for o in objects})}


def test_instrument_leaves_no_loaded_module_holding_an_original(token_component):
    originals = list(token_component.replacements())
    replacements = list(token_component.replacements().values())
    before = sites_holding(originals)
    assert {(name, "token_counter") for name in COPYING_MODULES} <= before
    assert ("litellm", "token_counter") in before

    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        assert sites_holding(originals) == set()
        assert sites_holding(replacements) == before
        assert litellm._lazy_imports.get_token_counter_new() in replacements
    finally:
        instrumentor.uninstrument()

    assert sites_holding(replacements) == set()
    assert sites_holding(originals) == before


def test_uninstrument_restores_each_original_to_its_own_site(token_component):
    utils_original = litellm.utils.token_counter
    core_module = sys.modules["litellm.litellm_core_utils.token_counter"]
    core_original = core_module.token_counter
    assert utils_original is not core_original

    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    assert token_component.status()["instrumented"] is True
    instrumentor.uninstrument()
    assert token_component.status()["instrumented"] is False

    assert litellm.utils.token_counter is utils_original
    assert litellm.token_counter is utils_original
    assert core_module.token_counter is core_original


def test_instrumenting_twice_is_a_no_op(token_component):
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        first = litellm.utils.token_counter
        instrumentor.instrument()
        assert litellm.utils.token_counter is first
        assert first in token_component.replacements().values()
    finally:
        instrumentor.uninstrument()
    assert litellm.utils.token_counter in token_component.replacements()


def test_mode_python_keeps_python_serving(token_component):
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument(mode="python")
    try:
        before = token_component.status()
        litellm.token_counter(model="gpt-4o", text="hello")
        after = token_component.status()
    finally:
        instrumentor.uninstrument()
    assert after["mode"] == "python"
    assert after["python_calls"] == before["python_calls"] + 1
    assert after["rust_calls"] == before["rust_calls"]


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="unknown mode"):
        LiteLLMRustInstrumentor().instrument(mode="fast")
    LiteLLMRustInstrumentor().uninstrument()


LAZY_IMPORT_PROGRAM = textwrap.dedent(
    """
    import json, sys
    import litellm
    from litellm_rust import LiteLLMRustInstrumentor, status
    from litellm_rust.components import components

    replacements = set(map(id, components()["token_counter"].replacements().values()))
    late = "litellm.llms.triton.embedding.transformation"
    assert late not in sys.modules
    # Back to the state before anything resolved litellm's lazy `token_counter` attribute.
    del vars(litellm)["token_counter"]

    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    import litellm.llms.triton.embedding.transformation as late_module
    result = {
        "late_import_gets_rust": id(late_module.token_counter) in replacements,
        "lazy_attribute_gets_rust": id(litellm.token_counter) in replacements,
    }
    litellm.token_counter(model="gpt-4o", text="hello")
    result["rust_calls"] = status()["token_counter"]["rust_calls"]
    instrumentor.uninstrument()
    result["late_import_restored"] = id(late_module.token_counter) not in replacements
    result["lazy_attribute_restored"] = id(litellm.token_counter) not in replacements
    print(json.dumps(result))
    """
)


def test_modules_imported_later_and_lazy_attributes_get_rust_and_are_restored():
    output = subprocess.run(
        [sys.executable, "-c", LAZY_IMPORT_PROGRAM], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert json.loads(output.strip().splitlines()[-1]) == {
        "late_import_gets_rust": True,
        "lazy_attribute_gets_rust": True,
        "rust_calls": 1,
        "late_import_restored": True,
        "lazy_attribute_restored": True,
    }
