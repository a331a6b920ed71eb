"""Never break the app: bad input gets litellm's own answer or exception, Rust failures fall back."""

import litellm
import litellm_rust
import pytest
from corpus import CHAT, IMAGE_URLS, TEXTS
from litellm.types.utils import ChatCompletionMessageToolCall, Function, Message
from litellm_rust import _native
from parity import assert_rust_matches_litellm, litellm_outcome


def instrumented_outcome(**kwargs):
    """What an app calling `litellm.token_counter` sees while instrumented."""
    try:
        return litellm.token_counter(**kwargs)
    except Exception as error:
        return type(error)


def fallbacks(component) -> dict:
    return dict(component.stats.fallback_reasons)


def assert_falls_back_with(component, reason, **kwargs):
    before = fallbacks(component).get(reason, 0)
    assert instrumented_outcome(**kwargs) == litellm_outcome(**kwargs)
    assert fallbacks(component).get(reason, 0) == before + 1


BAD_INPUTS = {
    "int_content": {"messages": [{"role": "user", "content": 42}]},
    "bytes_content": {"messages": [{"role": "user", "content": b"raw bytes"}]},
    "dict_content": {"messages": [{"role": "user", "content": {"nested": ["junk", {"deeper": 1}]}}]},
    "nested_junk_parts": {"messages": [{"role": "user", "content": [["a"], {"no_type": 1}]}]},
    "unknown_part_type": {"messages": [{"role": "user", "content": [{"type": "hologram", "data": "x"}]}]},
    "part_without_type_with_default": {
        "messages": [{"role": "user", "content": [{"text": "x"}]}],
        "default_token_count": 11,
    },
    "tool_calls_not_a_list": {"messages": [{"role": "assistant", "tool_calls": "call it"}]},
    "tool_call_without_function": {"messages": [{"role": "assistant", "tool_calls": [{"id": "1"}]}]},
    "message_is_a_string": {"messages": ["just a string"]},
    "message_is_none": {"messages": [None]},
    "messages_is_a_dict": {"messages": {"role": "user", "content": "x"}},
    "lone_surrogate_text": {"text": "bad \ud800 surrogate"},
    "lone_surrogate_content": {"messages": [{"role": "user", "content": "x\udfff"}]},
    "text_is_bytes": {"text": b"bytes"},
    "text_and_messages": {"text": "a", "messages": CHAT},
    "neither_text_nor_messages": {},
    "tools_with_text": {"text": "a", "tools": [{"type": "function", "function": {"name": "f"}}]},
    "image_detail_invalid": {
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x", "detail": "ultra"}}]}]
    },
    "image_url_missing": {
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"detail": "low"}}]}]
    },
    "image_url_blank": {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "  \x1c "}]}]},
    "image_high_truncated": {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": IMAGE_URLS["truncated_png"], "detail": "high"}}],
            }
        ]
    },
    "image_high_truncated_with_default": {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": IMAGE_URLS["truncated_png"], "detail": "high"}}],
            }
        ],
        "default_token_count": 5,
    },
    "unhashable_model": {"model": ["gpt-4o"], "text": "x"},
    "tools_not_a_list": {"messages": CHAT, "tools": "get_weather"},
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_gets_litellms_own_outcome(instrumented, name):
    kwargs = BAD_INPUTS[name]
    assert instrumented_outcome(**kwargs) == litellm_outcome(**kwargs)


@pytest.mark.parametrize("piece", ["hundred_kb", "non_ascii"])
def test_ten_megabyte_text_is_extrapolated_exactly_like_litellm(piece):
    # Non-ASCII: the samples' code-point bounds differ from their byte offsets.
    unit = TEXTS["hundred_kb"] if piece == "hundred_kb" else "ключ🔑 漢字 ümlaut "
    text = (unit * (10_000_000 // len(unit) + 1))[:10_000_000]
    assert_rust_matches_litellm(model="gpt-4o", text=text)
    assert_rust_matches_litellm(model="gpt-4o", messages=[{"role": "user", "content": text}])


def test_huggingface_models_fall_back_and_are_counted(instrumented, token_component):
    assert_falls_back_with(token_component, "unsupported_tokenizer", model="claude-sonnet-4-5", messages=CHAT)


def test_custom_tokenizer_falls_back_and_is_counted(instrumented, token_component):
    tokenizer = {"type": "openai_tokenizer", "tokenizer": None}
    assert_falls_back_with(
        token_component, "custom_tokenizer", model="gpt-4o", text="hello", custom_tokenizer=tokenizer
    )


def test_chat_template_tool_sections_fall_back(instrumented, token_component):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    assert_falls_back_with(
        token_component, "chat_template_tools", model="together_ai/Qwen/Qwen3.5-9B", messages=CHAT, tools=tools
    )


def test_remote_high_detail_image_is_left_to_litellm(instrumented, token_component, monkeypatch):
    # litellm would fetch the URL; the fetch is stubbed so the test stays offline.
    from litellm.litellm_core_utils import token_counter as core

    monkeypatch.setattr(core, "get_image_dimensions", lambda data: (1024, 1024))
    messages = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": IMAGE_URLS["remote"], "detail": "high"}}],
        }
    ]
    assert_falls_back_with(token_component, "unsupported_image", model="gpt-4o", messages=messages)


def test_pydantic_messages_are_served_by_rust_after_litellms_conversion(instrumented, token_component):
    tool_call = ChatCompletionMessageToolCall(
        id="c1", type="function", function=Function(name="f", arguments='{"x": 1}')
    )
    messages = [*CHAT, Message(role="assistant", content=None, tool_calls=[tool_call]), Message(content="done")]
    before = token_component.stats.rust_calls
    assert litellm.token_counter(model="gpt-4o", messages=messages) == litellm_outcome(
        model="gpt-4o", messages=messages
    )
    assert token_component.stats.rust_calls == before + 1


@pytest.mark.parametrize("fault, reason", [("error", "rust_error"), ("panic", "rust_panic")])
def test_rust_failure_falls_back_per_call_and_is_counted(instrumented, token_component, fault, reason):
    _native.inject_fault(fault)
    try:
        assert_falls_back_with(token_component, reason, model="gpt-4o", messages=CHAT)
    finally:
        _native.inject_fault(None)
    before = token_component.stats.rust_calls
    litellm.token_counter(model="gpt-4o", messages=CHAT)
    assert token_component.stats.rust_calls == before + 1


def test_a_panic_surfaces_as_an_ordinary_exception(token_component):
    _native.inject_fault("panic")
    try:
        with pytest.raises(_native.RustPanic):
            token_component.profile("gpt-4o").count("x", None, False, None, None, False)
    finally:
        _native.inject_fault(None)


def test_disable_token_counter_returns_zero_without_counting(instrumented, token_component, monkeypatch):
    monkeypatch.setattr(litellm, "disable_token_counter", True)
    before = token_component.status()
    assert litellm.token_counter(model="gpt-4o", messages=CHAT) == 0
    assert litellm.utils.token_counter(model="gpt-4o", text="abc") == 0
    after = token_component.status()
    assert (after["rust_calls"], after["python_calls"]) == (before["rust_calls"], before["python_calls"])


def test_a_model_litellm_cannot_resolve_is_not_a_rust_error(instrumented, token_component, monkeypatch):
    from litellm.litellm_core_utils import token_counter as core

    def unresolvable(model):
        raise RuntimeError("cost map unavailable")

    monkeypatch.setattr(core, "openai_tokenizer_encoding_name", unresolvable)
    token_component._profiles_model_count = -1  # forget what was resolved before the patch
    before = dict(token_component.stats.fallback_reasons)
    assert instrumented_outcome(model="gpt-4o-unresolvable", text="hi") == litellm_outcome(
        model="gpt-4o-unresolvable", text="hi"
    )
    after = token_component.stats.fallback_reasons
    assert after.get("unsupported_model", 0) == before.get("unsupported_model", 0) + 1
    assert after.get("rust_error", 0) == before.get("rust_error", 0)


@pytest.mark.parametrize("mode", ["rust", "shadow"])
@pytest.mark.parametrize("texts", [("a", "b"), "ab", {"a": 1}], ids=["tuple", "str", "dict"])
def test_count_tokens_batch_refuses_anything_but_a_list_as_the_callers_error(token_component, mode, texts):
    litellm_rust.configure("token_counter", mode=mode, breaker={"min_calls": 1})
    before = token_component.status()
    for _ in range(5):  # more than the breaker needs to open on errors
        with pytest.raises(TypeError, match="texts must be a list of str, got"):
            litellm_rust.count_tokens_batch("gpt-4o", texts)
    after = token_component.status()
    assert after["fallback_reasons"] == before["fallback_reasons"]
    assert after["breaker"]["state"] == "closed"
