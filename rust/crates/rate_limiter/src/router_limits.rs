//! litellm's router pre-call check `enforce_model_rate_limits`, decision for decision.
//!
//! litellm keeps a deployment's usage in its routing cache under `{id}:{model}:rpm:{HH-MM}` (and
//! `tpm`, and `tpd`/`rpd` under the day): a counter created with a TTL that later increments do
//! not refresh. Requests are counted before the call (and the count rolled back when refused);
//! tokens are compared before the call and charged after it. The sync and async checks look at
//! the limits in a different order, so they can name a different limit for the same refusal.

use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// litellm's TTLs for the minute and the day counters, in seconds.
pub const MINUTE_TTL: f64 = 60.0;
pub const DAY_TTL: f64 = 86_400.0;

/// Expired counters are swept after this many increments, so memory stays bounded by the
/// deployments active in the last TTL.
const SWEEP_EVERY: u64 = 4096;

struct Counter {
    value: i64,
    expires_at: f64,
}

impl Counter {
    /// An expired counter starts over (with a new TTL) before `delta` is added.
    fn add(&mut self, delta: i64, ttl: f64, now: f64) -> i64 {
        if now > self.expires_at {
            *self = Counter { value: 0, expires_at: now + ttl };
        }
        self.value += delta;
        self.value
    }
}

/// Counters that expire like litellm's in-memory cache entries: the TTL is set when a counter is
/// created (or re-created after expiring) and kept by later increments. Time is the caller's
/// `now` in seconds, read from the same clock as the cache it stands in for.
#[derive(Default)]
pub struct ExpiringCounters {
    counters: DashMap<String, Counter>,
    increments: AtomicU64,
}

impl ExpiringCounters {
    pub fn get(&self, key: &str, now: f64) -> Option<i64> {
        let value = self.counters.get(key).map(|counter| (counter.value, counter.expires_at))?;
        if now > value.1 {
            self.counters.remove_if(key, |_, counter| now > counter.expires_at);
            return None;
        }
        Some(value.0)
    }

    /// Adds `delta` and returns the new value.
    pub fn increment(&self, key: &str, delta: i64, ttl: f64, now: f64) -> i64 {
        if self.increments.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.counters.retain(|_, counter| now <= counter.expires_at);
        }
        // An existing counter is updated in place; only a new key is copied into the map.
        if let Some(mut counter) = self.counters.get_mut(key) {
            return counter.add(delta, ttl, now);
        }
        self.counters.entry(key.to_owned()).or_insert(Counter { value: 0, expires_at: now + ttl }).add(delta, ttl, now)
    }

    pub fn len(&self) -> usize {
        self.counters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }
}

/// A deployment's limits as litellm resolves them (`None`: no such limit; 0 is a limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeploymentLimits {
    pub tpm: Option<i64>,
    pub rpm: Option<i64>,
    pub tpd: Option<i64>,
    pub rpd: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    Tpm,
    Rpm,
    Tpd,
    Rpd,
}

impl LimitKind {
    pub fn name(self) -> &'static str {
        match self {
            LimitKind::Tpm => "tpm",
            LimitKind::Rpm => "rpm",
            LimitKind::Tpd => "tpd",
            LimitKind::Rpd => "rpd",
        }
    }
}

/// The limit that refused a request and the usage litellm reports with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: LimitKind,
    pub limit: i64,
    pub usage: i64,
}

/// Which of litellm's two checks to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckOrder {
    /// `pre_call_check`: tpm, rpm, then the daily limits.
    Sync,
    /// `async_pre_call_check`: tpm, tpd, then rpm and rpd counted together.
    Async,
}

/// Where one deployment's usage is kept: `{id}:{model}`, the minute as `HH-MM`, and the day as
/// litellm names it (shifted by the deployment's daily reset time).
pub struct UsageKeys<'a> {
    pub deployment: &'a str,
    pub minute: &'a str,
    pub day: Option<&'a str>,
}

impl UsageKeys<'_> {
    fn key(&self, kind: LimitKind) -> String {
        let window = match kind {
            LimitKind::Tpm | LimitKind::Rpm => self.minute,
            LimitKind::Tpd | LimitKind::Rpd => self.day.unwrap_or_default(),
        };
        format!("{}:{}:{}", self.deployment, kind.name(), window)
    }
}

fn ttl(kind: LimitKind) -> f64 {
    match kind {
        LimitKind::Tpm | LimitKind::Rpm => MINUTE_TTL,
        LimitKind::Tpd | LimitKind::Rpd => DAY_TTL,
    }
}

/// The usage store of one router's `enforce_model_rate_limits` check.
#[derive(Default)]
pub struct ModelRateLimits {
    counters: ExpiringCounters,
}

impl ModelRateLimits {
    /// Admit the request (counting it against rpm/rpd) or refuse it, leaving every count as it was.
    pub fn check(&self, keys: &UsageKeys, limits: DeploymentLimits, order: CheckOrder, now: f64) -> Result<(), Refusal> {
        self.compare_tokens(keys, LimitKind::Tpm, limits.tpm, now)?;
        match order {
            CheckOrder::Sync => {
                self.count_request(keys, &[(LimitKind::Rpm, limits.rpm)], now)?;
                let daily = self
                    .compare_tokens(keys, LimitKind::Tpd, limits.tpd, now)
                    .and_then(|()| self.count_request(keys, &[(LimitKind::Rpd, limits.rpd)], now));
                if daily.is_err() {
                    self.refund(keys, &[(LimitKind::Rpm, limits.rpm)], now);
                }
                daily
            }
            CheckOrder::Async => {
                self.compare_tokens(keys, LimitKind::Tpd, limits.tpd, now)?;
                self.count_request(keys, &[(LimitKind::Rpm, limits.rpm), (LimitKind::Rpd, limits.rpd)], now)
            }
        }
    }

    /// A successful call's tokens, charged to its minute and its day.
    pub fn record_tokens(&self, keys: &UsageKeys, tokens: i64, now: f64) {
        self.counters.increment(&keys.key(LimitKind::Tpm), tokens, MINUTE_TTL, now);
        self.counters.increment(&keys.key(LimitKind::Tpd), tokens, DAY_TTL, now);
    }

    /// The current value of one of the deployment's counters.
    pub fn usage(&self, keys: &UsageKeys, kind: LimitKind, now: f64) -> Option<i64> {
        self.counters.get(&keys.key(kind), now)
    }

    /// Token limits compare the usage so far (`>=`): the request's own tokens are not known yet.
    fn compare_tokens(&self, keys: &UsageKeys, kind: LimitKind, limit: Option<i64>, now: f64) -> Result<(), Refusal> {
        let Some(limit) = limit else { return Ok(()) };
        match self.counters.get(&keys.key(kind), now) {
            Some(usage) if usage >= limit => Err(Refusal { kind, limit, usage }),
            _ => Ok(()),
        }
    }

    /// Count the request against each present limit, then refuse at the first one exceeded,
    /// rolling back every count this call made.
    fn count_request(&self, keys: &UsageKeys, limits: &[(LimitKind, Option<i64>)], now: f64) -> Result<(), Refusal> {
        let mut counted = [None; 2];
        for (slot, &(kind, limit)) in counted.iter_mut().zip(limits) {
            if limit.is_some() {
                *slot = Some(self.counters.increment(&keys.key(kind), 1, ttl(kind), now));
            }
        }
        for (&usage, &(kind, limit)) in counted.iter().zip(limits) {
            if let (Some(usage), Some(limit)) = (usage, limit) {
                if usage > limit {
                    self.refund(keys, limits, now);
                    return Err(Refusal { kind, limit, usage });
                }
            }
        }
        Ok(())
    }

    fn refund(&self, keys: &UsageKeys, limits: &[(LimitKind, Option<i64>)], now: f64) {
        for &(kind, limit) in limits {
            if limit.is_some() {
                self.counters.increment(&keys.key(kind), -1, ttl(kind), now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: UsageKeys = UsageKeys { deployment: "d1:openai/gpt-4o", minute: "10-05", day: Some("2026-11-27") };

    fn limits(tpm: Option<i64>, rpm: Option<i64>, tpd: Option<i64>, rpd: Option<i64>) -> DeploymentLimits {
        DeploymentLimits { tpm, rpm, tpd, rpd }
    }

    #[test]
    fn counter_ttl_is_set_at_creation_and_not_refreshed() {
        let counters = ExpiringCounters::default();
        assert_eq!(counters.increment("k", 1, 60.0, 0.0), 1);
        assert_eq!(counters.increment("k", 1, 60.0, 59.0), 2);
        assert_eq!(counters.get("k", 60.0), Some(2));
        assert_eq!(counters.get("k", 60.5), None);
        assert_eq!(counters.increment("k", 1, 60.0, 61.0), 1);
        assert_eq!(counters.get("k", 120.0), Some(1));
    }

    #[test]
    fn rpm_counts_then_refuses_and_rolls_back() {
        let store = ModelRateLimits::default();
        let rpm2 = limits(None, Some(2), None, None);
        assert!(store.check(&KEYS, rpm2, CheckOrder::Sync, 0.0).is_ok());
        assert!(store.check(&KEYS, rpm2, CheckOrder::Async, 0.0).is_ok());
        let refused = store.check(&KEYS, rpm2, CheckOrder::Sync, 0.0).unwrap_err();
        assert_eq!(refused, Refusal { kind: LimitKind::Rpm, limit: 2, usage: 3 });
        assert_eq!(store.usage(&KEYS, LimitKind::Rpm, 0.0), Some(2));
        let next_minute = UsageKeys { minute: "10-06", ..KEYS };
        assert!(store.check(&next_minute, rpm2, CheckOrder::Sync, 1.0).is_ok());
    }

    #[test]
    fn zero_is_a_limit() {
        let store = ModelRateLimits::default();
        let refused = store.check(&KEYS, limits(None, Some(0), None, None), CheckOrder::Async, 0.0).unwrap_err();
        assert_eq!((refused.kind, refused.usage), (LimitKind::Rpm, 1));
        // tokens: nothing used yet is no usage at all, so even a zero token limit admits.
        assert!(store.check(&KEYS, limits(Some(0), None, None, None), CheckOrder::Sync, 0.0).is_ok());
        store.record_tokens(&KEYS, 1, 0.0);
        assert_eq!(store.check(&KEYS, limits(Some(0), None, None, None), CheckOrder::Sync, 0.0).unwrap_err().kind, LimitKind::Tpm);
    }

    #[test]
    fn tokens_compare_usage_so_far() {
        let store = ModelRateLimits::default();
        let tpm100 = limits(Some(100), None, None, None);
        store.record_tokens(&KEYS, 99, 0.0);
        assert!(store.check(&KEYS, tpm100, CheckOrder::Sync, 0.0).is_ok());
        store.record_tokens(&KEYS, 1, 0.0);
        assert_eq!(store.check(&KEYS, tpm100, CheckOrder::Async, 0.0).unwrap_err(), Refusal { kind: LimitKind::Tpm, limit: 100, usage: 100 });
        assert_eq!(store.usage(&KEYS, LimitKind::Tpd, 0.0), Some(100));
    }

    #[test]
    fn sync_and_async_name_different_limits_for_the_same_refusal() {
        let both = limits(None, Some(0), Some(10), None);
        for (order, expected) in [(CheckOrder::Sync, LimitKind::Rpm), (CheckOrder::Async, LimitKind::Tpd)] {
            let store = ModelRateLimits::default();
            store.record_tokens(&KEYS, 10, 0.0);
            assert_eq!(store.check(&KEYS, both, order, 0.0).unwrap_err().kind, expected);
            assert_eq!(store.usage(&KEYS, LimitKind::Rpm, 0.0).unwrap_or(0), 0);
        }
    }

    #[test]
    fn a_daily_refusal_rolls_back_the_minute_count_too() {
        for order in [CheckOrder::Sync, CheckOrder::Async] {
            let store = ModelRateLimits::default();
            let rpd1 = limits(None, Some(10), None, Some(1));
            assert!(store.check(&KEYS, rpd1, order, 0.0).is_ok());
            let refused = store.check(&KEYS, rpd1, order, 0.0).unwrap_err();
            assert_eq!(refused, Refusal { kind: LimitKind::Rpd, limit: 1, usage: 2 });
            assert_eq!(store.usage(&KEYS, LimitKind::Rpm, 0.0), Some(1));
            assert_eq!(store.usage(&KEYS, LimitKind::Rpd, 0.0), Some(1));
        }
    }

    #[test]
    fn expired_counters_are_swept() {
        let counters = ExpiringCounters::default();
        for index in 0..SWEEP_EVERY - 1 {
            counters.increment(&format!("k{index}"), 1, 60.0, 0.0);
        }
        assert_eq!(counters.len(), SWEEP_EVERY as usize - 1);
        // the next increment sweeps first: only its own counter is left.
        counters.increment("late", 1, 60.0, 100.0);
        assert_eq!(counters.len(), 1);
    }
}
