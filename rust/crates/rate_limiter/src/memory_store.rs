//! The memory-only keyspace of litellm's proxy rate limiter (`parallel_request_limiter_v3`).
//!
//! litellm 1.110 keeps the v3 limiter's windows, counters and parallel-request gauges in a native
//! `NativeRateLimits` store; without Redis its increments still complete on litellm's runtime
//! thread, so every `await` of one is a thread hop. This store holds the same values with the
//! same expiry rules and answers synchronously:
//! - a value is a number (int or float), a text, or slots (name -> float);
//! - a TTL is float seconds from now; none means no expiry; zero or less is expired at once;
//! - `increment` creates a missing (or expired) entry at `amount`, adds to a number (int + int
//!   stays int, anything with a float is a float), refreshes the expiry only when given a TTL,
//!   and leaves a text or slots entry untouched (answering nothing), as litellm's does.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::{Clock, MonotonicClock};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn plus(self, other: Number) -> Option<Number> {
        Some(match (self, other) {
            (Number::Int(a), Number::Int(b)) => Number::Int(a.checked_add(b)?),
            (a, b) => Number::Float(a.as_f64() + b.as_f64()),
        })
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(value) => value as f64,
            Number::Float(value) => value,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Number(Number),
    Text(String),
    Slots(Vec<(String, f64)>),
}

#[derive(Debug, PartialEq, Eq)]
pub enum IncrementError {
    /// An int sum beyond 64 bits: litellm's store cannot hold it either.
    Overflow,
}

/// An entry's name: its descriptor (key, value) and what it counts (`window`, `requests`,
/// `tokens`, `max_parallel_requests`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntryKey {
    pub descriptor_key: String,
    pub descriptor_value: String,
    pub suffix: String,
}

struct Stored {
    value: Value,
    expires_at: Option<u64>,
}

// Expired entries are dropped when read, and all of them every this many writes, so keys that are
// never read again do not pile up.
const SWEEP_EVERY_WRITES: u64 = 4096;

pub struct MemoryStore<C: Clock = MonotonicClock> {
    clock: C,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<EntryKey, Stored>,
    writes: u64,
}

impl Default for MemoryStore<MonotonicClock> {
    fn default() -> Self {
        MemoryStore::with_clock(MonotonicClock::default())
    }
}

fn expiry(now: u64, ttl_seconds: f64) -> u64 {
    if ttl_seconds <= 0.0 {
        return now;
    }
    now.saturating_add((ttl_seconds * 1e9) as u64)
}

impl Entries {
    fn live(&mut self, key: &EntryKey, now: u64) -> Option<&mut Stored> {
        let expired =
            matches!(self.map.get(key), Some(Stored { expires_at: Some(at), .. }) if *at <= now);
        if expired {
            self.map.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    fn wrote(&mut self, now: u64) {
        self.writes += 1;
        if self.writes % SWEEP_EVERY_WRITES == 0 {
            self.map
                .retain(|_, stored| stored.expires_at.map_or(true, |at| at > now));
        }
    }
}

impl<C: Clock> MemoryStore<C> {
    pub fn with_clock(clock: C) -> Self {
        MemoryStore {
            clock,
            entries: Mutex::new(Entries::default()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves whole entries behind (every write is one insert).
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &EntryKey) -> Option<Value> {
        let now = self.clock.now();
        self.entries()
            .live(key, now)
            .map(|stored| stored.value.clone())
    }

    pub fn set(&self, key: EntryKey, value: Value, ttl_seconds: Option<f64>) {
        let now = self.clock.now();
        let mut entries = self.entries();
        let expires_at = ttl_seconds.map(|ttl| expiry(now, ttl));
        entries.map.insert(key, Stored { value, expires_at });
        entries.wrote(now);
    }

    /// The number after adding `amount`, or `None` when the entry holds no number.
    pub fn increment(
        &self,
        key: &EntryKey,
        amount: Number,
        ttl_seconds: Option<f64>,
    ) -> Result<Option<Number>, IncrementError> {
        let now = self.clock.now();
        let mut entries = self.entries();
        let new_expiry = ttl_seconds.map(|ttl| expiry(now, ttl));
        let total = match entries.live(key, now) {
            None => {
                entries.map.insert(
                    key.clone(),
                    Stored {
                        value: Value::Number(amount),
                        expires_at: new_expiry,
                    },
                );
                Some(amount)
            }
            Some(Stored {
                value: Value::Number(current),
                expires_at,
            }) => {
                let total = current.plus(amount).ok_or(IncrementError::Overflow)?;
                *current = total;
                if new_expiry.is_some() {
                    *expires_at = new_expiry;
                }
                Some(total)
            }
            Some(_) => None,
        };
        entries.wrote(now);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const SECOND: u64 = 1_000_000_000;

    fn key(suffix: &str) -> EntryKey {
        EntryKey {
            descriptor_key: "api_key".into(),
            descriptor_value: "k1".into(),
            suffix: suffix.into(),
        }
    }

    fn store() -> (MemoryStore<ManualClock>, ManualClock) {
        let clock = ManualClock::default();
        (MemoryStore::with_clock(clock.clone()), clock)
    }

    #[test]
    fn a_missing_entry_is_created_at_the_amount() {
        let (store, _) = store();
        assert_eq!(
            store.increment(&key("requests"), Number::Int(1), Some(60.0)),
            Ok(Some(Number::Int(1)))
        );
        assert_eq!(
            store.get(&key("requests")),
            Some(Value::Number(Number::Int(1)))
        );
        assert_eq!(store.get(&key("tokens")), None);
    }

    #[test]
    fn ints_stay_ints_until_a_float_joins() {
        let (store, _) = store();
        store
            .increment(&key("tokens"), Number::Int(3), None)
            .unwrap();
        assert_eq!(
            store.increment(&key("tokens"), Number::Int(2), None),
            Ok(Some(Number::Int(5)))
        );
        assert_eq!(
            store.increment(&key("tokens"), Number::Float(0.5), None),
            Ok(Some(Number::Float(5.5)))
        );
        store.set(key("window"), Value::Number(Number::Float(1.0)), None);
        assert_eq!(
            store.increment(&key("window"), Number::Int(1), None),
            Ok(Some(Number::Float(2.0)))
        );
    }

    #[test]
    fn text_and_slots_are_not_incremented() {
        let (store, _) = store();
        store.set(key("window"), Value::Text("7".into()), None);
        assert_eq!(
            store.increment(&key("window"), Number::Int(1), None),
            Ok(None)
        );
        assert_eq!(store.get(&key("window")), Some(Value::Text("7".into())));
        let slots = Value::Slots(vec![("slot-a".into(), 12.5)]);
        store.set(key("max_parallel_requests"), slots.clone(), Some(60.0));
        assert_eq!(
            store.increment(&key("max_parallel_requests"), Number::Int(1), None),
            Ok(None)
        );
        assert_eq!(store.get(&key("max_parallel_requests")), Some(slots));
    }

    #[test]
    fn entries_expire_after_their_ttl() {
        let (store, clock) = store();
        store.set(key("window"), Value::Text("100".into()), Some(1.5));
        store.set(key("requests"), Value::Number(Number::Int(1)), None);
        clock.advance(SECOND);
        assert!(store.get(&key("window")).is_some());
        clock.advance(SECOND);
        assert_eq!(store.get(&key("window")), None);
        assert!(store.get(&key("requests")).is_some(), "no TTL: no expiry");
    }

    #[test]
    fn a_ttl_of_zero_or_less_is_expired_at_once() {
        let (store, _) = store();
        store.set(key("a"), Value::Number(Number::Int(1)), Some(0.0));
        store.set(key("b"), Value::Number(Number::Int(1)), Some(-1.0));
        assert_eq!((store.get(&key("a")), store.get(&key("b"))), (None, None));
    }

    #[test]
    fn an_increment_refreshes_the_expiry_only_when_given_a_ttl() {
        let (store, clock) = store();
        store
            .increment(&key("requests"), Number::Int(1), Some(1.0))
            .unwrap();
        store
            .increment(&key("tokens"), Number::Int(1), Some(1.0))
            .unwrap();
        clock.advance(SECOND / 2);
        store
            .increment(&key("requests"), Number::Int(1), Some(5.0))
            .unwrap();
        store
            .increment(&key("tokens"), Number::Int(1), None)
            .unwrap();
        clock.advance(SECOND);
        assert_eq!(
            store.get(&key("requests")),
            Some(Value::Number(Number::Int(2)))
        );
        assert_eq!(
            store.get(&key("tokens")),
            None,
            "the first TTL still applies"
        );
    }

    #[test]
    fn an_expired_entry_is_incremented_from_scratch() {
        let (store, clock) = store();
        store
            .increment(&key("requests"), Number::Int(5), Some(1.0))
            .unwrap();
        clock.advance(2 * SECOND);
        assert_eq!(
            store.increment(&key("requests"), Number::Int(1), None),
            Ok(Some(Number::Int(1)))
        );
    }

    #[test]
    fn an_int_overflow_is_refused_and_leaves_the_entry() {
        let (store, _) = store();
        store.set(key("requests"), Value::Number(Number::Int(i64::MAX)), None);
        assert_eq!(
            store.increment(&key("requests"), Number::Int(1), None),
            Err(IncrementError::Overflow)
        );
        assert_eq!(
            store.get(&key("requests")),
            Some(Value::Number(Number::Int(i64::MAX)))
        );
    }

    #[test]
    fn expired_entries_are_swept_without_being_read() {
        let (store, clock) = store();
        for index in 0..100 {
            store.set(
                EntryKey {
                    suffix: format!("s{index}"),
                    ..key("")
                },
                Value::Number(Number::Int(1)),
                Some(1.0),
            );
        }
        clock.advance(2 * SECOND);
        for _ in 0..SWEEP_EVERY_WRITES {
            store
                .increment(&key("requests"), Number::Int(1), None)
                .unwrap();
        }
        assert_eq!(store.entries().map.len(), 1);
    }
}
