"""The Rust path returns exactly what litellm's own `token_counter` returns, and serves the call."""

import litellm
import pytest
from corpus import CHAT, CL100K_MODELS, LEGACY_MODEL, MODELS, O200K_MODELS, TEXTS, TOOL_CHOICES, TOOLS, message_shapes
from litellm.litellm_core_utils.token_counter import openai_tokenizer_encoding_name
from parity import assert_rust_matches_litellm

MESSAGE_SHAPES = message_shapes()


@pytest.mark.parametrize("model", O200K_MODELS)
def test_o200k_models_are_the_ones_litellm_encodes_with_o200k(model):
    assert openai_tokenizer_encoding_name(model) == "o200k_base"


@pytest.mark.parametrize("model", [m for m in CL100K_MODELS if m])
def test_cl100k_models_are_the_ones_litellm_encodes_with_cl100k(model):
    assert openai_tokenizer_encoding_name(model) == "cl100k_base"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", list(TEXTS))
def test_text(model, name):
    assert_rust_matches_litellm(model=model, text=TEXTS[name])


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-3.5-turbo"])
def test_text_list_joins_only_strings(model):
    assert_rust_matches_litellm(model=model, text=["Hello ", 3, "world", None, b"bytes", "!"])


def test_model_none_uses_litellms_default_encoding():
    assert_rust_matches_litellm(model=None, text=TEXTS["multilingual"])
    assert_rust_matches_litellm(model=None, messages=CHAT)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("shape", list(MESSAGE_SHAPES))
def test_messages(model, shape):
    assert_rust_matches_litellm(model=model, messages=MESSAGE_SHAPES[shape])


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("count_response_tokens", [False, True, None])
def test_count_response_tokens_skips_the_extras_unless_exactly_false(model, count_response_tokens):
    assert_rust_matches_litellm(model=model, messages=CHAT, count_response_tokens=count_response_tokens, tools=TOOLS)


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-3.5-turbo", LEGACY_MODEL, ""])
@pytest.mark.parametrize("tool_choice", TOOL_CHOICES)
@pytest.mark.parametrize("with_system", [True, False])
def test_tools_and_tool_choice(model, tool_choice, with_system):
    messages = CHAT if with_system else CHAT[1:]
    assert_rust_matches_litellm(model=model, messages=messages, tools=TOOLS, tool_choice=tool_choice)


@pytest.mark.parametrize("tool_choice", TOOL_CHOICES)
def test_tool_choice_without_tools(tool_choice):
    assert_rust_matches_litellm(model="gpt-4o", messages=CHAT, tool_choice=tool_choice)


def test_anthropic_style_tools_rendered_by_litellm():
    tools = [
        {
            "name": "lookup",
            "description": "Look up",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
        {
            "function_declarations": [
                {"name": "gemini_fn", "parameters": {"type": "object", "properties": {"x": {"type": "number"}}}}
            ]
        },
    ]
    assert_rust_matches_litellm(model="gpt-4o", messages=CHAT, tools=tools)


@pytest.mark.parametrize("use_default", [True, False])
def test_default_image_token_count(use_default):
    assert_rust_matches_litellm(
        model="gpt-4o", messages=MESSAGE_SHAPES["images"], use_default_image_token_count=use_default
    )


def test_default_token_count_is_irrelevant_when_nothing_fails():
    assert_rust_matches_litellm(model="gpt-4o", messages=MESSAGE_SHAPES["content_parts"], default_token_count=7)


@pytest.fixture
def registered_0301():
    """litellm applies the 0301 accounting only to a listed model; its bundled cost map omits it."""
    litellm.register_model(
        {
            LEGACY_MODEL: {
                "litellm_provider": "openai",
                "mode": "chat",
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 2e-6,
            }
        }
    )
    try:
        yield LEGACY_MODEL
    finally:
        litellm.model_cost.pop(LEGACY_MODEL, None)
        litellm.open_ai_chat_completion_models.discard(LEGACY_MODEL)


def test_unlisted_0301_uses_current_accounting():
    names = MESSAGE_SHAPES["names"]
    assert assert_rust_matches_litellm(model=LEGACY_MODEL, messages=names) == assert_rust_matches_litellm(
        model="gpt-3.5-turbo", messages=names
    )


@pytest.mark.parametrize("shape", ["names", "chat", "none_content_and_tool_calls"])
def test_registered_0301_uses_legacy_accounting(registered_0301, shape):
    messages = MESSAGE_SHAPES[shape]
    legacy = assert_rust_matches_litellm(model=registered_0301, messages=messages)
    current = assert_rust_matches_litellm(model="gpt-3.5-turbo", messages=messages)
    # 4 per message and -1 per name instead of 3 and +1.
    names = sum("name" in message for message in messages)
    assert legacy - current == len(messages) * (4 - 3) + names * (-1 - 1)


def test_chunking_is_what_litellm_does():
    import tiktoken

    # Chunk boundaries at 1024 and 2048 fall inside words, so the chunked count is higher than
    # encoding the text in one piece would give.
    text = TEXTS["four_kb"]
    unchunked = len(tiktoken.get_encoding("o200k_base").encode(text))
    assert assert_rust_matches_litellm(model="gpt-4o", text=text) > unchunked


@pytest.mark.parametrize("threshold", [0, 20, 1024])
def test_litellms_prompt_caching_check_counts_in_rust(instrumented, token_component, threshold):
    from litellm.utils import is_prompt_caching_valid_prompt

    messages = MESSAGE_SHAPES["every_text"]
    expected = token_component.reach_reference("gpt-4o", messages, threshold, None, True)
    before = token_component.stats.rust_calls
    assert is_prompt_caching_valid_prompt("gpt-4o", messages, min_token_count=threshold) is expected
    assert token_component.stats.rust_calls == before + 1
