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

import logging

from litellm_rust import _native
from litellm_rust._component import Component

_logger = logging.getLogger(__name__)

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
            original: _accelerated_token_counter(self, original) for original in (utils.token_counter, core.token_counter)
        }

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
            uses_huggingface = utils.huggingface_tokenizer_kind(model) is not None
            if uses_huggingface and self._litellm.disable_hf_tokenizer_download is not True:
                return "unsupported_tokenizer"
            encoding = core.openai_tokenizer_encoding_name(model)
            legacy = core.uses_legacy_message_accounting(model)
            template_tools = chat_template_tool_section(model) is not None
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

    def count_batch(self, model: str, texts: list[str]) -> list[int]:
        """`[litellm.token_counter(model=model, text=t) for t in texts]`, in one native call."""
        if self.mode == "rust" and self._litellm.disable_token_counter is not True:
            try:
                return self.profile(model).count_batch(texts)
            except Exception as error:
                self._record_fallback(error)
        else:
            self.stats.python_call()
        return [self.reference(model=model, text=text) for text in texts]

    def _record_fallback(self, error: Exception) -> None:
        if isinstance(error, _native.Unsupported):
            self.stats.fallback(error.args[0])
            return
        reason = "rust_panic" if isinstance(error, _native.RustPanic) else "rust_error"
        self.stats.fallback(reason)
        _logger.debug("token_counter fell back to Python after %s", reason, exc_info=error)


def _accelerated_token_counter(component: TokenCounterComponent, original):
    """A plain function with `token_counter`'s exact signature (no proxy on the hot path) standing
    in for `original`; both originals fall back to litellm's implementation."""
    litellm = component._litellm
    reference = component.reference
    profile = component.profile
    stats = component.stats
    record_fallback = component._record_fallback

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
        if component.mode == "rust":
            try:
                if custom_tokenizer is not None:
                    raise _native.Unsupported("custom_tokenizer")
                return profile(model).count(
                    text, messages, count_response_tokens, tools, tool_choice, use_default_image_token_count
                )
            except Exception as error:
                record_fallback(error)
        else:
            stats.python_call()
        return reference(
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
