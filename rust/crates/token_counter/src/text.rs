use crate::{Encoding, Unsupported};

/// litellm's text-counting constants, read from `litellm.constants` by the caller so a
/// different litellm version's values are honoured rather than baked in here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS`: text is encoded in chunks of this many code points.
    pub chunk_chars: usize,
    /// `TOKEN_COUNTER_MAX_EXACT_CHARS`: longer texts are extrapolated from samples.
    pub max_exact_chars: usize,
    /// `EXTRAPOLATION_SAMPLES`: how many evenly spaced samples an extrapolation reads.
    pub extrapolation_samples: usize,
}

impl Default for Limits {
    /// The values of litellm 1.110.2.
    fn default() -> Self {
        Limits {
            chunk_chars: 1024,
            max_exact_chars: 4_000_000,
            extrapolation_samples: 16,
        }
    }
}

/// Counts text the way `_get_count_function` in `litellm/litellm_core_utils/token_counter.py`
/// does for a tiktoken model: 1024-code-point chunks encoded separately, and texts longer than
/// the exact limit estimated from evenly spaced samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextCounter {
    pub encoding: Encoding,
    pub limits: Limits,
}

impl TextCounter {
    pub fn new(encoding: Encoding, limits: Limits) -> Self {
        TextCounter { encoding, limits }
    }

    /// Tokens litellm reports for `text`.
    pub fn count(&self, text: &str) -> Result<i64, Unsupported> {
        let chars = char_len(text);
        if chars <= self.limits.max_exact_chars {
            return Ok(self.count_chunked(text, chars) as i64);
        }
        self.extrapolate(text, chars)
    }

    fn count_chunked(&self, text: &str, chars: usize) -> usize {
        let chunk = self.limits.chunk_chars.max(1);
        if chars == text.len() {
            // ASCII: code points are bytes, so chunks are plain byte slices.
            return text
                .as_bytes()
                .chunks(chunk)
                .map(|c| self.count_ascii(c))
                .sum();
        }
        chunk_boundaries(text, chunk)
            .map(|(start, end)| self.encoding.count_ordinary(&text[start..end]))
            .sum()
    }

    fn count_ascii(&self, chunk: &[u8]) -> usize {
        // Safe by construction: the caller checked every byte is ASCII.
        self.encoding
            .count_ordinary(std::str::from_utf8(chunk).expect("ascii chunk"))
    }

    /// The code-point ranges litellm samples from a text of `chars` code points that is too long
    /// to count exactly (`_evenly_spaced_samples`): evenly spaced, each `chars`-independent long.
    pub fn sample_bounds(&self, chars: usize) -> Vec<(usize, usize)> {
        let total = self.limits.max_exact_chars;
        let sample_count = self.limits.extrapolation_samples.min(total).max(1);
        let sample_chars = total / sample_count;
        let last_start = chars - sample_chars;
        (0..sample_count)
            .map(|index| {
                let start = last_start * index / (sample_count - 1).max(1);
                (start, start + sample_chars)
            })
            .collect()
    }

    /// `_get_extrapolating_count_function`: `round(sum(sample counts) * chars / sampled_chars)`
    /// with Python's float division and round-half-to-even, over the texts of `sample_bounds`.
    pub fn extrapolated<'t>(
        &self,
        chars: usize,
        samples: impl IntoIterator<Item = &'t str>,
    ) -> Result<i64, Unsupported> {
        let mut sampled_tokens: u64 = 0;
        let mut sampled_chars: u128 = 0;
        for sample in samples {
            let sample_chars = char_len(sample);
            sampled_tokens += self.count_chunked(sample, sample_chars) as u64;
            sampled_chars += sample_chars as u128;
        }
        let numerator = sampled_tokens as u128 * chars as u128;
        // f64 division is correctly rounded, like Python's int / int, while both fit in 53 bits.
        const EXACT_F64: u128 = 1 << 53;
        if numerator >= EXACT_F64 || sampled_chars >= EXACT_F64 || sampled_chars == 0 {
            return Err(Unsupported::Extrapolation);
        }
        Ok((numerator as f64 / sampled_chars as f64).round_ties_even() as i64)
    }

    fn extrapolate(&self, text: &str, chars: usize) -> Result<i64, Unsupported> {
        let samples = self.sample_bounds(chars);
        let mut bounds: Vec<usize> = samples
            .iter()
            .flat_map(|&(start, end)| [start, end])
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        let offsets = byte_offsets(text, chars == text.len(), &bounds);
        let offset = |index: usize| offsets[bounds.binary_search(&index).expect("a sample bound")];
        self.extrapolated(
            chars,
            samples
                .into_iter()
                .map(|(start, end)| &text[offset(start)..offset(end)]),
        )
    }
}

/// Length in code points, which is what Python's `len(str)` measures.
pub fn char_len(text: &str) -> usize {
    // Every byte that is not a UTF-8 continuation byte starts a code point.
    text.as_bytes()
        .iter()
        .filter(|&&b| (b as i8) >= -0x40)
        .count()
}

/// Byte ranges of consecutive `chunk`-code-point slices of `text`.
fn chunk_boundaries(text: &str, chunk: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut starts = text
        .char_indices()
        .map(|(i, _)| i)
        .step_by(chunk)
        .peekable();
    std::iter::from_fn(move || {
        let start = starts.next()?;
        let end = starts.peek().copied().unwrap_or(text.len());
        Some((start, end))
    })
}

/// The byte offsets of the code-point `indices` (ascending) in `text`, the text's length for one
/// at or past its end. One pass that stops at the last index: no table of every character's offset
/// (a long non-ASCII text would need eight bytes per character for a few samples).
fn byte_offsets(text: &str, ascii: bool, indices: &[usize]) -> Vec<usize> {
    if ascii {
        return indices.iter().map(|&index| index.min(text.len())).collect();
    }
    let mut offsets = Vec::with_capacity(indices.len());
    let mut wanted = indices.iter().copied().peekable();
    for (position, (byte, _)) in text.char_indices().enumerate() {
        while wanted.next_if_eq(&position).is_some() {
            offsets.push(byte);
        }
        if wanted.peek().is_none() {
            break;
        }
    }
    offsets.resize(indices.len(), text.len());
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(encoding: Encoding) -> TextCounter {
        TextCounter::new(encoding, Limits::default())
    }

    #[test]
    fn chunking_changes_the_count_like_litellm() {
        // litellm.token_counter(model="gpt-4o", text="a" * 3000) == 375: chunks of 1024, 1024, 952.
        let text = "a".repeat(3000);
        let chunked = counter(Encoding::O200kBase).count(&text).unwrap();
        let expected = 2 * Encoding::O200kBase.count_ordinary(&"a".repeat(1024))
            + Encoding::O200kBase.count_ordinary(&"a".repeat(952));
        assert_eq!(chunked, expected as i64);
        assert_eq!(chunked, 375);
    }

    #[test]
    fn chunks_are_code_points_not_bytes() {
        let text = "é".repeat(1500);
        let expected = Encoding::Cl100kBase.count_ordinary(&"é".repeat(1024))
            + Encoding::Cl100kBase.count_ordinary(&"é".repeat(476));
        assert_eq!(
            counter(Encoding::Cl100kBase).count(&text).unwrap(),
            expected as i64
        );
    }

    #[test]
    fn char_len_counts_code_points() {
        assert_eq!(char_len("a\u{e9}\u{1f600}\u{200d}"), 4);
        assert_eq!(char_len(""), 0);
    }

    #[test]
    fn long_text_is_extrapolated_from_samples() {
        let limits = Limits {
            chunk_chars: 4,
            max_exact_chars: 32,
            extrapolation_samples: 4,
        };
        let counter = TextCounter::new(Encoding::Cl100kBase, limits);
        let text = "ab ".repeat(40); // 120 chars > 32
                                     // Samples of 8 chars at 0, 37, 74, 112 (last_start = 112).
        let samples: i64 = [0usize, 37, 74, 112]
            .iter()
            .map(|&s| counter.count(&text[s..s + 8]).unwrap())
            .sum();
        let expected = ((samples * 120) as f64 / 32.0).round_ties_even() as i64;
        assert_eq!(counter.count(&text).unwrap(), expected);
    }

    #[test]
    fn pathological_repetition_is_counted() {
        let text = "a".repeat(100_000);
        assert!(counter(Encoding::Cl100kBase).count(&text).unwrap() > 0);
    }

    #[test]
    fn byte_offsets_of_code_points_in_one_pass() {
        let text = "aé€😀b";
        let expected: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let all: Vec<usize> = (0..=5).collect();
        assert_eq!(byte_offsets(text, false, &all), expected);
        assert_eq!(
            byte_offsets(text, false, &[1, 3, 9]),
            vec![1, 6, text.len()]
        );
        assert_eq!(byte_offsets("abc", true, &[0, 2, 7]), vec![0, 2, 3]);
    }
}
