"""Token counting: `litellm.token_counter` served by the Rust BPE counter.

litellm has two functions under this name: the public wrapper (`litellm.utils.token_counter`, also
`litellm.token_counter`) and the implementation (`litellm.litellm_core_utils.token_counter`). Both
are replaced; both fall back to the implementation, so a fallback never re-enters the wrapper.
The Rust path serves what it reproduces exactly (tiktoken encodings; text, messages, names, tools,
tool calls, images); anything else declines with a reason and litellm counts it.
"""

import inspect

from litellm_rust import _native
from litellm_rust._component import Component
from litellm_rust._control import Site, decline
from litellm_rust._litellm import TOKEN_COUNTER

# litellm's constants the native counter mirrors (read from `litellm.constants` and
# `litellm.litellm_core_utils.token_counter`, so the values of the installed litellm apply).
_CONSTANT_NAMES = (
    "TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS",
    "TOKEN_COUNTER_MAX_EXACT_CHARS",
    "MAX_IMAGE_URL_DOWNLOAD_SIZE_MB",
    "DEFAULT_IMAGE_TOKEN_COUNT",
    "DEFAULT_IMAGE_WIDTH",
    "DEFAULT_IMAGE_HEIGHT",
    "MAX_SHORT_SIDE_FOR_IMAGE_HIGH_RES",
    "MAX_LONG_SIDE_FOR_IMAGE_HIGH_RES",
    "MAX_TILE_WIDTH",
    "MAX_TILE_HEIGHT",
)


class TokenCounterComponent(Component):
    name = "token_counter"

    def __init__(self) -> None:
        super().__init__()
        surface = TOKEN_COUNTER
        self._litellm = surface.litellm
        self._constants = {name: getattr(surface.constants, name) for name in _CONSTANT_NAMES}
        self._constants["EXTRAPOLATION_SAMPLES"] = surface.extrapolation_samples
        self._profiles: dict[object, _native.TokenCounter | str] = {}
        self._profiles_model_count = -1
        self._profiles_hf_flag: object = None
        self.public_reference = surface.public_token_counter
        self.reference = surface.token_counter
        self.reach_reference = surface.messages_reach_token_count

    def sites(self):
        # Both `token_counter`s fall back to litellm's implementation, so a fallback never
        # re-enters the public wrapper (which would now be ours).
        for original in (self.public_reference, self.reference):
            yield Site(original, self.rust_count, python=self._litellm_count, describe=self.describe)
        yield Site(self.reach_reference, self.rust_reaches, python=self._litellm_reaches, describe=self.describe_reach)

    # -- model resolution -------------------------------------------------------------------

    def profile(self, model: object) -> _native.TokenCounter:
        """The cached native counter for `model`, resolved with litellm's own tokenizer choice."""
        litellm = self._litellm
        # Registering a model or toggling HF downloads can change litellm's choice; re-resolve then.
        if (
            len(litellm.model_cost) != self._profiles_model_count
            or litellm.disable_hf_tokenizer_download is not self._profiles_hf_flag
        ):
            self._profiles = {}
            self._profiles_model_count = len(litellm.model_cost)
            self._profiles_hf_flag = litellm.disable_hf_tokenizer_download
        try:
            profile = self._profiles[model]
        except KeyError:
            profile = self._profiles[model] = self._resolve(model)
        except TypeError:  # an unhashable model, which litellm rejects in its own way
            decline("unsupported_input")
        if profile.__class__ is str:
            decline(profile)
        return profile

    def _resolve(self, model: str | None) -> _native.TokenCounter | str:
        """Mirror `_get_exact_count_function` / `_MessageCountParams` for `model`, or a reason."""
        live = TOKEN_COUNTER.live
        if model is None:
            encoding, legacy, template_tools = live("get_default_encoding")().name, False, False
        elif type(model) is not str:
            return "unsupported_input"
        else:
            try:
                uses_huggingface = live("huggingface_tokenizer_kind")(model) is not None
                if uses_huggingface and self._litellm.disable_hf_tokenizer_download is not True:
                    return "unsupported_tokenizer"
                encoding = live("openai_tokenizer_encoding_name")(model)
                legacy = live("uses_legacy_message_accounting")(model)
                template_tools = live("chat_template_tool_section")(model) is not None
            except Exception:  # litellm cannot resolve it either; its own call will say how
                return "unsupported_model"
        try:
            return _native.TokenCounter(
                encoding,
                legacy_accounting=legacy,
                template_tools=template_tools,
                constants=self._constants,
                render_tools=live("format_function_definitions"),
                message_dicts=live("convert_list_message_to_dict"),
                stats=self.stats,
            )
        except _native.Unsupported as unsupported:
            return unsupported.args[0]

    # -- the Rust path ----------------------------------------------------------------------

    def rust_count(
        self,
        model="",
        custom_tokenizer=None,
        text=None,
        messages=None,
        count_response_tokens=False,
        tools=None,
        tool_choice=None,
        use_default_image_token_count=False,
        default_token_count=None,
    ) -> int:
        """`token_counter` on the Rust path: litellm's count, or `Unsupported` where litellm must serve."""
        if self._litellm.disable_token_counter is True:
            return 0
        if custom_tokenizer is not None:
            decline("custom_tokenizer")
        return self.profile(model).count(
            text, messages, count_response_tokens, tools, tool_choice, use_default_image_token_count
        )

    def _litellm_count(self, *args, **kwargs) -> int:
        return 0 if self._litellm.disable_token_counter is True else self.reference(*args, **kwargs)

    def rust_reaches(self, model, messages, threshold, tools=None, use_default_image_token_count=False) -> bool:
        """`messages_reach_token_count` (litellm's prompt-caching threshold check) on the Rust count.

        litellm stops counting at the first message that crosses the threshold; every message adds
        at least its per-message overhead, so the running total only grows and comparing the whole
        count decides the same. Where litellm would stop before an input it cannot count, the Rust
        path declines that input and litellm answers."""
        if self._litellm.disable_token_counter is True:
            return threshold <= 0
        if type(threshold) not in (int, float):
            decline("unsupported_input")  # litellm's comparison decides what happens
        count = self.rust_count(model, None, None, messages, False, tools, None, use_default_image_token_count)
        return count >= threshold

    def _litellm_reaches(self, model, messages, threshold, *args, **kwargs) -> bool:
        if self._litellm.disable_token_counter is True:
            return threshold <= 0
        return self.reach_reference(model, messages, threshold, *args, **kwargs)

    def count_batch(self, model: str, texts: list[str]) -> list[int]:
        """`[litellm.token_counter(model=model, text=t) for t in texts]`, in one native call."""
        # The contract is a list: a str or a dict would be counted per character or per key, and
        # a caller's mistake must reach the caller, never count as a Rust error.
        if not isinstance(texts, list):
            raise TypeError(f"count_tokens_batch: texts must be a list of str, got {type(texts).__name__}")
        if self._litellm.disable_token_counter is True:
            return [0] * len(texts)
        return self.control.serve(
            lambda: self.profile(model).count_batch(texts),
            lambda: [self.reference(model=model, text=text) for text in texts],
            describe=lambda capture_content: {"model": model, "texts": len(texts)},
        )

    def describe(self, capture_content: bool, *args, **kwargs) -> dict:
        """A `token_counter` call's inputs for a mismatch record: their shape, and their text only
        when `capture_content` allows it."""
        return _shape(capture_content, **self._arguments(self.reference, args, kwargs))

    def describe_reach(self, capture_content: bool, *args, **kwargs) -> dict:
        return _shape(capture_content, **self._arguments(self.reach_reference, args, kwargs))

    @staticmethod
    def _arguments(function, args: tuple, kwargs: dict) -> dict:
        """The call's arguments by name, as `function` (litellm's) binds them."""
        try:
            return inspect.signature(function).bind_partial(*args, **kwargs).arguments
        except TypeError:  # litellm raises for this call too; describe what can be told
            return {}


def _shape(capture_content: bool, model="", text=None, messages=None, tools=None, **_) -> dict:
    shape: dict = {"model": model if isinstance(model, str) else type(model).__name__}
    if isinstance(text, str):
        shape["text_chars"] = len(text)
    if isinstance(messages, (list, tuple)):
        shape["messages"] = [
            {
                key: (f"str[{len(value)}]" if isinstance(value, str) else type(value).__name__)
                if key != "role"
                else value
                for key, value in message.items()
            }
            if isinstance(message, dict)
            else type(message).__name__
            for message in messages
        ]
    if tools:
        shape["tools"] = len(tools) if isinstance(tools, list) else type(tools).__name__
    if capture_content:
        shape["content"] = {"text": text, "messages": messages}
    return shape
