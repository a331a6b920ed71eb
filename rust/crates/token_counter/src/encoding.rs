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
        static CL100K_BASE: LazyLock<Vocabulary> =
            LazyLock::new(|| Vocabulary::new(bpe_openai::cl100k_base()));
        static O200K_BASE: LazyLock<Vocabulary> =
            LazyLock::new(|| Vocabulary::new(bpe_openai::o200k_base()));
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
                    piece_cache::count(self, piece.as_bytes(), |bytes| tokenizer.bpe.count(bytes))
                }
            })
            .sum()
    }
}

/// A per-thread memo of multi-token pieces. Running the BPE on one costs ~300 ns (it allocates
/// its work state); natural text and repeated prompts reuse the same words, so a small
/// direct-mapped table of short pieces answers most of them in a few ns. A pure function's memo:
/// the counts are the BPE's own.
mod piece_cache {
    use std::cell::RefCell;
    use std::hash::BuildHasher;

    use rustc_hash::FxBuildHasher;

    use super::Encoding;

    const SLOTS: usize = 4096;
    const MAX_PIECE: usize = 27;

    #[derive(Clone, Copy)]
    struct Slot {
        /// 0 for an empty slot, else 1 + the encoding.
        encoding: u8,
        len: u8,
        count: u16,
        bytes: [u8; MAX_PIECE],
    }

    const EMPTY: Slot = Slot {
        encoding: 0,
        len: 0,
        count: 0,
        bytes: [0; MAX_PIECE],
    };

    thread_local! {
        static SLOTS_BY_THREAD: RefCell<Box<[Slot]>> = RefCell::new(vec![EMPTY; SLOTS].into_boxed_slice());
    }

    pub fn count(
        encoding: Encoding,
        piece: &[u8],
        bpe_count: impl FnOnce(&[u8]) -> usize,
    ) -> usize {
        if piece.len() > MAX_PIECE {
            return bpe_count(piece);
        }
        let tag = 1 + encoding as u8;
        let index = (FxBuildHasher.hash_one(piece) as usize) % SLOTS;
        let cached = SLOTS_BY_THREAD.with(|slots| {
            let slot = slots.borrow()[index];
            (slot.encoding == tag && &slot.bytes[..slot.len as usize] == piece)
                .then_some(slot.count as usize)
        });
        if let Some(count) = cached {
            return count;
        }
        let count = bpe_count(piece);
        let mut slot = Slot {
            encoding: tag,
            len: piece.len() as u8,
            count: count as u16,
            bytes: [0; MAX_PIECE],
        };
        slot.bytes[..piece.len()].copy_from_slice(piece);
        SLOTS_BY_THREAD.with(|slots| slots.borrow_mut()[index] = slot);
        count
    }
}

struct Vocabulary {
    tokenizer: &'static bpe_openai::Tokenizer,
    tokens: HashSet<&'static [u8], FxBuildHasher>,
}

impl Vocabulary {
    fn new(tokenizer: &'static bpe_openai::Tokenizer) -> Self {
        let bpe = &tokenizer.bpe;
        let tokens = (0..bpe.num_tokens() as u32)
            .map(|id| bpe.token_bytes(id))
            .collect();
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Scanner, whole-piece lookup and piece memo together equal bpe-openai's own count
        /// (regex split + BPE), on a first (memo miss) and a second (memo hit) pass.
        #[test]
        fn fast_paths_equal_the_plain_bpe_count(
            text in "([a-zA-Z]{1,14}|[ \\t\\n]{1,3}|[0-9]{1,5}|[.,;!?'/-]{1,3}|\\u{e9}t\\u{e9}|\\u{1f600}){0,30}"
        ) {
            for encoding in [Encoding::Cl100kBase, Encoding::O200kBase] {
                let expected = encoding.tokenizer().count(text.as_str());
                proptest::prop_assert_eq!(encoding.count_ordinary(&text), expected);
                proptest::prop_assert_eq!(encoding.count_ordinary(&text), expected);
            }
        }
    }

    #[test]
    fn unknown_encodings_are_unsupported() {
        assert_eq!(
            "p50k_base".parse::<Encoding>(),
            Err(crate::Unsupported::Tokenizer)
        );
        assert_eq!("o200k_base".parse::<Encoding>(), Ok(Encoding::O200kBase));
    }
}
