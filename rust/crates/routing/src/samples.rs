//! A deployment's latency from its recorded samples, as
//! `litellm/router_strategy/lowest_latency.py` computes it with Python arithmetic.
//!
//! The mean is Python's `sum(samples) / len(samples)`, and `sum` is not plain addition: leading
//! ints are summed exactly, and from Python 3.12 floats are summed with Neumaier compensation.
//! A deployment's first sample is often litellm's int `0` placeholder, so both matter when two
//! deployments' latencies are compared.

/// One recorded sample: a Python `int` or `float`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(value) => value as f64,
            Number::Float(value) => value,
        }
    }
}

/// Which `sum()` the running Python has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SumRule {
    /// Python 3.11: floats added left to right.
    Sequential,
    /// Python 3.12+: floats after the first added with Neumaier compensation.
    Compensated,
}

impl SumRule {
    /// `compensated`: the running Python's `sum()` compensates floats (3.12+).
    pub fn of(compensated: bool) -> Self {
        if compensated {
            SumRule::Compensated
        } else {
            SumRule::Sequential
        }
    }
}

/// Ints beyond this are not exactly representable as f64; sums reaching them are declined.
const EXACT_INT: i64 = 1 << 53;

/// `_usable_latency_samples`: finite, non-negative samples, in order.
pub fn usable(samples: &[Number]) -> Vec<Number> {
    samples
        .iter()
        .copied()
        .filter(|sample| {
            let value = sample.as_f64();
            value.is_finite() && value >= 0.0
        })
        .collect()
}

/// Python's `sum(samples)`, or `None` where this module does not reproduce it exactly (an int
/// after a float under compensated summation, ints too large for an f64).
pub fn python_sum(samples: &[Number], rule: SumRule) -> Option<Number> {
    let mut exact: i64 = 0;
    let mut rest = samples.iter();
    let mut total = loop {
        match rest.next() {
            None => return Some(Number::Int(exact)),
            Some(Number::Int(value)) => {
                exact = exact
                    .checked_add(*value)
                    .filter(|sum| sum.abs() <= EXACT_INT)?;
            }
            // `int + float` is one plain addition, however many items came before.
            Some(Number::Float(value)) => break exact as f64 + value,
        }
    };
    let mut compensation = 0.0_f64;
    for sample in rest {
        match (*sample, rule) {
            (Number::Float(value), SumRule::Sequential) => total += value,
            (Number::Int(value), SumRule::Sequential) if value.abs() <= EXACT_INT => {
                total += value as f64
            }
            (Number::Float(value), SumRule::Compensated) => {
                let sum = total + value;
                compensation += if total.abs() >= value.abs() {
                    (total - sum) + value
                } else {
                    (value - sum) + total
                };
                total = sum;
            }
            _ => return None,
        }
    }
    if compensation != 0.0 && compensation.is_finite() {
        total += compensation;
    }
    Some(Number::Float(total))
}

/// `_average_latency`: 0.0 without samples, else `sum / len` (Python's true division).
pub fn mean(samples: &[Number], rule: SumRule) -> Option<Number> {
    if samples.is_empty() {
        return Some(Number::Float(0.0));
    }
    let count = samples.len() as f64;
    Some(Number::Float(python_sum(samples, rule)?.as_f64() / count))
}

/// `_percentile_latency`: the sample at `ceil(len * percentile) - 1` of the sorted samples.
pub fn percentile(samples: &[Number], percentile: f64) -> Option<Number> {
    let mut sorted = samples.to_vec();
    // Python sorts ints and floats by value; no NaN reaches here (see `usable`).
    sorted.sort_by(|a, b| a.as_f64().total_cmp(&b.as_f64()));
    let rank = (sorted.len() as f64 * percentile).ceil() as usize;
    sorted.get(rank.checked_sub(1)?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Number::{Float, Int};

    #[test]
    fn sequential_sum_keeps_python_311_rounding() {
        let tenths = vec![Float(0.1); 10];
        assert_eq!(
            python_sum(&tenths, SumRule::Sequential),
            Some(Float(0.9999999999999999))
        );
        assert_eq!(
            python_sum(
                &[Float(1e16), Float(1.0), Float(-1e16)],
                SumRule::Sequential
            ),
            Some(Float(0.0))
        );
    }

    #[test]
    fn compensated_sum_matches_python_312() {
        let tenths = vec![Float(0.1); 10];
        assert_eq!(python_sum(&tenths, SumRule::Compensated), Some(Float(1.0)));
        assert_eq!(
            python_sum(
                &[Float(1e16), Float(1.0), Float(-1e16)],
                SumRule::Compensated
            ),
            Some(Float(1.0))
        );
        assert_eq!(
            python_sum(
                &[Int(0), Float(0.1), Float(0.2), Float(0.3)],
                SumRule::Compensated
            ),
            Some(Float(0.6))
        );
    }

    #[test]
    fn overflow_to_infinity_is_not_turned_into_nan() {
        let huge = [Float(1e308), Float(1e308), Float(1.0)];
        assert_eq!(
            python_sum(&huge, SumRule::Compensated),
            Some(Float(f64::INFINITY))
        );
        assert_eq!(
            python_sum(&huge, SumRule::Sequential),
            Some(Float(f64::INFINITY))
        );
    }

    #[test]
    fn leading_ints_sum_exactly_and_stay_ints() {
        assert_eq!(python_sum(&[Int(0)], SumRule::Sequential), Some(Int(0)));
        assert_eq!(
            python_sum(&[Int(2), Int(3)], SumRule::Compensated),
            Some(Int(5))
        );
        assert_eq!(python_sum(&[], SumRule::Sequential), Some(Int(0)));
    }

    #[test]
    fn sums_it_cannot_reproduce_are_declined() {
        assert_eq!(
            python_sum(&[Float(0.5), Int(1)], SumRule::Compensated),
            None
        );
        assert_eq!(
            python_sum(&[Int(EXACT_INT), Int(1)], SumRule::Sequential),
            None
        );
    }

    #[test]
    fn placeholder_zero_stays_in_the_mean() {
        assert_eq!(
            mean(&[Int(0), Float(0.5)], SumRule::Sequential),
            Some(Float(0.25))
        );
        assert_eq!(mean(&[Int(0)], SumRule::Sequential), Some(Float(0.0)));
        assert_eq!(mean(&[], SumRule::Compensated), Some(Float(0.0)));
    }

    #[test]
    fn unusable_samples_are_dropped() {
        let samples = [
            Float(-1.0),
            Float(f64::NAN),
            Float(f64::INFINITY),
            Float(0.2),
            Int(0),
        ];
        assert_eq!(usable(&samples), vec![Float(0.2), Int(0)]);
    }

    #[test]
    fn percentile_picks_the_ceiling_rank() {
        let samples = [Float(0.4), Float(0.1), Float(0.3), Float(0.2)];
        assert_eq!(percentile(&samples, 0.5), Some(Float(0.2)));
        assert_eq!(percentile(&samples, 1.0), Some(Float(0.4)));
        assert_eq!(percentile(&samples, 0.01), Some(Float(0.1)));
        assert_eq!(percentile(&[Int(0), Float(0.3)], 0.5), Some(Int(0)));
    }
}
