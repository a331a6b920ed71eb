"""Comparing the Rust path with litellm's own `token_counter` (the reference)."""

from litellm_rust import _native
from litellm_rust.components import components


def litellm_outcome(**kwargs):
    """litellm's result, or the type of the exception it raises.

    The reference is litellm's own implementation as the component captured it before any
    rebinding (a module-level import here would itself be rebound by `instrument()`).
    """
    try:
        return components()["token_counter"].reference(**kwargs)
    except Exception as error:  # the reference's own failure is part of its behaviour
        return type(error)


def rust_count(**kwargs) -> int:
    """The Rust path alone: raises `_native.Unsupported` where it would fall back."""
    return components()["token_counter"].rust_count(
        kwargs.get("model", ""),
        kwargs.get("custom_tokenizer"),
        kwargs.get("text"),
        kwargs.get("messages"),
        kwargs.get("count_response_tokens", False),
        kwargs.get("tools"),
        kwargs.get("tool_choice"),
        kwargs.get("use_default_image_token_count", False),
    )


def assert_rust_matches_litellm(**kwargs) -> int:
    """The call is served by Rust (no fallback) and returns exactly litellm's count."""
    expected = litellm_outcome(**kwargs)
    try:
        actual = rust_count(**kwargs)
    except _native.Unsupported as unsupported:
        raise AssertionError(f"fell back ({unsupported.args[0]}) for {kwargs!r}") from None
    assert actual == expected, f"rust {actual} != litellm {expected} for {kwargs!r}"
    return actual
