//! One limit's state for one key, in either algorithm.
//!
//! * `Gcra` (generic cell rate algorithm, the token bucket without a refill thread): one atomic
//!   "theoretical arrival time"; admission and debit are a compare-and-swap loop, lock-free.
//!   governor implements the same algorithm, but refuses rather than debits when a cost exceeds
//!   what is left, and usage known only after a response (tokens) must be charged regardless.
//! * `FixedWindow`: litellm's own semantics, a count over a window that starts at the first hit
//!   after the previous window ended, so shadow mode can compare decisions one for one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A limit: `amount` per `period_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub amount: u64,
    pub period_ns: u64,
}

/// The longest period a limit may have: its nanoseconds, added to any clock reading, must stay
/// within `u64`, or a GCRA tolerance would saturate and admit everything.
pub const MAX_PERIOD_SECONDS: f64 = 100.0 * 365.25 * 86_400.0;

/// Why a number of seconds cannot be a limit's period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodError {
    NotPositive,
    TooLong,
}

impl std::fmt::Display for PeriodError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeriodError::NotPositive => {
                write!(f, "the period must be a positive number of seconds")
            }
            PeriodError::TooLong => write!(
                f,
                "the period must be at most {MAX_PERIOD_SECONDS:.0} seconds (100 years)"
            ),
        }
    }
}

impl Quota {
    /// `amount` per `seconds`.
    pub fn from_seconds(amount: u64, seconds: f64) -> Result<Quota, PeriodError> {
        if !(seconds.is_finite() && seconds > 0.0) {
            return Err(PeriodError::NotPositive);
        }
        if seconds > MAX_PERIOD_SECONDS {
            return Err(PeriodError::TooLong);
        }
        // At least one nanosecond: a positive period below it still means a period.
        let period_ns = ((seconds * 1e9) as u64).max(1);
        Ok(Quota { amount, period_ns })
    }
}

/// What one limit says about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// What is left in this limit after the decision.
    pub remaining: u64,
    /// Nanoseconds until the request could be admitted (0 when allowed).
    pub retry_after_ns: u64,
}

pub enum WindowState {
    Gcra(AtomicU64),
    FixedWindow(Mutex<(u64, u64)>),
}

impl WindowState {
    pub fn gcra() -> Self {
        WindowState::Gcra(AtomicU64::new(0))
    }

    pub fn fixed_window() -> Self {
        WindowState::FixedWindow(Mutex::new((0, 0)))
    }

    /// Admit `cost` if the limit allows it, charging it; otherwise change nothing.
    pub fn admit(&self, quota: Quota, now: u64, cost: u64) -> Verdict {
        match self {
            WindowState::Gcra(tat) => gcra_admit(tat, quota, now, cost),
            WindowState::FixedWindow(state) => {
                let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                let (verdict, next) = fixed_window_decide(*state, quota, now, cost);
                *state = next;
                verdict
            }
        }
    }

    /// What `admit` would decide now, charging nothing (a limit on usage charged only after the
    /// fact asks whether one more unit fits).
    pub fn peek(&self, quota: Quota, now: u64, cost: u64) -> Verdict {
        match self {
            WindowState::Gcra(tat) => {
                let current = tat.load(Ordering::Acquire);
                gcra_decide(current, quota, now, cost)
                    .map_or_else(|refused| refused, |next| gcra_admitted(next, quota, now))
            }
            WindowState::FixedWindow(state) => {
                let state = state.lock().unwrap_or_else(|e| e.into_inner());
                fixed_window_decide(*state, quota, now, cost).0
            }
        }
    }

    /// Charge `cost` whether or not it fits (usage known after the fact), or refund a negative one.
    pub fn debit(&self, quota: Quota, now: u64, cost: i64) {
        match self {
            WindowState::Gcra(tat) => {
                let interval = emission_interval(quota);
                let _ = tat.fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                    let base = current.max(now);
                    Some(if cost >= 0 {
                        base.saturating_add(interval.saturating_mul(cost as u64))
                    } else {
                        base.saturating_sub(interval.saturating_mul(cost.unsigned_abs()))
                            .max(now)
                    })
                });
            }
            WindowState::FixedWindow(state) => {
                let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                let (start, used) = current_window(*state, quota, now);
                let used = if cost >= 0 {
                    used.saturating_add(cost as u64)
                } else {
                    used.saturating_sub(cost.unsigned_abs())
                };
                *state = (start, used);
            }
        }
    }

    /// What is left right now, without charging anything.
    pub fn remaining(&self, quota: Quota, now: u64) -> u64 {
        match self {
            WindowState::Gcra(tat) => gcra_remaining(tat.load(Ordering::Acquire), quota, now),
            WindowState::FixedWindow(state) => {
                let state = state.lock().unwrap_or_else(|e| e.into_inner());
                quota
                    .amount
                    .saturating_sub(current_window(*state, quota, now).1)
            }
        }
    }

    /// What is charged and not yet refilled (or counted in the current window): beyond the
    /// limit after a debit that did not fit.
    pub fn used(&self, quota: Quota, now: u64) -> u64 {
        match self {
            WindowState::Gcra(tat) => tat
                .load(Ordering::Acquire)
                .saturating_sub(now)
                .div_ceil(emission_interval(quota)),
            WindowState::FixedWindow(state) => {
                let state = state.lock().unwrap_or_else(|e| e.into_inner());
                current_window(*state, quota, now).1
            }
        }
    }
}

/// A fixed window's decision on `cost`, and its state afterwards.
fn fixed_window_decide(
    state: (u64, u64),
    quota: Quota,
    now: u64,
    cost: u64,
) -> (Verdict, (u64, u64)) {
    let (start, used) = current_window(state, quota, now);
    if used.saturating_add(cost) <= quota.amount {
        (
            Verdict {
                allowed: true,
                remaining: quota.amount - used - cost,
                retry_after_ns: 0,
            },
            (start, used + cost),
        )
    } else {
        let retry_after_ns = (start + quota.period_ns).saturating_sub(now);
        (
            Verdict {
                allowed: false,
                remaining: quota.amount.saturating_sub(used),
                retry_after_ns,
            },
            (start, used),
        )
    }
}

/// The window `now` falls in: the stored one while it lasts, else a fresh one starting now.
fn current_window((start, used): (u64, u64), quota: Quota, now: u64) -> (u64, u64) {
    if used == 0 || now >= start.saturating_add(quota.period_ns) {
        (now, 0)
    } else {
        (start, used)
    }
}

fn emission_interval(quota: Quota) -> u64 {
    (quota.period_ns / quota.amount.max(1)).max(1)
}

/// GCRA with burst = `amount`: a request of `cost` is admitted when the theoretical arrival time
/// after it stays within one period of now.
fn gcra_admit(tat: &AtomicU64, quota: Quota, now: u64, cost: u64) -> Verdict {
    let mut current = tat.load(Ordering::Acquire);
    loop {
        let next = match gcra_decide(current, quota, now, cost) {
            Ok(next) => next,
            Err(refused) => return refused,
        };
        match tat.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return gcra_admitted(next, quota, now),
            Err(actual) => current = actual,
        }
    }
}

/// The theoretical arrival time after admitting `cost` at `current`, or the refusal.
fn gcra_decide(current: u64, quota: Quota, now: u64, cost: u64) -> Result<u64, Verdict> {
    if quota.amount == 0 && cost > 0 {
        // Nothing is ever admitted: a period, as a fixed window would say, rather than 0.
        return Err(Verdict {
            allowed: false,
            remaining: 0,
            retry_after_ns: quota.period_ns,
        });
    }
    let tolerance = quota.period_ns;
    let next = current
        .max(now)
        .saturating_add(emission_interval(quota).saturating_mul(cost));
    if next > now.saturating_add(tolerance) {
        let retry_after_ns = next - now.saturating_add(tolerance);
        return Err(Verdict {
            allowed: false,
            remaining: gcra_remaining(current, quota, now),
            retry_after_ns,
        });
    }
    Ok(next)
}

fn gcra_admitted(next: u64, quota: Quota, now: u64) -> Verdict {
    Verdict {
        allowed: true,
        remaining: gcra_remaining(next, quota, now),
        retry_after_ns: 0,
    }
}

fn gcra_remaining(tat: u64, quota: Quota, now: u64) -> u64 {
    let used_ns = tat.saturating_sub(now);
    let free_ns = quota.period_ns.saturating_sub(used_ns);
    (free_ns / emission_interval(quota)).min(quota.amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn quota(amount: u64) -> Quota {
        Quota {
            amount,
            period_ns: 60 * SECOND,
        }
    }

    #[test]
    fn fixed_window_admits_up_to_the_limit_then_waits_for_the_window() {
        let state = WindowState::fixed_window();
        for remaining in (0..3).rev() {
            assert_eq!(
                state.admit(quota(3), 10 * SECOND, 1),
                Verdict {
                    allowed: true,
                    remaining,
                    retry_after_ns: 0
                }
            );
        }
        let refused = state.admit(quota(3), 20 * SECOND, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_ns, 50 * SECOND); // the window started at the first hit
        assert!(state.admit(quota(3), 70 * SECOND, 1).allowed);
    }

    #[test]
    fn gcra_admits_a_burst_of_the_limit_then_one_per_interval() {
        let state = WindowState::gcra();
        for _ in 0..60 {
            assert!(state.admit(quota(60), 0, 1).allowed);
        }
        assert!(!state.admit(quota(60), 0, 1).allowed);
        assert!(state.admit(quota(60), SECOND, 1).allowed); // one emission interval later
        assert!(!state.admit(quota(60), SECOND, 1).allowed);
    }

    #[test]
    fn a_debit_is_charged_even_beyond_the_limit() {
        for state in [WindowState::gcra(), WindowState::fixed_window()] {
            assert!(state.admit(quota(100), 0, 10).allowed);
            state.debit(quota(100), 0, 500);
            assert_eq!(state.remaining(quota(100), 0), 0);
            assert!(!state.admit(quota(100), 0, 1).allowed);
        }
    }

    #[test]
    fn a_refund_gives_capacity_back() {
        for state in [WindowState::gcra(), WindowState::fixed_window()] {
            assert!(state.admit(quota(10), 0, 10).allowed);
            state.debit(quota(10), 0, -4);
            assert_eq!(state.remaining(quota(10), 0), 4);
        }
    }

    #[test]
    fn a_zero_limit_admits_nothing_and_says_retry_after_a_period() {
        for state in [WindowState::gcra(), WindowState::fixed_window()] {
            let refused = state.admit(quota(0), 0, 1);
            assert!(!refused.allowed);
            assert_eq!(refused.retry_after_ns, 60 * SECOND);
        }
    }

    #[test]
    fn peek_decides_like_admit_without_charging() {
        for state in [WindowState::gcra(), WindowState::fixed_window()] {
            assert!(state.admit(quota(2), 0, 1).allowed);
            for _ in 0..3 {
                assert_eq!(
                    state.peek(quota(2), 0, 1),
                    Verdict {
                        allowed: true,
                        remaining: 0,
                        retry_after_ns: 0
                    }
                );
            }
            assert!(state.admit(quota(2), 0, 1).allowed);
            let refused = state.peek(quota(2), SECOND, 1);
            assert_eq!(refused, state.admit(quota(2), SECOND, 1));
            assert!(!refused.allowed);
        }
    }

    #[test]
    fn used_counts_what_is_outstanding_even_beyond_the_limit() {
        let state = WindowState::gcra();
        state.debit(quota(60), 0, 150);
        assert_eq!(state.used(quota(60), 0), 150);
        assert_eq!(state.used(quota(60), 30 * SECOND), 120); // one a second refilled
        assert_eq!(state.used(quota(60), 150 * SECOND), 0);
        let window = WindowState::fixed_window();
        window.debit(quota(60), 0, 150);
        assert_eq!(window.used(quota(60), 30 * SECOND), 150);
        assert_eq!(window.used(quota(60), 60 * SECOND), 0);
    }

    #[test]
    fn a_period_is_positive_and_at_most_a_century() {
        assert_eq!(
            Quota::from_seconds(5, 60.0),
            Ok(Quota {
                amount: 5,
                period_ns: 60 * SECOND
            })
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(Quota::from_seconds(1, bad), Err(PeriodError::NotPositive));
        }
        assert_eq!(Quota::from_seconds(1, 2e10), Err(PeriodError::TooLong));
        assert!(Quota::from_seconds(1, MAX_PERIOD_SECONDS).is_ok());
    }

    #[test]
    fn gcra_refuses_beyond_the_limit_at_the_longest_period() {
        let quota = Quota::from_seconds(1, MAX_PERIOD_SECONDS).unwrap();
        let state = WindowState::gcra();
        assert!(state.admit(quota, SECOND, 1).allowed);
        assert!(!state.admit(quota, 2 * SECOND, 1).allowed);
    }
}
