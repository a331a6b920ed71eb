use std::collections::HashSet;
use std::str::FromStr;
use std::sync::LazyLock;

use rustc_hash::FxBuildHasher;

use crate::pretokenize::{self, Pattern};

/// The tiktoken encodings litellm 1.110 selects for OpenAI-tokenized models. `p50k_base` and
/// `r50k_base` are never chosen by `openai_tokenizer_encoding_name` for a listed model, so they
/// are left to litellm rather than shipped as a second dictionary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    Cl100kBase,
    O200kBase,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Cl100kBase => "cl100k_base",
            Encoding::O200kBase => "o200k_base",
        }
    }

    /// The BPE tables load once, on first use, and are shared by every thread.
    pub fn tokenizer(self) -> &'static bpe_openai::Tokenizer {
        self.vocabulary().tokenizer
    }

    fn pattern(self) -> Pattern {
        match self {
            Encoding::Cl100kBase => Pattern::Cl100k,
            Encoding::O200kBase => Pattern::O200k,
        }
    }

    fn vocabulary(self) -> &'static Vocabulary {
        static CL100K_BASE: LazyLock<Vocabulary> = LazyLock::new(|| Vocabulary::new(bpe_openai::cl100k_base()));
        static O200K_BASE: LazyLock<Vocabulary> = LazyLock::new(|| Vocabulary::new(bpe_openai::o200k_base()));
        match self {
            Encoding::Cl100kBase => &CL100K_BASE,
            Encoding::O200kBase => &O200K_BASE,
        }
    }

    /// Tokens of `text` encoded as ordinary text: special-token strings such as
    /// `<|endoftext|>` are split like any other text, as litellm's
    /// `encode(text, disallowed_special=())` does. No token vector is built.
    pub fn count_ordinary(self, text: &str) -> usize {
        let vocabulary = self.vocabulary();
        let tokenizer = vocabulary.tokenizer;
        pretokenize::split(tokenizer, self.pattern(), text)
            .map(|piece| {
                // tiktoken emits a piece that is itself a token as that one token; most pieces
                // are, and a set lookup is far cheaper than running the BPE on them.
                if vocabulary.tokens.contains(piece.as_bytes()) {
                    1
                } else {
                    tokenizer.bpe.count(piece.as_bytes())
                }
            })
            .sum()
    }
}

struct Vocabulary {
    tokenizer: &'static bpe_openai::Tokenizer,
    tokens: HashSet<&'static [u8], FxBuildHasher>,
}

impl Vocabulary {
    fn new(tokenizer: &'static bpe_openai::Tokenizer) -> Self {
        let bpe = &tokenizer.bpe;
        let tokens = (0..bpe.num_tokens() as u32).map(|id| bpe.token_bytes(id)).collect();
        Vocabulary { tokenizer, tokens }
    }
}

impl FromStr for Encoding {
    type Err = crate::Unsupported;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "cl100k_base" => Ok(Encoding::Cl100kBase),
            "o200k_base" => Ok(Encoding::O200kBase),
            _ => Err(crate::Unsupported::Tokenizer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_known_tiktoken_values() {
        // Reference values from tiktoken 0.14 (`len(enc.encode(text, disallowed_special=()))`).
        assert_eq!(Encoding::Cl100kBase.count_ordinary("hello world"), 2);
        assert_eq!(Encoding::O200kBase.count_ordinary("hello world"), 2);
        assert_eq!(Encoding::Cl100kBase.count_ordinary("<|endoftext|>"), 7);
        assert_eq!(Encoding::Cl100kBase.count_ordinary(""), 0);
    }

    #[test]
    fn unknown_encodings_are_unsupported() {
        assert_eq!("p50k_base".parse::<Encoding>(), Err(crate::Unsupported::Tokenizer));
        assert_eq!("o200k_base".parse::<Encoding>(), Ok(Encoding::O200kBase));
    }
}
