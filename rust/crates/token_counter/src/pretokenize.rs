//! tiktoken's pre-tokenization (the regex that splits text into pieces before BPE), with a
//! hand-written scanner for ASCII and the regex for everything else.
//!
//! Matching the regex once per piece costs ~35 ns, more than the BPE on a typical piece. For
//! ASCII the classes are trivial (letters `A-Za-z`, numbers `0-9`, whitespace `\t\n\x0b\x0c\r `),
//! so the scanner applies the alternatives of the cl100k_base / o200k_base patterns directly. It
//! only decides from ASCII characters: whenever a decision would need to look at a non-ASCII
//! character, that one piece is matched by the regex instead (anchored at the same position,
//! which gives the same match as splitting the whole text). The property tests compare the result
//! with tiktoken through litellm.

use bpe_openai::Tokenizer;

/// Which pattern the scanner applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    Cl100k,
    /// Case-aware words (`[^\r\n\p{L}\p{N}]?[Upper]*[lower]+(contraction)?` and `...[Upper]+[lower]*...`),
    /// `\p{N}{1,3}`, ` ?[^\s\p{L}\p{N}]+[\r\n/]*`, then the same whitespace rules.
    O200k,
}

/// Pieces of `text`, in order, exactly as `tokenizer`'s regex splits it.
pub fn split<'a>(
    tokenizer: &'a Tokenizer,
    pattern: Pattern,
    text: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    let mut position = 0;
    let mut ascii_end = 0;
    std::iter::from_fn(move || {
        if position >= text.len() {
            return None;
        }
        if position >= ascii_end {
            ascii_end = text[position..]
                .bytes()
                .position(|b| !b.is_ascii())
                .map_or(text.len(), |i| position + i);
        }
        let scanned = (position < ascii_end)
            .then(|| {
                let window = Window {
                    bytes: &text.as_bytes()[position..ascii_end],
                    ends_text: ascii_end == text.len(),
                };
                window.piece(pattern).ok()
            })
            .flatten();
        let length = match scanned {
            Some(length) => length,
            None => tokenizer
                .split(&text[position..])
                .next()
                .map_or(text.len() - position, str::len),
        };
        let piece = &text[position..position + length];
        position += length;
        Some(piece)
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Trailing {
    Newlines,
    NewlinesAndSlashes,
}

/// The scanner needed a character beyond the ASCII window.
struct Bail;

type Scan<T> = Result<T, Bail>;

/// An ASCII run of the text; what follows it is the end of the text or a non-ASCII character.
struct Window<'a> {
    bytes: &'a [u8],
    ends_text: bool,
}

// Character classes of ASCII bytes as bit flags, so a run is one table lookup per byte.
const LETTER: u8 = 1;
const UPPER: u8 = 1 << 1;
const LOWER: u8 = 1 << 2;
const NUMBER: u8 = 1 << 3;
/// Unicode `White_Space` restricted to ASCII (what the regex's `\s` matches there).
const SPACE: u8 = 1 << 4;
const NEWLINE: u8 = 1 << 5;
/// `[^\s\p{L}\p{N}]`
const OTHER: u8 = 1 << 6;
/// `[^\r\n\p{L}\p{N}]`: the optional character before a word.
const WORD_PREFIX: u8 = 1 << 7;

const CLASSES: [u8; 128] = {
    let mut classes = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let byte = b as u8;
        let class = if byte.is_ascii_uppercase() {
            LETTER | UPPER
        } else if byte.is_ascii_lowercase() {
            LETTER | LOWER
        } else if byte.is_ascii_digit() {
            NUMBER
        } else if byte == b'\r' || byte == b'\n' {
            SPACE | NEWLINE
        } else if matches!(byte, b'\t' | 0x0b | 0x0c | b' ') {
            SPACE | WORD_PREFIX
        } else {
            OTHER | WORD_PREFIX
        };
        classes[b] = class;
        b += 1;
    }
    classes
};

fn has(b: u8, class: u8) -> bool {
    CLASSES[(b & 0x7f) as usize] & class != 0
}

impl Window<'_> {
    /// The byte at `i`, `None` at the end of the text, `Bail` at a non-ASCII character.
    fn at(&self, i: usize) -> Scan<Option<u8>> {
        match self.bytes.get(i) {
            Some(&b) => Ok(Some(b)),
            None if self.ends_text => Ok(None),
            None => Err(Bail),
        }
    }

    fn is(&self, i: usize, class: u8) -> Scan<bool> {
        Ok(self.at(i)?.is_some_and(|b| has(b, class)))
    }

    /// Index after the run of `class` starting at `i` (`i` itself when the run is empty).
    fn run(&self, i: usize, class: u8) -> Scan<usize> {
        let rest = &self.bytes[i.min(self.bytes.len())..];
        match rest.iter().position(|&b| !has(b, class)) {
            Some(length) => Ok(i + length),
            None if self.ends_text => Ok(i.max(self.bytes.len())),
            None => Err(Bail),
        }
    }

    /// Length of `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at `i` (0 when absent).
    fn contraction(&self, i: usize) -> Scan<usize> {
        if self.at(i)? != Some(b'\'') {
            return Ok(0);
        }
        let lower = |j| -> Scan<Option<u8>> { Ok(self.at(j)?.map(|b| b.to_ascii_lowercase())) };
        Ok(match lower(i + 1)? {
            Some(b's' | b't' | b'm' | b'd') => 2,
            Some(b'r' | b'v') if lower(i + 2)? == Some(b'e') => 3,
            Some(b'l') if lower(i + 2)? == Some(b'l') => 3,
            _ => 0,
        })
    }

    fn piece(&self, pattern: Pattern) -> Scan<usize> {
        let words = match pattern {
            Pattern::Cl100k => self.cl100k_word()?,
            Pattern::O200k => self.o200k_word()?,
        };
        if let Some(length) = words {
            return Ok(length);
        }
        if has(self.bytes[0], NUMBER) {
            return self.digits_up_to_three();
        }
        let trailing = match pattern {
            Pattern::Cl100k => Trailing::Newlines,
            Pattern::O200k => Trailing::NewlinesAndSlashes,
        };
        if let Some(length) = self.punctuation(trailing)? {
            return Ok(length);
        }
        self.whitespace()
    }

    /// `\p{N}{1,3}` without reading past the third digit.
    fn digits_up_to_three(&self) -> Scan<usize> {
        let mut i = 1;
        while i < 3 && self.is(i, NUMBER)? {
            i += 1;
        }
        Ok(i)
    }

    /// cl100k: the contraction alternative, then `[^\r\n\p{L}\p{N}]?\p{L}+`.
    fn cl100k_word(&self) -> Scan<Option<usize>> {
        let contraction = self.contraction(0)?;
        if contraction > 0 {
            return Ok(Some(contraction));
        }
        let start = usize::from(has(self.bytes[0], WORD_PREFIX));
        if !self.is(start, LETTER)? {
            return Ok(None);
        }
        Ok(Some(self.run(start, LETTER)?))
    }

    /// o200k: `P?[Upper]*[lower]+C?` then `P?[Upper]+[lower]*C?` (ASCII upper and lower are disjoint,
    /// so no backtracking into the upper run can help the first).
    fn o200k_word(&self) -> Scan<Option<usize>> {
        let start = usize::from(has(self.bytes[0], WORD_PREFIX));
        let upper_end = self.run(start, UPPER)?;
        let lower_end = self.run(upper_end, LOWER)?;
        if lower_end == start {
            return Ok(None);
        }
        Ok(Some(lower_end + self.contraction(lower_end)?))
    }

    /// ` ?[^\s\p{L}\p{N}]+` followed by a run of `trailing`.
    fn punctuation(&self, trailing: Trailing) -> Scan<Option<usize>> {
        let start = usize::from(self.bytes[0] == b' ');
        if !self.is(start, OTHER)? {
            return Ok(None);
        }
        let mut end = self.run(start, OTHER)?;
        loop {
            end = self.run(end, NEWLINE)?;
            // o200k's `[\r\n/]*`: slashes are OTHER, so they only appear here after a newline.
            if trailing == Trailing::NewlinesAndSlashes && self.at(end)? == Some(b'/') {
                end += 1;
            } else {
                return Ok(Some(end));
            }
        }
    }

    /// `\s*[\r\n]+`, `\s+$`, `\s+(?!\S)`, `\s+` for a whitespace run at the start.
    fn whitespace(&self) -> Scan<usize> {
        let end = self.run(0, SPACE)?;
        debug_assert!(
            end > 0,
            "every ASCII byte is a letter, number, space or other"
        );
        if let Some(last_newline) = self.bytes[..end].iter().rposition(|&b| has(b, NEWLINE)) {
            return Ok(last_newline + 1);
        }
        if self.at(end)?.is_none() || end == 1 {
            return Ok(end);
        }
        Ok(end - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(pattern: Pattern, text: &str) -> Vec<&str> {
        let tokenizer = match pattern {
            Pattern::Cl100k => bpe_openai::cl100k_base(),
            Pattern::O200k => bpe_openai::o200k_base(),
        };
        split(tokenizer, pattern, text).collect()
    }

    fn regex_pieces(pattern: Pattern, text: &str) -> Vec<&str> {
        let tokenizer = match pattern {
            Pattern::Cl100k => bpe_openai::cl100k_base(),
            Pattern::O200k => bpe_openai::o200k_base(),
        };
        tokenizer.split(text).collect()
    }

    const SAMPLES: &[&str] = &[
        "Hello world, it's 2026!",
        "I'LL say we'VE 'sup 'Re 're'",
        "HTTPServer iPhone McDonald's ABC's",
        "12345 3.14159 x1y22z333",
        "a   b\n\n  c \t\r\n  d   ",
        "!!! ?!\n\n // path/to/file/\n",
        " 'quoted' \"double\" (paren) [x]",
        "tab\tword\n\nline\r\nend",
        "mixed café naïve 日本 text —  end",
        "trailing spaces   ",
        "\n",
        " ",
        "'",
        "x",
    ];

    #[test]
    fn the_scanner_splits_exactly_like_the_regex() {
        for pattern in [Pattern::Cl100k, Pattern::O200k] {
            for text in SAMPLES {
                assert_eq!(
                    pieces(pattern, text),
                    regex_pieces(pattern, text),
                    "{pattern:?} {text:?}"
                );
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn the_scanner_agrees_with_the_regex_on_generated_text(
            text in "[ -~\t\n\r\x0b\x0c'sSlLrReEvVdDmMtT0-9/\u{e9}\u{65e5}\u{a0}\u{2014}\u{17f}\u{660}\u{301}\u{1c5}]{0,60}"
        ) {
            for pattern in [Pattern::Cl100k, Pattern::O200k] {
                proptest::prop_assert_eq!(pieces(pattern, &text), regex_pieces(pattern, &text));
            }
        }
    }

    #[test]
    fn pieces_cover_the_text() {
        for text in SAMPLES {
            assert_eq!(pieces(Pattern::O200k, text).concat(), *text);
        }
    }
}
