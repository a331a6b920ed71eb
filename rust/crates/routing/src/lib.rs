//! The picks of litellm's stateful routing strategies, over plain numbers.
//!
//! Each function mirrors one `litellm/router_strategy` handler's decision, given the state the
//! handler read (per-candidate counters, latencies, costs) and the candidates' limits. The
//! strategies that choose at random (latency, usage-based-routing-v2) return the set litellm
//! draws from, so the caller draws with Python's `random` and the distribution stays litellm's.
//! No Python here: the glue crate reads litellm's cache and deployment dicts into these inputs.

pub mod keys;
pub mod latency_state;
pub mod samples;
pub mod usage_mirror;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A deployment's tpm and rpm limits, `f64::INFINITY` where litellm finds none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub tpm: f64,
    pub rpm: f64,
}

impl Limits {
    pub const NONE: Limits = Limits {
        tpm: f64::INFINITY,
        rpm: f64::INFINITY,
    };

    /// Whether the request's input tokens can decide this deployment's admission (litellm counts
    /// them on every pick; a caller can skip the count when no candidate needs it).
    pub fn counts_tokens(&self) -> bool {
        self.tpm.is_finite()
    }
}

/// One candidate of a latency pick (`LowestLatencyLoggingHandler._get_available_deployments`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyCandidate {
    pub latency: f64,
    /// This minute's recorded tokens and requests.
    pub tpm: f64,
    pub rpm: f64,
    pub limits: Limits,
}

/// The latency and cost handlers' admission: `tpm + input > limit` or `rpm + 1 > limit` rejects.
fn admitted(tpm: f64, rpm: f64, limits: Limits, input_tokens: f64) -> bool {
    !(tpm + input_tokens > limits.tpm || rpm + 1.0 > limits.rpm)
}

/// The candidates a latency pick draws from uniformly: those admitted within
/// `lowest + buffer * lowest`, or every admitted one when that leaves none (a negative buffer).
/// Empty when none is admitted (litellm returns `None`).
pub fn latency_choices(
    candidates: &[LatencyCandidate],
    input_tokens: f64,
    buffer: f64,
) -> Vec<usize> {
    let admitted: Vec<usize> = (0..candidates.len())
        .filter(|&i| {
            let c = &candidates[i];
            admitted(c.tpm, c.rpm, c.limits, input_tokens)
        })
        .collect();
    let Some(lowest) = admitted
        .iter()
        .map(|&i| candidates[i].latency)
        .min_by(f64::total_cmp)
    else {
        return admitted;
    };
    let threshold = lowest + buffer * lowest;
    let within: Vec<usize> = admitted
        .iter()
        .copied()
        .filter(|&i| candidates[i].latency <= threshold)
        .collect();
    if within.is_empty() {
        admitted
    } else {
        within
    }
}

/// One candidate of a cost pick (`LowestCostLoggingHandler.async_get_available_deployments`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostCandidate {
    pub cost: f64,
    pub tpm: f64,
    pub rpm: f64,
    pub limits: Limits,
}

/// The cheapest admitted candidate, the first of equals (litellm's stable sort), in the order
/// given (the handler's map order).
pub fn lowest_cost(candidates: &[CostCandidate], input_tokens: f64) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, c) in candidates.iter().enumerate() {
        if admitted(c.tpm, c.rpm, c.limits, input_tokens)
            && best.map_or(true, |b| c.cost < candidates[b].cost)
        {
            best = Some(i);
        }
    }
    best
}

/// One candidate of a usage-based-routing-v2 pick (`LowestTPMLoggingHandler_v2`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UsageCandidate {
    /// This minute's tokens (an unread counter is 0).
    pub tpm: f64,
    /// This minute's requests, `None` when the counter is unset (no rpm check then).
    pub rpm: Option<f64>,
    pub limits: Limits,
}

/// `_return_potential_deployments`: the admitted candidates tied at the lowest tpm, in order.
/// Unlike the latency and cost handlers, a request is refused once `rpm + 1 >= limit`.
pub fn lowest_usage(candidates: &[UsageCandidate], input_tokens: f64) -> Vec<usize> {
    let mut lowest = f64::INFINITY;
    let mut tied = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let over_rpm = c.rpm.is_some_and(|rpm| rpm + 1.0 >= c.limits.rpm);
        if c.tpm + input_tokens > c.limits.tpm || over_rpm {
            continue;
        }
        if c.tpm == lowest {
            tied.push(i);
        } else if c.tpm < lowest {
            lowest = c.tpm;
            tied.clear();
            tied.push(i);
        }
    }
    tied
}

/// A deployment's input and output price per token, where known.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Prices {
    pub input: Option<f64>,
    pub output: Option<f64>,
}

impl Prices {
    /// Both prices known: the cost map need not be asked.
    pub fn complete(&self) -> bool {
        self.input.is_some() && self.output.is_some()
    }
}

/// The price per token `LowestCostLoggingHandler` sorts by: input plus output, each the
/// deployment's own (`litellm_params`, when truthy), else the cost map's, else 5.0 (its default
/// for an unmapped model). `None` for NaN: Python's sort with a NaN key depends on the order it
/// compares in, which is litellm's to keep.
pub fn cost_per_token(own: Prices, cost_map: Prices) -> Option<f64> {
    const UNMAPPED: f64 = 5.0;
    let cost = own.input.or(cost_map.input).unwrap_or(UNMAPPED)
        + own.output.or(cost_map.output).unwrap_or(UNMAPPED);
    (!cost.is_nan()).then_some(cost)
}

/// A deployment's in-flight calls as `LeastBusyLoggingHandler` counts them: this worker's
/// counter (`_local_counts`: a float truncated by `int()`, an absent one 0), at least `shared`
/// (`_at_least_this_workers`, the count every worker shares). `None` for a count `int()` would
/// not take (infinite or NaN).
pub fn in_flight(count: Option<f64>, shared: Option<i64>) -> Option<i64> {
    let count = match count {
        None => 0,
        Some(value) if value.is_finite() => value.trunc() as i64,
        Some(_) => return None,
    };
    Some(shared.map_or(count, |shared| count.max(shared)))
}

/// `_least_busy_index`: the first candidate with the fewest in-flight calls plus live reservations.
pub fn least_busy(loads: &[i64]) -> Option<usize> {
    (0..loads.len()).min_by_key(|&i| loads[i])
}

/// `_unexpired`: reservations made less than `ttl` seconds before `now`.
pub fn live_reservations(made_at: &[f64], now: f64, ttl: f64) -> usize {
    made_at.iter().filter(|&&at| now - at < ttl).count()
}

/// Each distinct id once, in order of first occurrence, with the index of its last occurrence:
/// what a dict filled by assignment in a loop keeps (the handlers' id lookups and usage dicts).
pub fn first_seen_last_wins<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
    let ids = ids.into_iter();
    // Short ids on every pick: FNV hashes them faster than SipHash, and nothing here is adversarial
    // beyond the router's own deployment ids.
    let mut slots: HashMap<&str, usize, BuildHasherDefault<Fnv1a>> =
        HashMap::with_capacity_and_hasher(ids.size_hint().0, Default::default());
    let mut kept: Vec<usize> = Vec::new();
    for (i, id) in ids.enumerate() {
        match slots.get(id) {
            Some(&slot) => kept[slot] = i,
            None => {
                slots.insert(id, kept.len());
                kept.push(i);
            }
        }
    }
    kept
}

/// 64-bit FNV-1a.
pub(crate) struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = self.0;
        for &byte in bytes {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    fn latency(latency: f64) -> LatencyCandidate {
        LatencyCandidate {
            latency,
            tpm: 0.0,
            rpm: 0.0,
            limits: Limits::NONE,
        }
    }

    #[test]
    fn latency_without_buffer_keeps_the_ties_at_the_lowest() {
        let candidates = [latency(0.3), latency(0.1), latency(0.2), latency(0.1)];
        assert_eq!(latency_choices(&candidates, 0.0, 0.0), vec![1, 3]);
    }

    #[test]
    fn latency_buffer_widens_the_set() {
        let candidates = [latency(0.3), latency(0.1), latency(0.15), latency(0.11)];
        assert_eq!(latency_choices(&candidates, 0.0, 0.5), vec![1, 2, 3]);
    }

    #[test]
    fn negative_buffer_draws_from_every_admitted_candidate() {
        let candidates = [latency(0.3), latency(0.1)];
        assert_eq!(latency_choices(&candidates, 0.0, -0.5), vec![0, 1]);
    }

    #[test]
    fn zero_latency_new_deployments_win() {
        let candidates = [latency(0.3), latency(0.0), latency(0.0)];
        assert_eq!(latency_choices(&candidates, 0.0, 0.5), vec![1, 2]);
    }

    #[test]
    fn latency_limits_reject_over_tpm_and_at_rpm() {
        let mut full = latency(0.1);
        full.limits = Limits { tpm: INF, rpm: 3.0 };
        full.rpm = 2.0; // 2 + 1 > 3 is false: still admitted
        let mut at_rpm = latency(0.05);
        at_rpm.limits = Limits { tpm: INF, rpm: 3.0 };
        at_rpm.rpm = 3.0;
        let mut over_tpm = latency(0.01);
        over_tpm.limits = Limits {
            tpm: 100.0,
            rpm: INF,
        };
        over_tpm.tpm = 90.0;
        assert_eq!(
            latency_choices(&[full, at_rpm, over_tpm], 11.0, 0.0),
            vec![0]
        );
        assert_eq!(
            latency_choices(&[full, at_rpm, over_tpm], 10.0, 0.0),
            vec![2]
        );
    }

    #[test]
    fn latency_with_nothing_admitted_is_empty() {
        let mut c = latency(0.1);
        c.limits.rpm = 0.5;
        assert!(latency_choices(&[c], 0.0, 0.0).is_empty());
        assert!(latency_choices(&[], 0.0, 0.0).is_empty());
    }

    #[test]
    fn infinite_latency_with_zero_buffer_draws_from_all() {
        // inf * 0 is NaN, so no candidate is within the buffer: litellm falls back to all of them.
        let candidates = [latency(INF), latency(INF)];
        assert_eq!(latency_choices(&candidates, 0.0, 0.0), vec![0, 1]);
    }

    fn cost(cost: f64) -> CostCandidate {
        CostCandidate {
            cost,
            tpm: 0.0,
            rpm: 0.0,
            limits: Limits::NONE,
        }
    }

    #[test]
    fn cost_takes_the_first_of_the_cheapest() {
        assert_eq!(
            lowest_cost(&[cost(2.0), cost(1.0), cost(1.0)], 0.0),
            Some(1)
        );
        assert_eq!(lowest_cost(&[], 0.0), None);
    }

    #[test]
    fn cost_skips_candidates_over_their_limits() {
        let mut cheap = cost(0.5);
        cheap.limits.tpm = 10.0;
        assert_eq!(lowest_cost(&[cost(1.0), cheap], 11.0), Some(0));
        assert_eq!(lowest_cost(&[cost(1.0), cheap], 10.0), Some(1));
    }

    fn usage(tpm: f64, rpm: Option<f64>, limits: Limits) -> UsageCandidate {
        UsageCandidate { tpm, rpm, limits }
    }

    #[test]
    fn usage_ties_at_the_lowest_tpm() {
        let candidates = [
            usage(5.0, None, Limits::NONE),
            usage(2.0, None, Limits::NONE),
            usage(2.0, Some(1.0), Limits::NONE),
        ];
        assert_eq!(lowest_usage(&candidates, 0.0), vec![1, 2]);
    }

    #[test]
    fn usage_rpm_refuses_one_request_early() {
        let limits = Limits { tpm: INF, rpm: 3.0 };
        assert!(lowest_usage(&[usage(0.0, Some(2.0), limits)], 0.0).is_empty());
        assert_eq!(lowest_usage(&[usage(0.0, Some(1.0), limits)], 0.0), vec![0]);
        assert_eq!(lowest_usage(&[usage(0.0, None, limits)], 0.0), vec![0]);
    }

    #[test]
    fn usage_zero_limit_is_a_limit() {
        let zero_tpm = Limits { tpm: 0.0, rpm: INF };
        assert_eq!(lowest_usage(&[usage(0.0, None, zero_tpm)], 0.0), vec![0]);
        assert!(lowest_usage(&[usage(0.0, None, zero_tpm)], 1.0).is_empty());
        let zero_rpm = Limits { tpm: INF, rpm: 0.0 };
        assert!(lowest_usage(&[usage(0.0, Some(0.0), zero_rpm)], 0.0).is_empty());
    }

    #[test]
    fn usage_counter_at_infinity_ties_with_the_start() {
        // litellm starts from lowest = inf, so an infinite counter joins the set until a finite one.
        assert_eq!(
            lowest_usage(&[usage(INF, None, Limits::NONE)], 0.0),
            vec![0]
        );
        assert_eq!(
            lowest_usage(
                &[
                    usage(INF, None, Limits::NONE),
                    usage(1.0, None, Limits::NONE)
                ],
                0.0
            ),
            vec![1]
        );
    }

    #[test]
    fn least_busy_first_of_the_fewest() {
        assert_eq!(least_busy(&[2, 1, 1, 3]), Some(1));
        assert_eq!(least_busy(&[]), None);
    }

    #[test]
    fn in_flight_truncates_and_takes_the_shared_count_when_larger() {
        assert_eq!(in_flight(None, None), Some(0));
        assert_eq!(in_flight(Some(2.9), None), Some(2));
        assert_eq!(in_flight(Some(-0.5), None), Some(0));
        assert_eq!(in_flight(Some(2.0), Some(5)), Some(5));
        assert_eq!(in_flight(Some(7.0), Some(5)), Some(7));
        assert_eq!(in_flight(None, Some(3)), Some(3));
        assert_eq!(in_flight(Some(f64::INFINITY), None), None);
        assert_eq!(in_flight(Some(f64::NAN), Some(1)), None);
    }

    #[test]
    fn cost_prefers_own_prices_then_the_cost_map_then_the_default() {
        let own = Prices {
            input: Some(1.0),
            output: None,
        };
        let mapped = Prices {
            input: Some(10.0),
            output: Some(20.0),
        };
        assert_eq!(cost_per_token(own, mapped), Some(21.0));
        assert_eq!(cost_per_token(own, Prices::default()), Some(6.0));
        assert_eq!(
            cost_per_token(Prices::default(), Prices::default()),
            Some(10.0)
        );
        assert!(!own.complete() && mapped.complete());
    }

    #[test]
    fn a_nan_cost_is_left_to_litellm() {
        let nan = Prices {
            input: Some(f64::NAN),
            output: Some(1.0),
        };
        assert_eq!(cost_per_token(nan, Prices::default()), None);
    }

    #[test]
    fn reservations_expire_after_the_ttl() {
        // now - at < ttl: 29.5 s old is live, exactly 30 s old is not.
        assert_eq!(live_reservations(&[0.0, 70.5, 70.0, 100.0], 100.0, 30.0), 2);
    }

    #[test]
    fn duplicate_ids_keep_first_position_and_last_index() {
        assert_eq!(
            first_seen_last_wins(["a", "b", "a", "c", "b"]),
            vec![2, 4, 3]
        );
        assert_eq!(
            first_seen_last_wins(Vec::<&str>::new()),
            Vec::<usize>::new()
        );
    }
}
