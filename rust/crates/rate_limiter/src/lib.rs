//! Keyed rate limiting for litellm-rust: several limits per key (requests and tokens per minute,
//! per day, ...), parallel-request slots, usage charged after the fact, idle keys evicted, and an
//! injectable clock. No Python here; the glue crate exposes it as `litellm_rust.RateLimiter`.

pub mod clock;
pub mod distributed;
pub mod memory_store;
pub mod router_limits;
pub mod window;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

pub use clock::{Clock, ManualClock, MonotonicClock};
pub use distributed::{FailMode, Outcome, RedisLimiter};
pub use window::{Quota, Verdict, WindowState};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// litellm's own windows: a count over a window starting at the first hit (its limiters), or
    /// its router check's wall-clock minutes (`router_limits`).
    FixedWindow,
    /// The smoother token bucket (GCRA): a burst of the limit, then a steady rate.
    Gcra,
}

/// What a limit counts: one per request, or the request's tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Requests,
    Tokens,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    pub name: String,
    pub unit: Unit,
    pub quota: Quota,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    NoLimits,
    ZeroPeriod(String),
    DuplicateName(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::NoLimits => {
                write!(f, "at least one limit or max_parallel_requests is required")
            }
            ConfigError::ZeroPeriod(name) => write!(f, "{name}: the period must be longer than 0"),
            ConfigError::DuplicateName(name) => write!(f, "{name}: defined twice"),
        }
    }
}

/// The outcome of a check: allowed only if every limit allowed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Per limit (in the limiter's order), what is left after the decision.
    pub remaining: Vec<u64>,
    /// The index of the first limit that refused, if any.
    pub refused_by: Option<usize>,
    pub retry_after_ns: u64,
}

struct KeyState {
    windows: Vec<WindowState>,
    slots_in_use: AtomicU64,
    last_seen: AtomicU64,
}

pub struct KeyedLimiter {
    limits: Vec<Limit>,
    algorithm: Algorithm,
    max_parallel_requests: Option<u64>,
    idle_ns: u64,
    keys: DashMap<String, Arc<KeyState>>,
    clock: Arc<dyn Clock>,
}

impl KeyedLimiter {
    /// `idle_ns`: a key untouched this long (and holding no slot) may be evicted by `evict_idle`.
    pub fn new(
        limits: Vec<Limit>,
        algorithm: Algorithm,
        max_parallel_requests: Option<u64>,
        idle_ns: u64,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        if limits.is_empty() && max_parallel_requests.is_none() {
            return Err(ConfigError::NoLimits);
        }
        for (index, limit) in limits.iter().enumerate() {
            if limit.quota.period_ns == 0 {
                return Err(ConfigError::ZeroPeriod(limit.name.clone()));
            }
            if limits[..index].iter().any(|other| other.name == limit.name) {
                return Err(ConfigError::DuplicateName(limit.name.clone()));
            }
        }
        Ok(KeyedLimiter {
            limits,
            algorithm,
            max_parallel_requests,
            idle_ns,
            keys: DashMap::new(),
            clock,
        })
    }

    pub fn limits(&self) -> &[Limit] {
        &self.limits
    }

    fn key(&self, key: &str, now: u64) -> Arc<KeyState> {
        if let Some(state) = self.keys.get(key) {
            state.last_seen.store(now, Ordering::Relaxed);
            return Arc::clone(&state);
        }
        let windows = self
            .limits
            .iter()
            .map(|_| match self.algorithm {
                Algorithm::FixedWindow => WindowState::fixed_window(),
                Algorithm::Gcra => WindowState::gcra(),
            })
            .collect();
        let fresh = KeyState {
            windows,
            slots_in_use: AtomicU64::new(0),
            last_seen: AtomicU64::new(now),
        };
        Arc::clone(
            &self
                .keys
                .entry(key.to_owned())
                .or_insert_with(|| Arc::new(fresh)),
        )
    }

    /// Admit one request carrying `tokens` (charged to token limits), or refuse it without
    /// charging anything. Each limit is atomic on its own; a refusal by a later limit refunds
    /// what earlier ones charged.
    pub fn check(&self, key: &str, tokens: u64) -> Decision {
        let now = self.clock.now();
        let state = self.key(key, now);
        let mut remaining = Vec::with_capacity(self.limits.len());
        for (index, (limit, window)) in self.limits.iter().zip(&state.windows).enumerate() {
            let cost = self.cost(limit, tokens);
            let verdict = window.admit(limit.quota, now, cost);
            if !verdict.allowed {
                for (earlier, earlier_window) in self.limits[..index].iter().zip(&state.windows) {
                    earlier_window.debit(earlier.quota, now, -(self.cost(earlier, tokens) as i64));
                }
                let remaining = self
                    .limits
                    .iter()
                    .zip(&state.windows)
                    .map(|(l, w)| w.remaining(l.quota, now))
                    .collect();
                return Decision {
                    allowed: false,
                    remaining,
                    refused_by: Some(index),
                    retry_after_ns: verdict.retry_after_ns,
                };
            }
            remaining.push(verdict.remaining);
        }
        Decision {
            allowed: true,
            remaining,
            refused_by: None,
            retry_after_ns: 0,
        }
    }

    fn cost(&self, limit: &Limit, tokens: u64) -> u64 {
        match limit.unit {
            Unit::Requests => 1,
            Unit::Tokens => tokens,
        }
    }

    /// Charge usage known only after the response (e.g. the actual tokens minus the estimate
    /// charged at `check`; negative refunds) to every limit counting `unit`, or to `name` only.
    pub fn record_usage(&self, key: &str, unit: Unit, amount: i64, name: Option<&str>) {
        let now = self.clock.now();
        let state = self.key(key, now);
        for (limit, window) in self.limits.iter().zip(&state.windows) {
            if limit.unit == unit && name.map_or(true, |name| name == limit.name) {
                window.debit(limit.quota, now, amount);
            }
        }
    }

    /// Take a parallel-request slot if one is free.
    pub fn acquire(&self, key: &str) -> bool {
        let Some(max) = self.max_parallel_requests else {
            return true;
        };
        let state = self.key(key, self.clock.now());
        state
            .slots_in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < max).then_some(used + 1)
            })
            .is_ok()
    }

    /// Give a slot back (a release without a matching acquire is ignored).
    pub fn release(&self, key: &str) {
        if let Some(state) = self.keys.get(key) {
            let _ = state
                .slots_in_use
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                    used.checked_sub(1)
                });
        }
    }

    pub fn slots_in_use(&self, key: &str) -> u64 {
        self.keys
            .get(key)
            .map_or(0, |state| state.slots_in_use.load(Ordering::Acquire))
    }

    /// Forget keys idle for `idle_ns` that hold no slot (bounded memory); returns how many.
    pub fn evict_idle(&self) -> usize {
        let now = self.clock.now();
        let before = self.keys.len();
        self.keys.retain(|_, state| {
            state.slots_in_use.load(Ordering::Acquire) > 0
                || now.saturating_sub(state.last_seen.load(Ordering::Relaxed)) < self.idle_ns
        });
        before - self.keys.len()
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn limiter(algorithm: Algorithm, clock: &ManualClock) -> KeyedLimiter {
        let limits = vec![
            Limit {
                name: "rpm".into(),
                unit: Unit::Requests,
                quota: Quota {
                    amount: 5,
                    period_ns: 60 * SECOND,
                },
            },
            Limit {
                name: "tpm".into(),
                unit: Unit::Tokens,
                quota: Quota {
                    amount: 100,
                    period_ns: 60 * SECOND,
                },
            },
        ];
        KeyedLimiter::new(
            limits,
            algorithm,
            Some(2),
            300 * SECOND,
            Arc::new(clock.clone()),
        )
        .unwrap()
    }

    #[test]
    fn a_refusal_by_one_limit_charges_none() {
        let clock = ManualClock::default();
        let limiter = limiter(Algorithm::FixedWindow, &clock);
        assert!(limiter.check("k", 90).allowed);
        let refused = limiter.check("k", 20);
        assert_eq!(refused.refused_by, Some(1));
        assert_eq!(refused.remaining, vec![4, 10]);
        assert!(limiter.check("k", 10).allowed);
    }

    #[test]
    fn usage_after_the_fact_counts_against_token_limits_only() {
        let clock = ManualClock::default();
        let limiter = limiter(Algorithm::Gcra, &clock);
        assert!(limiter.check("k", 0).allowed);
        limiter.record_usage("k", Unit::Tokens, 100, None);
        assert_eq!(limiter.check("k", 1).refused_by, Some(1));
        assert!(limiter.check("k", 0).allowed);
    }

    #[test]
    fn slots_are_bounded_and_released() {
        let clock = ManualClock::default();
        let limiter = limiter(Algorithm::Gcra, &clock);
        assert!(limiter.acquire("k") && limiter.acquire("k"));
        assert!(!limiter.acquire("k"));
        limiter.release("k");
        assert!(limiter.acquire("k"));
        limiter.release("unknown");
        assert_eq!(limiter.slots_in_use("k"), 2);
    }

    #[test]
    fn idle_keys_are_evicted_unless_they_hold_a_slot() {
        let clock = ManualClock::default();
        let limiter = limiter(Algorithm::FixedWindow, &clock);
        limiter.check("idle", 0);
        assert!(limiter.acquire("busy"));
        clock.advance(301 * SECOND);
        assert_eq!(limiter.evict_idle(), 1);
        assert_eq!(limiter.key_count(), 1);
    }

    #[test]
    fn invalid_configurations_are_errors() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::default());
        let zero = vec![Limit {
            name: "rpm".into(),
            unit: Unit::Requests,
            quota: Quota {
                amount: 1,
                period_ns: 0,
            },
        }];
        assert_eq!(
            KeyedLimiter::new(zero, Algorithm::Gcra, None, 1, clock.clone()).err(),
            Some(ConfigError::ZeroPeriod("rpm".into()))
        );
        assert_eq!(
            KeyedLimiter::new(vec![], Algorithm::Gcra, None, 1, clock).err(),
            Some(ConfigError::NoLimits)
        );
    }

    #[test]
    fn eight_threads_never_admit_more_than_the_limit() {
        for algorithm in [Algorithm::FixedWindow, Algorithm::Gcra] {
            let clock = ManualClock::default();
            let limits = vec![Limit {
                name: "rpm".into(),
                unit: Unit::Requests,
                quota: Quota {
                    amount: 1_000,
                    period_ns: 60 * SECOND,
                },
            }];
            let limiter = Arc::new(
                KeyedLimiter::new(limits, algorithm, None, SECOND, Arc::new(clock)).unwrap(),
            );
            let admitted: u64 = (0..8)
                .map(|_| {
                    let limiter = Arc::clone(&limiter);
                    thread::spawn(move || {
                        (0..10_000)
                            .filter(|_| limiter.check("shared", 0).allowed)
                            .count() as u64
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .sum();
            assert_eq!(admitted, 1_000, "{algorithm:?}");
        }
    }
}
