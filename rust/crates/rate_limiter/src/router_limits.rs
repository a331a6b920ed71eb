//! litellm's router pre-call check `enforce_model_rate_limits`, decision for decision.
//!
//! litellm keeps a deployment's usage in its routing cache under `{id}:{model}:rpm:{HH-MM}` (and
//! `tpm`, and `tpd`/`rpd` under the day): a counter created with a TTL that later increments do
//! not refresh. Requests are counted before the call (and the count rolled back when refused);
//! tokens are compared before the call and charged after it. The sync and async checks look at
//! the limits in a different order, so they can name a different limit for the same refusal.
//!
//! `Algorithm::Gcra` keeps rpm and tpm in one token bucket each per deployment instead (a burst of
//! the limit, then a steady `limit / minute`; see `window`), in the same order of checks and with
//! the same rollbacks. The daily limits stay litellm's days in both: they follow the provider's
//! quota day, which resets at `daily_reset_time`.

use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::window::{Quota, Verdict, WindowState};
use crate::Algorithm;

/// litellm's TTLs for the minute and the day counters, in seconds.
pub const MINUTE_TTL: f64 = 60.0;
pub const DAY_TTL: f64 = 86_400.0;

const MINUTE_NS: u64 = 60_000_000_000;

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
            *self = Counter {
                value: 0,
                expires_at: now + ttl,
            };
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
        let value = self
            .counters
            .get(key)
            .map(|counter| (counter.value, counter.expires_at))?;
        if now > value.1 {
            self.counters
                .remove_if(key, |_, counter| now > counter.expires_at);
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
        self.counters
            .entry(key.to_owned())
            .or_insert(Counter {
                value: 0,
                expires_at: now + ttl,
            })
            .add(delta, ttl, now)
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
    /// When a bucket would admit the request; `None`: litellm's own answer (a minute, or until
    /// the daily reset).
    pub retry_after_ns: Option<u64>,
}

impl Refusal {
    /// The bucket's retry-after in whole seconds, rounded up as litellm's header is.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.retry_after_ns
            .map(|nanos| nanos.div_ceil(1_000_000_000))
    }
}

/// The minute of the UTC day `seconds` (since the epoch) falls in.
pub fn minute_of_day(seconds: f64) -> u32 {
    (seconds.div_euclid(60.0) as i64).rem_euclid(24 * 60) as u32
}

/// litellm's `HH-MM` window name for a minute of the day.
pub fn minute_name(minute_of_day: u32) -> String {
    format!("{:02}-{:02}", minute_of_day / 60 % 24, minute_of_day % 60)
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

/// A per-minute limit as a bucket's quota (a negative limit, which litellm refuses every request
/// against, admits nothing).
fn per_minute(limit: i64) -> Quota {
    Quota {
        amount: limit.max(0) as u64,
        period_ns: MINUTE_NS,
    }
}

/// The cache clock's seconds on the buckets' nanosecond scale.
fn nanos(seconds: f64) -> u64 {
    (seconds * 1e9) as u64
}

/// The tpm limit a deployment's buckets have not seen yet (no limit is a bucket's amount).
const NO_TOKEN_LIMIT: u64 = u64::MAX;

/// One deployment's rpm and tpm under `Algorithm::Gcra`.
struct Buckets {
    requests: WindowState,
    tokens: WindowState,
    /// The tpm limit of the latest check: tokens arrive after the call, without their limit.
    token_limit: AtomicU64,
}

impl Buckets {
    fn admit_request(&self, limit: i64, now: u64) -> Result<(), Refusal> {
        let quota = per_minute(limit);
        let verdict = self.requests.admit(quota, now, 1);
        // Like litellm's count, the usage shown includes the refused request.
        refused_unless(verdict, LimitKind::Rpm, limit, || {
            self.requests.used(quota, now) + 1
        })
    }

    fn refund_request(&self, limit: i64, now: u64) {
        self.requests.debit(per_minute(limit), now, -1);
    }

    /// A request is admitted while one more token fits: its own tokens are charged after it.
    fn admit_tokens(&self, limit: i64, now: u64) -> Result<(), Refusal> {
        let quota = per_minute(limit);
        self.token_limit.store(quota.amount, Ordering::Relaxed);
        refused_unless(
            self.tokens.peek(quota, now, 1),
            LimitKind::Tpm,
            limit,
            || self.tokens.used(quota, now),
        )
    }

    fn charge_tokens(&self, tokens: i64, now: u64) {
        let amount = self.token_limit.load(Ordering::Relaxed);
        if amount != NO_TOKEN_LIMIT {
            self.tokens.debit(
                Quota {
                    amount,
                    period_ns: MINUTE_NS,
                },
                now,
                tokens,
            );
        }
    }
}

fn refused_unless(
    verdict: Verdict,
    kind: LimitKind,
    limit: i64,
    usage: impl FnOnce() -> u64,
) -> Result<(), Refusal> {
    if verdict.allowed {
        return Ok(());
    }
    let usage = i64::try_from(usage()).unwrap_or(i64::MAX);
    Err(Refusal {
        kind,
        limit,
        usage,
        retry_after_ns: Some(verdict.retry_after_ns),
    })
}

/// The usage store of one router's `enforce_model_rate_limits` check.
#[derive(Default)]
pub struct ModelRateLimits {
    counters: ExpiringCounters,
    /// Per deployment (`{id}:{model}`, no window in the key): bounded by the deployments the
    /// router has had, so never swept.
    buckets: DashMap<String, Arc<Buckets>>,
}

impl ModelRateLimits {
    /// Admit the request (counting it against rpm/rpd) or refuse it, leaving every count as it was.
    pub fn check(
        &self,
        keys: &UsageKeys,
        limits: DeploymentLimits,
        order: CheckOrder,
        algorithm: Algorithm,
        now: f64,
    ) -> Result<(), Refusal> {
        let buckets = match algorithm {
            Algorithm::FixedWindow => None,
            Algorithm::Gcra => Some(self.buckets(keys.deployment)),
        };
        let buckets = buckets.as_deref();
        match (buckets, limits.tpm) {
            (Some(buckets), Some(tpm)) => buckets.admit_tokens(tpm, nanos(now))?,
            (Some(_), None) => {}
            (None, tpm) => self.compare_tokens(keys, LimitKind::Tpm, tpm, now)?,
        }
        let rpd = [(LimitKind::Rpd, limits.rpd)];
        match order {
            CheckOrder::Sync => self.request_then_daily(buckets, keys, limits.rpm, now, || {
                self.compare_tokens(keys, LimitKind::Tpd, limits.tpd, now)
                    .and_then(|()| self.count_request(keys, &rpd, now))
            }),
            CheckOrder::Async => {
                self.compare_tokens(keys, LimitKind::Tpd, limits.tpd, now)?;
                match buckets {
                    // litellm counts the minute's and the day's request together; a bucket decides first.
                    None => self.count_request(keys, &[(LimitKind::Rpm, limits.rpm), rpd[0]], now),
                    Some(_) => self.request_then_daily(buckets, keys, limits.rpm, now, || {
                        self.count_request(keys, &rpd, now)
                    }),
                }
            }
        }
    }

    /// A successful call's tokens, charged to its minute and its day (and to the deployment's
    /// token bucket, if it has one: the counters are charged too, so switching algorithms keeps
    /// the minute's tokens).
    pub fn record_tokens(&self, keys: &UsageKeys, tokens: i64, now: f64) {
        self.counters
            .increment(&keys.key(LimitKind::Tpm), tokens, MINUTE_TTL, now);
        self.counters
            .increment(&keys.key(LimitKind::Tpd), tokens, DAY_TTL, now);
        if let Some(buckets) = self.buckets.get(keys.deployment) {
            buckets.charge_tokens(tokens, nanos(now));
        }
    }

    fn buckets(&self, deployment: &str) -> Arc<Buckets> {
        if let Some(buckets) = self.buckets.get(deployment) {
            return Arc::clone(&buckets);
        }
        let fresh = || {
            let token_limit = AtomicU64::new(NO_TOKEN_LIMIT);
            Arc::new(Buckets {
                requests: WindowState::gcra(),
                tokens: WindowState::gcra(),
                token_limit,
            })
        };
        Arc::clone(
            &self
                .buckets
                .entry(deployment.to_owned())
                .or_insert_with(fresh),
        )
    }

    /// The minute's request (a count, or a bucket's admission), then `daily`; a daily refusal
    /// gives the minute's request back.
    fn request_then_daily(
        &self,
        buckets: Option<&Buckets>,
        keys: &UsageKeys,
        rpm: Option<i64>,
        now: f64,
        daily: impl FnOnce() -> Result<(), Refusal>,
    ) -> Result<(), Refusal> {
        match (buckets, rpm) {
            (None, _) => {
                let minute = [(LimitKind::Rpm, rpm)];
                self.count_request(keys, &minute, now)?;
                daily().inspect_err(|_| self.refund(keys, &minute, now))
            }
            (Some(buckets), Some(rpm)) => {
                buckets.admit_request(rpm, nanos(now))?;
                daily().inspect_err(|_| buckets.refund_request(rpm, nanos(now)))
            }
            (Some(_), None) => daily(),
        }
    }

    /// The current value of one of the deployment's counters.
    pub fn usage(&self, keys: &UsageKeys, kind: LimitKind, now: f64) -> Option<i64> {
        self.counters.get(&keys.key(kind), now)
    }

    /// Token limits compare the usage so far (`>=`): the request's own tokens are not known yet.
    fn compare_tokens(
        &self,
        keys: &UsageKeys,
        kind: LimitKind,
        limit: Option<i64>,
        now: f64,
    ) -> Result<(), Refusal> {
        let Some(limit) = limit else { return Ok(()) };
        match self.counters.get(&keys.key(kind), now) {
            Some(usage) if usage >= limit => Err(Refusal {
                kind,
                limit,
                usage,
                retry_after_ns: None,
            }),
            _ => Ok(()),
        }
    }

    /// Count the request against each present limit, then refuse at the first one exceeded,
    /// rolling back every count this call made.
    fn count_request(
        &self,
        keys: &UsageKeys,
        limits: &[(LimitKind, Option<i64>)],
        now: f64,
    ) -> Result<(), Refusal> {
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
                    return Err(Refusal {
                        kind,
                        limit,
                        usage,
                        retry_after_ns: None,
                    });
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

    #[test]
    fn minutes_are_named_hh_mm_in_utc() {
        assert_eq!(minute_name(minute_of_day(0.0)), "00-00");
        assert_eq!(
            minute_name(minute_of_day(10.0 * 3600.0 + 5.0 * 60.0 + 59.9)),
            "10-05"
        );
        assert_eq!(minute_name(minute_of_day(86_400.0 + 61.0)), "00-01");
        assert_eq!(minute_name(minute_of_day(-1.0)), "23-59");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let refusal = |retry_after_ns| Refusal {
            kind: LimitKind::Rpm,
            limit: 1,
            usage: 1,
            retry_after_ns,
        };
        assert_eq!(refusal(Some(1)).retry_after_seconds(), Some(1));
        assert_eq!(refusal(Some(2_000_000_000)).retry_after_seconds(), Some(2));
        assert_eq!(refusal(None).retry_after_seconds(), None);
    }

    const PARITY: Algorithm = Algorithm::FixedWindow;
    const KEYS: UsageKeys = UsageKeys {
        deployment: "d1:openai/gpt-4o",
        minute: "10-05",
        day: Some("2026-11-27"),
    };

    fn limits(
        tpm: Option<i64>,
        rpm: Option<i64>,
        tpd: Option<i64>,
        rpd: Option<i64>,
    ) -> DeploymentLimits {
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
        assert!(store
            .check(&KEYS, rpm2, CheckOrder::Sync, PARITY, 0.0)
            .is_ok());
        assert!(store
            .check(&KEYS, rpm2, CheckOrder::Async, PARITY, 0.0)
            .is_ok());
        let refused = store
            .check(&KEYS, rpm2, CheckOrder::Sync, PARITY, 0.0)
            .unwrap_err();
        assert_eq!(
            refused,
            Refusal {
                kind: LimitKind::Rpm,
                limit: 2,
                usage: 3,
                retry_after_ns: None
            }
        );
        assert_eq!(store.usage(&KEYS, LimitKind::Rpm, 0.0), Some(2));
        let next_minute = UsageKeys {
            minute: "10-06",
            ..KEYS
        };
        assert!(store
            .check(&next_minute, rpm2, CheckOrder::Sync, PARITY, 1.0)
            .is_ok());
    }

    #[test]
    fn zero_is_a_limit() {
        let store = ModelRateLimits::default();
        let refused = store
            .check(
                &KEYS,
                limits(None, Some(0), None, None),
                CheckOrder::Async,
                PARITY,
                0.0,
            )
            .unwrap_err();
        assert_eq!((refused.kind, refused.usage), (LimitKind::Rpm, 1));
        // tokens: nothing used yet is no usage at all, so even a zero token limit admits.
        assert!(store
            .check(
                &KEYS,
                limits(Some(0), None, None, None),
                CheckOrder::Sync,
                PARITY,
                0.0
            )
            .is_ok());
        store.record_tokens(&KEYS, 1, 0.0);
        assert_eq!(
            store
                .check(
                    &KEYS,
                    limits(Some(0), None, None, None),
                    CheckOrder::Sync,
                    PARITY,
                    0.0
                )
                .unwrap_err()
                .kind,
            LimitKind::Tpm
        );
    }

    #[test]
    fn tokens_compare_usage_so_far() {
        let store = ModelRateLimits::default();
        let tpm100 = limits(Some(100), None, None, None);
        store.record_tokens(&KEYS, 99, 0.0);
        assert!(store
            .check(&KEYS, tpm100, CheckOrder::Sync, PARITY, 0.0)
            .is_ok());
        store.record_tokens(&KEYS, 1, 0.0);
        assert_eq!(
            store
                .check(&KEYS, tpm100, CheckOrder::Async, PARITY, 0.0)
                .unwrap_err(),
            Refusal {
                kind: LimitKind::Tpm,
                limit: 100,
                usage: 100,
                retry_after_ns: None
            }
        );
        assert_eq!(store.usage(&KEYS, LimitKind::Tpd, 0.0), Some(100));
    }

    #[test]
    fn sync_and_async_name_different_limits_for_the_same_refusal() {
        let both = limits(None, Some(0), Some(10), None);
        for (order, expected) in [
            (CheckOrder::Sync, LimitKind::Rpm),
            (CheckOrder::Async, LimitKind::Tpd),
        ] {
            let store = ModelRateLimits::default();
            store.record_tokens(&KEYS, 10, 0.0);
            assert_eq!(
                store
                    .check(&KEYS, both, order, PARITY, 0.0)
                    .unwrap_err()
                    .kind,
                expected
            );
            assert_eq!(store.usage(&KEYS, LimitKind::Rpm, 0.0).unwrap_or(0), 0);
        }
    }

    #[test]
    fn a_daily_refusal_rolls_back_the_minute_count_too() {
        for order in [CheckOrder::Sync, CheckOrder::Async] {
            let store = ModelRateLimits::default();
            let rpd1 = limits(None, Some(10), None, Some(1));
            assert!(store.check(&KEYS, rpd1, order, PARITY, 0.0).is_ok());
            let refused = store.check(&KEYS, rpd1, order, PARITY, 0.0).unwrap_err();
            assert_eq!(
                refused,
                Refusal {
                    kind: LimitKind::Rpd,
                    limit: 1,
                    usage: 2,
                    retry_after_ns: None
                }
            );
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

    const GCRA: Algorithm = Algorithm::Gcra;
    const SECOND: u64 = 1_000_000_000;

    /// `rpm` requests at `at`, as admitted or refused.
    fn burst(
        store: &ModelRateLimits,
        keys: &UsageKeys,
        rpm: i64,
        algorithm: Algorithm,
        at: f64,
    ) -> Vec<Result<(), Refusal>> {
        (0..rpm)
            .map(|_| {
                store.check(
                    keys,
                    limits(None, Some(rpm), None, None),
                    CheckOrder::Sync,
                    algorithm,
                    at,
                )
            })
            .collect()
    }

    #[test]
    fn across_a_minute_boundary_parity_admits_two_limits_and_gcra_one_then_a_steady_rate() {
        let late = UsageKeys {
            minute: "10-05",
            ..KEYS
        };
        let next = UsageKeys {
            minute: "10-06",
            ..KEYS
        };
        let parity = ModelRateLimits::default();
        assert!(burst(&parity, &late, 3, PARITY, 59.0)
            .iter()
            .all(Result::is_ok));
        assert!(burst(&parity, &next, 3, PARITY, 60.5)
            .iter()
            .all(Result::is_ok));

        let gcra = ModelRateLimits::default();
        assert!(burst(&gcra, &late, 3, GCRA, 59.0).iter().all(Result::is_ok));
        // Full: the next request fits one interval (60 s / 3) after the burst, whatever the minute.
        let refused = Refusal {
            kind: LimitKind::Rpm,
            limit: 3,
            usage: 4,
            retry_after_ns: Some(18_500_000_000),
        };
        assert_eq!(burst(&gcra, &next, 3, GCRA, 60.5), vec![Err(refused); 3]);
        assert!(gcra
            .check(
                &next,
                limits(None, Some(3), None, None),
                CheckOrder::Async,
                GCRA,
                79.0
            )
            .is_ok());
        assert_eq!(
            gcra.check(
                &next,
                limits(None, Some(3), None, None),
                CheckOrder::Sync,
                GCRA,
                79.0
            )
            .unwrap_err()
            .retry_after_ns,
            Some(20 * SECOND)
        );
    }

    #[test]
    fn gcra_tokens_are_charged_after_the_call_even_beyond_the_limit() {
        let store = ModelRateLimits::default();
        let tpm100 = limits(Some(100), None, None, None);
        assert!(store
            .check(&KEYS, tpm100, CheckOrder::Sync, GCRA, 0.0)
            .is_ok());
        store.record_tokens(&KEYS, 250, 0.0);
        // 250 tokens at 100 a minute: one token fits again once 151 have refilled (after 90.6 s).
        let refused = store
            .check(&KEYS, tpm100, CheckOrder::Async, GCRA, 0.0)
            .unwrap_err();
        assert_eq!(
            refused,
            Refusal {
                kind: LimitKind::Tpm,
                limit: 100,
                usage: 250,
                retry_after_ns: Some(90_600_000_000)
            }
        );
        assert_eq!(
            store
                .check(&KEYS, tpm100, CheckOrder::Sync, GCRA, 90.0)
                .unwrap_err()
                .usage,
            100
        );
        assert!(store
            .check(&KEYS, tpm100, CheckOrder::Sync, GCRA, 91.0)
            .is_ok());
        // The day's counter and litellm's minute counter are charged too.
        assert_eq!(store.usage(&KEYS, LimitKind::Tpd, 0.0), Some(250));
        assert_eq!(store.usage(&KEYS, LimitKind::Tpm, 0.0), Some(250));
    }

    #[test]
    fn gcra_keeps_litellms_days_and_a_daily_refusal_gives_the_bucket_its_request_back() {
        for order in [CheckOrder::Sync, CheckOrder::Async] {
            let store = ModelRateLimits::default();
            let rpd1 = limits(None, Some(2), None, Some(1));
            let day = |day| UsageKeys {
                day: Some(day),
                ..KEYS
            };
            assert!(store
                .check(&day("2026-11-27"), rpd1, order, GCRA, 0.0)
                .is_ok());
            let refused = store
                .check(&day("2026-11-27"), rpd1, order, GCRA, 0.0)
                .unwrap_err();
            assert_eq!(
                refused,
                Refusal {
                    kind: LimitKind::Rpd,
                    limit: 1,
                    usage: 2,
                    retry_after_ns: None
                }
            );
            // The refund left room for exactly one more request in the bucket.
            assert!(store
                .check(&day("2026-11-28"), rpd1, order, GCRA, 0.0)
                .is_ok());
            assert_eq!(
                store
                    .check(&day("2026-11-29"), rpd1, order, GCRA, 0.0)
                    .unwrap_err()
                    .kind,
                LimitKind::Rpm
            );
        }
    }

    #[test]
    fn gcra_admits_nothing_against_a_zero_or_negative_limit() {
        let store = ModelRateLimits::default();
        for limit in [0, -1] {
            let refused = store
                .check(
                    &KEYS,
                    limits(None, Some(limit), None, None),
                    CheckOrder::Sync,
                    GCRA,
                    0.0,
                )
                .unwrap_err();
            assert_eq!(
                (refused.kind, refused.retry_after_ns),
                (LimitKind::Rpm, Some(60 * SECOND))
            );
            let refused = store
                .check(
                    &KEYS,
                    limits(Some(limit), None, None, None),
                    CheckOrder::Sync,
                    GCRA,
                    0.0,
                )
                .unwrap_err();
            assert_eq!(refused.kind, LimitKind::Tpm);
        }
    }

    #[test]
    fn gcra_tokens_without_a_tpm_limit_charge_no_bucket() {
        let store = ModelRateLimits::default();
        assert!(store
            .check(
                &KEYS,
                limits(None, Some(5), None, None),
                CheckOrder::Sync,
                GCRA,
                0.0
            )
            .is_ok());
        store.record_tokens(&KEYS, 1_000, 0.0);
        // A tpm limit seen later starts from an empty bucket.
        assert!(store
            .check(
                &KEYS,
                limits(Some(10), Some(5), None, None),
                CheckOrder::Sync,
                GCRA,
                0.0
            )
            .is_ok());
    }

    #[test]
    fn eight_threads_sharing_a_deployment_never_admit_more_than_the_gcra_limit() {
        let store = std::sync::Arc::new(ModelRateLimits::default());
        let admitted: usize = (0..8)
            .map(|_| {
                let store = std::sync::Arc::clone(&store);
                std::thread::spawn(move || {
                    let rpm = limits(None, Some(1_000), None, None);
                    (0..1_000)
                        .filter(|_| store.check(&KEYS, rpm, CheckOrder::Sync, GCRA, 0.0).is_ok())
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .sum();
        assert_eq!(admitted, 1_000);
    }
}
