//! Token counting that returns exactly what litellm's Python `token_counter` returns.
//!
//! The crate knows nothing of Python: the glue crate walks Python objects and calls into
//! [`TextCounter`] for every string, [`image::image_tokens`] for every image part and the
//! [`ChatAccounting`] constants for the per-message overhead. Whatever litellm does that this
//! crate does not reproduce exactly is reported as an [`Unsupported`] reason so the caller can
//! hand the call back to litellm.

pub mod encoding;
pub mod image;
pub mod pretokenize;
pub mod text;

pub use encoding::Encoding;
pub use text::{Limits, TextCounter};

/// Why a call cannot be served exactly here; the caller falls back to litellm's Python.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unsupported {
    /// A model whose tokenizer is not a tiktoken BPE we ship (HuggingFace, custom, p50k/r50k).
    Tokenizer,
    /// An input shape litellm handles with code we do not reproduce (non-dict messages,
    /// document/file blocks, exotic keys) or that makes litellm raise.
    Input,
    /// An image whose size litellm would fetch over the network or read leniently.
    Image,
    /// Arithmetic whose float rounding we cannot guarantee to match (astronomically long text).
    Extrapolation,
}

impl Unsupported {
    /// The label used in `fallback_reasons` and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Unsupported::Tokenizer => "unsupported_tokenizer",
            Unsupported::Input => "unsupported_input",
            Unsupported::Image => "unsupported_image",
            Unsupported::Extrapolation => "unsupported_extrapolation",
        }
    }
}

/// litellm's per-message constants (`_MessageCountParams` in
/// `litellm/litellm_core_utils/token_counter.py`): 3 and +1 per `name`, except the legacy
/// `gpt-3.5-turbo-0301` accounting (4 and -1, the role being omitted when a name is given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChatAccounting {
    pub tokens_per_message: i64,
    pub tokens_per_name: i64,
}

impl ChatAccounting {
    pub const CURRENT: ChatAccounting = ChatAccounting {
        tokens_per_message: 3,
        tokens_per_name: 1,
    };
    pub const LEGACY_0301: ChatAccounting = ChatAccounting {
        tokens_per_message: 4,
        tokens_per_name: -1,
    };

    /// Tokens `_count_extra` adds when litellm counts a prompt rather than a response.
    pub const REPLY_PRIMER: i64 = 3;

    /// `_count_tool_definitions`: the rendered namespace, +9, -4 when a system message exists.
    pub fn tool_definition_overhead(includes_system_message: bool) -> i64 {
        if includes_system_message {
            5
        } else {
            9
        }
    }

    /// `_count_tool_choice`: `"none"` costs 1, a named function 7 plus its name's tokens.
    pub const TOOL_CHOICE_NONE: i64 = 1;
    pub const TOOL_CHOICE_NAMED: i64 = 7;
}
