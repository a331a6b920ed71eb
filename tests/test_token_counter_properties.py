"""Property tests: generated texts, message lists and images, Rust == litellm on every one."""

import base64

from corpus import IMAGE_URLS, TOOL_CHOICES, TOOLS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litellm_rust import _native
from litellm_rust.components import components
from parity import assert_rust_matches_litellm, litellm_outcome, rust_count

MODELS = st.sampled_from(["gpt-4o", "gpt-3.5-turbo", "", "gpt-5", "gpt-4.1-mini"])

# Fragments that exercise tiktoken's pre-tokenizer rules: contractions in any case, digit runs,
# whitespace runs before letters and line breaks, punctuation runs, special-token look-alikes.
FRAGMENTS = st.sampled_from(
    [
        "'s",
        "'S",
        "'ll",
        "'LL",
        "'re",
        "'ve",
        "'m",
        "'d",
        "'t",
        " ",
        "  ",
        "\t",
        "\n",
        "\r\n",
        "\n\n",
        "\u00a0",
        "\u3000",
        "123",
        "4567",
        "3.14",
        "!!!",
        "?!",
        "...",
        "—",
        "/",
        "//",
        "<|endoftext|>",
        "<|fim_prefix|>",
        "😀",
        "👨‍👩‍👧",
        "🏳️‍🌈",
        "e\u0301",
        "日本語",
        "Größe",
        "ÀÉÎ",
        "ǅ",
        "ǈ",
        "ᾈ",
        "McDonald",
        "iPhone",
        "HTTPServer",
        "x",
        "A",
        "ab",
        "ﬁ",
        "\u200d",
        "\ufeff",
        "\x00",
        "\x1c",
    ]
)
TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(FRAGMENTS, st.text(max_size=8)), max_size=60).map("".join),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=MODELS, text=TEXT)
def test_any_text(model, text):
    assert_rust_matches_litellm(model=model, text=text)


@settings(max_examples=60, deadline=None)
@given(model=MODELS, unit=st.lists(FRAGMENTS, min_size=1, max_size=6).map("".join), repeat=st.integers(150, 900))
def test_long_repetitive_text_across_chunk_boundaries(model, unit, repeat):
    assert_rust_matches_litellm(model=model, text=unit * repeat)


IMAGE_PART = st.builds(
    lambda url, detail: {"type": "image_url", "image_url": {"url": url, "detail": detail}},
    st.sampled_from(list(IMAGE_URLS.values())),
    st.sampled_from(["low", "auto"]),
)
CONTENT_PART = st.one_of(
    TEXT,
    TEXT.map(lambda text: {"type": "text", "text": text}),
    TEXT.map(lambda text: {"type": "thinking", "thinking": text}),
    IMAGE_PART,
)
TOOL_CALL = st.builds(
    lambda name, arguments: {"id": "call", "type": "function", "function": {"name": name, "arguments": arguments}},
    TEXT,
    st.one_of(TEXT, st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)),
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "developer"])},
    optional={
        "content": st.one_of(st.none(), TEXT, st.lists(CONTENT_PART, max_size=4)),
        "name": TEXT,
        "tool_calls": st.lists(TOOL_CALL, max_size=3),
        "tool_call_id": st.text(max_size=10),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=MODELS,
    messages=st.lists(MESSAGE, max_size=6),
    tools=st.sampled_from([None, [], TOOLS, TOOLS[:1], TOOLS[1:]]),
    tool_choice=st.sampled_from(TOOL_CHOICES),
    count_response_tokens=st.sampled_from([False, True, None]),
    use_default_image_token_count=st.booleans(),
)
def test_any_message_list(model, messages, tools, tool_choice, count_response_tokens, use_default_image_token_count):
    assert_rust_matches_litellm(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        count_response_tokens=count_response_tokens,
        use_default_image_token_count=use_default_image_token_count,
    )


MAGIC = st.sampled_from(
    [
        b"\x89PNG\r\n\x1a\n",
        b"GIF89a",
        b"GIF87a",
        b"\xff\xd8\xff",
        b"RIFF\x00\x00\x00\x00WEBPVP8X",
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b"RIFF\x00\x00\x00\x00WEBPVP8L",
        b"\x00\x00\x00\x00ftyp",
        b"",
    ]
)


@settings(max_examples=500, deadline=None)
@given(
    magic=MAGIC,
    body=st.binary(max_size=64),
    media_type=st.sampled_from(["image/png", "image/jpeg", "application/octet-stream"]),
    detail=st.sampled_from(["auto", "high", "low"]),
)
def test_any_image_header(magic, body, media_type, detail):
    url = f"data:{media_type};base64,{base64.b64encode(magic + body).decode()}"
    kwargs = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url, "detail": detail}}]}],
    }
    expected = litellm_outcome(**kwargs)
    try:
        actual = rust_count(**kwargs)
    except _native.Unsupported:
        # The Rust path may decline only where litellm itself raises (a header it cannot read).
        assert isinstance(expected, type) and issubclass(expected, Exception), expected
        return
    assert actual == expected


@settings(max_examples=300, deadline=None)
@given(encoded=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \n-_", max_size=40))
def test_any_base64_payload_in_auto_detail(encoded):
    url = f"data:image/png;base64,{encoded}"
    assert_rust_matches_litellm(
        model="gpt-4o", messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=MODELS,
    messages=st.lists(MESSAGE, max_size=6),
    tools=st.sampled_from([None, [], TOOLS, TOOLS[1:]]),
    threshold=st.integers(-5, 400),
    use_default_image_token_count=st.booleans(),
)
def test_messages_reach_token_count_decides_like_litellm(
    model, messages, tools, threshold, use_default_image_token_count
):
    component = components()["token_counter"]
    expected = component.reach_reference(model, messages, threshold, tools, use_default_image_token_count)
    before = component.stats.rust_calls
    assert component.rust_reaches(model, messages, threshold, tools, use_default_image_token_count) is expected
    assert component.stats.rust_calls == before + 1  # served by Rust, not a fallback
