"""Token counting: `litellm.token_counter` served by the Rust BPE counter.

litellm 1.110 has two functions under this name: `litellm.utils.token_counter` (the public
wrapper, also `litellm.token_counter`) and `litellm.litellm_core_utils.token_counter.token_counter`
(the implementation, reached lazily through `litellm._lazy_imports.get_token_counter_new`). Each
is replaced by an accelerated function whose fallback is the implementation itself, so a fallback
never re-enters the wrapper (which would now call us).

The Rust path serves what it reproduces exactly: tiktoken-encoded models (cl100k_base,
o200k_base), text and message lists, names, tool calls, tool definitions and tool_choice,
text-like content blocks and `image_url` parts. Anything else (HuggingFace tokenizers, custom
tokenizers, documents, chat-template tool sections, input litellm rejects) raises
`_native.Unsupported` and the call is served by litellm, counted under its reason.
"""

from litellm_rust import _native
from litellm_rust._component import Component

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
        import litellm
        from litellm import constants, utils
        from litellm.litellm_core_utils import token_counter as core

        self._litellm = litellm
        self._core = core
        self._utils = utils
        self._constants = {name: getattr(constants, name) for name in _CONSTANT_NAMES}
        self._constants["EXTRAPOLATION_SAMPLES"] = core.EXTRAPOLATION_SAMPLES
        self._profiles: dict[object, _native.TokenCounter | str] = {}
        self._profiles_model_count = -1
        self._profiles_hf_flag: object = None
        self.reference = core.token_counter
        # One replacement per original, so uninstrument() can tell which original goes back where.
        self._replacements = {
            original: _accelerated_token_counter(self, original)
            for original in (utils.token_counter, core.token_counter)
        }
        self.reach_reference = core.messages_reach_token_count
        self._replacements[self.reach_reference] = _accelerated_messages_reach_token_count(self)

    def replacements(self):
        return self._replacements

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
            raise _native.Unsupported("unsupported_input") from None
        if profile.__class__ is str:
            raise _native.Unsupported(profile)
        return profile

    def _resolve(self, model: str | None) -> _native.TokenCounter | str:
        """Mirror `_get_exact_count_function` / `_MessageCountParams` for `model`, or a reason."""
        core, utils = self._core, self._utils
        from litellm._lazy_imports import get_default_encoding
        from litellm.litellm_core_utils.prompt_templates.chat_template_tools import chat_template_tool_section

        if model is None:
            encoding, legacy, template_tools = get_default_encoding().name, False, False
        elif type(model) is not str:
            return "unsupported_input"
        else:
            try:
                uses_huggingface = utils.huggingface_tokenizer_kind(model) is not None
                if uses_huggingface and self._litellm.disable_hf_tokenizer_download is not True:
                    return "unsupported_tokenizer"
                encoding = core.openai_tokenizer_encoding_name(model)
                legacy = core.uses_legacy_message_accounting(model)
                template_tools = chat_template_tool_section(model) is not None
            except Exception:  # litellm cannot resolve it either; its own call will say how
                return "unsupported_model"
        try:
            return _native.TokenCounter(
                encoding,
                legacy_accounting=legacy,
                template_tools=template_tools,
                constants=self._constants,
                render_tools=core._format_function_definitions,
                message_dicts=utils.convert_list_message_to_dict,
                stats=self.stats,
            )
        except _native.Unsupported as unsupported:
            return unsupported.args[0]

    # -- the Rust path ----------------------------------------------------------------------

    def rust_count(
        self,
        model,
        custom_tokenizer,
        text,
        messages,
        count_response_tokens,
        tools,
        tool_choice,
        use_default_image_token_count,
    ) -> int:
        """The Rust path alone: litellm's count, or `_native.Unsupported` where litellm must serve."""
        if custom_tokenizer is not None:
            raise _native.Unsupported("custom_tokenizer")
        return self.profile(model).count(
            text,
            messages,
            count_response_tokens=count_response_tokens,
            tools=tools,
            tool_choice=tool_choice,
            use_default_image_token_count=use_default_image_token_count,
        )

    def serve(self, *arguments) -> int:
        """A `token_counter` call (positional, in litellm's order) routed by the control plane."""
        model, _, text, messages, _, tools, *_ = arguments
        return self.control.serve(
            lambda: self.rust_count(*arguments[:-1]),
            lambda: self.reference(*arguments),
            describe=lambda capture_content: self.describe(model, text, messages, tools, capture_content),
            timed=True if self.control.rust_fast else None,
        )

    def reaches(self, model, messages, threshold, tools, use_default_image_token_count) -> bool:
        """`messages_reach_token_count` routed by the control plane."""

        def rust() -> bool:
            if type(threshold) not in (int, float):
                raise _native.Unsupported("unsupported_input")  # litellm's comparison decides what happens
            return (
                self.rust_count(model, None, None, messages, False, tools, None, use_default_image_token_count)
                >= threshold
            )

        return self.control.serve(
            rust,
            lambda: self.reach_reference(model, messages, threshold, tools, use_default_image_token_count),
            describe=lambda capture_content: self.describe(model, None, messages, tools, capture_content),
        )

    def count_batch(self, model: str, texts: list[str]) -> list[int]:
        """`[litellm.token_counter(model=model, text=t) for t in texts]`, in one native call."""
        if self._litellm.disable_token_counter is True:
            return [0] * len(texts)
        return self.control.serve(
            lambda: self.profile(model).count_batch(texts),
            lambda: [self.reference(model=model, text=text) for text in texts],
            describe=lambda capture_content: {"model": model, "texts": len(texts)},
        )

    def describe(self, model, text, messages, tools, capture_content: bool) -> dict:
        """A call's inputs for a mismatch record: their shape, and their text only when
        `capture_content` allows it."""
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


def _accelerated_token_counter(component: TokenCounterComponent, original):
    """A plain function with `token_counter`'s exact signature (no proxy on the hot path) standing
    in for `original`; both originals fall back to litellm's implementation."""
    litellm = component._litellm
    reference = component.reference
    profile = component.profile
    control = component.control
    ticks = control.ticks
    serve = component.serve

    def token_counter(
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
        if litellm.disable_token_counter is True:
            return 0
        # The fast path, inlined (no closures, no control call): see `Control`. A call it cannot
        # finish goes to litellm (after a Rust failure) or to the control plane (everything else).
        handler = serve
        if control.rust_fast and next(ticks) % control.timing_every:
            try:
                if custom_tokenizer is None:
                    return profile(model).count(
                        text,
                        messages,
                        count_response_tokens=count_response_tokens,
                        tools=tools,
                        tool_choice=tool_choice,
                        use_default_image_token_count=use_default_image_token_count,
                    )
                raise _native.Unsupported("custom_tokenizer")
            except Exception as error:
                control.rust_failed(error)
            handler = reference
        return handler(
            model,
            custom_tokenizer,
            text,
            messages,
            count_response_tokens,
            tools,
            tool_choice,
            use_default_image_token_count,
            default_token_count,
        )

    token_counter.__doc__ = original.__doc__
    token_counter.__wrapped__ = original
    return token_counter


def _accelerated_messages_reach_token_count(component: TokenCounterComponent):
    """`messages_reach_token_count` (litellm's prompt-caching threshold check) on the Rust count.

    litellm stops counting at the first message that crosses the threshold; every message adds at
    least its per-message overhead, so the running total only grows and comparing the whole count
    decides the same. Where litellm would stop before an input it cannot count, the Rust path
    declines that input and litellm answers."""
    litellm = component._litellm
    reaches = component.reaches

    def messages_reach_token_count(model, messages, threshold, tools=None, use_default_image_token_count=False) -> bool:
        if litellm.disable_token_counter is True:
            return threshold <= 0
        return reaches(model, messages, threshold, tools, use_default_image_token_count)

    messages_reach_token_count.__doc__ = component.reach_reference.__doc__
    messages_reach_token_count.__wrapped__ = component.reach_reference
    return messages_reach_token_count
