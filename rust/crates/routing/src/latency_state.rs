//! latency-based-routing's per-deployment state, as `LowestLatencyLoggingHandler` keeps it in
//! `{group}_map` and its pick reads it (`litellm/router_strategy/lowest_latency.py`).
//!
//! The map holds, per deployment id, a window of normalized latencies (`latency_normalized`), a
//! window of stream time-to-first-token samples (`time_to_first_token_seconds`) and per-minute
//! `{"tpm": .., "rpm": ..}` counters. A `LatencyEntry` is one deployment's entry reduced to what
//! the pick compares; `map_visits` is the order the pick visits the map's entries and the
//! candidates it lacks. The glue keeps entries across picks and re-reads one only when its dicts
//! or lists changed, so both the in-place read and the mirror compute through these.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

use crate::samples::{self, Number, SumRule};
use crate::{Fnv1a, LatencyCandidate, Limits};

/// One window of samples: the usable ones (`_usable_latency_samples`) and their mean.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    samples: Vec<Number>,
    /// `_average_latency`; `None` where Python's `sum` is not reproduced exactly.
    mean: Option<Number>,
}

impl Window {
    pub fn new(recorded: &[Number], rule: SumRule) -> Self {
        let samples = samples::usable(recorded);
        let mean = samples::mean(&samples, rule);
        Self { samples, mean }
    }
}

/// A deployment's entry as the latency pick reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyEntry {
    latency: Window,
    ttft: Window,
    /// This minute's recorded tokens and requests.
    pub tpm: f64,
    pub rpm: f64,
}

impl LatencyEntry {
    pub fn new(latency: Window, ttft: Window, tpm: f64, rpm: f64) -> Self {
        Self {
            latency,
            ttft,
            tpm,
            rpm,
        }
    }

    /// The placeholder the pick writes for a candidate the map lacks:
    /// `{"latency_normalized": [0], minute: {"tpm": 0, "rpm": 0}}`.
    pub fn placeholder(rule: SumRule) -> Self {
        Self::new(
            Window::new(&[Number::Int(0)], rule),
            Window::new(&[], rule),
            0.0,
            0.0,
        )
    }

    /// `selected_latency`: for a stream with TTFT samples, their `ttft_percentile` (or mean),
    /// else the mean latency. `None` where the handler's arithmetic is not reproduced exactly.
    pub fn selected(&self, stream: bool, ttft_percentile: Option<f64>) -> Option<Number> {
        let use_ttft = stream && !self.ttft.samples.is_empty();
        match (use_ttft, ttft_percentile) {
            (true, Some(percentile)) => samples::percentile(&self.ttft.samples, percentile),
            (true, None) => self.ttft.mean,
            (false, _) => self.latency.mean,
        }
    }
}

/// How a latency pick reads its entries: `stream` and `ttft_percentile` choose the latency
/// compared (`LatencyEntry::selected`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Selection {
    pub stream: bool,
    pub ttft_percentile: Option<f64>,
}

impl LatencyEntry {
    /// The entry as a candidate of the latency pick with `limits`, and the latency it is compared
    /// by; `None` where the handler's arithmetic is not reproduced exactly.
    pub fn candidate(
        &self,
        selection: Selection,
        limits: Limits,
    ) -> Option<(Number, LatencyCandidate)> {
        let latency = self.selected(selection.stream, selection.ttft_percentile)?;
        Some((
            latency,
            LatencyCandidate {
                latency: latency.as_f64(),
                tpm: self.tpm,
                rpm: self.rpm,
                limits,
            },
        ))
    }
}

/// The entries a latency (or cost) pick visits: `(candidate index, map position)` for each map
/// key that is a candidate id, in map order, naming the last candidate with that id (the handlers'
/// lookup loops keep the last match); then `(first candidate index, None)` for each id the map
/// lacks, in candidate order, whose first candidates are `missing` (placeholders are written for
/// those).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MapVisits {
    pub visits: Vec<(usize, Option<usize>)>,
    pub missing: Vec<usize>,
}

pub fn map_visits<'k>(
    candidate_ids: &[&str],
    map_keys: impl IntoIterator<Item = &'k str>,
) -> MapVisits {
    let mut last: HashMap<&str, usize, BuildHasherDefault<Fnv1a>> =
        HashMap::with_capacity_and_hasher(candidate_ids.len(), Default::default());
    for (index, id) in candidate_ids.iter().enumerate() {
        last.insert(id, index);
    }
    let mut visits = Vec::with_capacity(candidate_ids.len());
    let mut present: HashSet<&str, BuildHasherDefault<Fnv1a>> = HashSet::default();
    for (position, key) in map_keys.into_iter().enumerate() {
        if let Some((&id, &index)) = last.get_key_value(key) {
            present.insert(id);
            visits.push((index, Some(position)));
        }
    }
    let mut missing = Vec::new();
    for (index, id) in candidate_ids.iter().enumerate() {
        if present.insert(id) {
            missing.push(index);
            visits.push((last[id], None));
        }
    }
    MapVisits { visits, missing }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_candidate_carries_the_selected_latency_and_this_minutes_counters() {
        let entry = LatencyEntry::new(
            Window::new(
                &[Number::Float(0.5), Number::Float(1.5)],
                SumRule::Sequential,
            ),
            Window::new(&[Number::Float(0.2)], SumRule::Sequential),
            40.0,
            2.0,
        );
        let limits = Limits {
            tpm: 100.0,
            rpm: 5.0,
        };
        let plain = Selection {
            stream: false,
            ttft_percentile: None,
        };
        let (latency, candidate) = entry.candidate(plain, limits).unwrap();
        assert_eq!(latency, Number::Float(1.0));
        assert_eq!(
            candidate,
            LatencyCandidate {
                latency: 1.0,
                tpm: 40.0,
                rpm: 2.0,
                limits
            }
        );
        let stream = Selection {
            stream: true,
            ttft_percentile: None,
        };
        assert_eq!(entry.candidate(stream, limits).unwrap().1.latency, 0.2);
    }
    use Number::{Float, Int};

    fn entry(latency: &[Number], ttft: &[Number]) -> LatencyEntry {
        LatencyEntry::new(
            Window::new(latency, SumRule::Sequential),
            Window::new(ttft, SumRule::Sequential),
            0.0,
            0.0,
        )
    }

    #[test]
    fn streams_compare_ttft_when_there_is_any() {
        let both = entry(
            &[Float(0.4), Float(0.2)],
            &[Float(0.1), Float(0.3), Float(0.2)],
        );
        assert_eq!(both.selected(false, None), Some(Float(0.30000000000000004)));
        assert_eq!(both.selected(true, None), Some(Float(0.20000000000000004)));
        assert_eq!(both.selected(true, Some(0.5)), Some(Float(0.2)));
        let no_ttft = entry(&[Float(0.5)], &[Float(-1.0)]); // an unusable sample is no sample
        assert_eq!(no_ttft.selected(true, Some(0.9)), Some(Float(0.5)));
    }

    #[test]
    fn a_placeholder_reads_as_an_int_zero() {
        let placeholder = LatencyEntry::placeholder(SumRule::Compensated);
        assert_eq!(placeholder.selected(false, None), Some(Float(0.0)));
        assert_eq!((placeholder.tpm, placeholder.rpm), (0.0, 0.0));
    }

    #[test]
    fn an_unreproducible_mean_declines_only_when_selected() {
        let mixed = LatencyEntry::new(
            Window::new(&[Float(0.5), Int(1)], SumRule::Compensated),
            Window::new(&[Float(0.1)], SumRule::Compensated),
            0.0,
            0.0,
        );
        assert_eq!(mixed.selected(false, None), None);
        assert_eq!(mixed.selected(true, None), Some(Float(0.1)));
    }

    #[test]
    fn visits_follow_the_map_then_the_missing_candidates() {
        let visits = map_visits(&["a", "b", "a", "c"], ["x", "c", "a"]);
        assert_eq!(visits.visits, vec![(3, Some(1)), (2, Some(2)), (1, None)]);
        assert_eq!(visits.missing, vec![1]);
        let empty = map_visits(&["a", "a"], []);
        assert_eq!(empty.visits, vec![(1, None)]);
        assert_eq!(empty.missing, vec![0]);
    }
}
