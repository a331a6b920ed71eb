//! usage-based-routing-v2's counters kept in Rust, as a mirror of litellm's `InMemoryCache`.
//!
//! `LowestTPMLoggingHandler_v2` keeps its per-minute counters (`{id}:{model}:tpm|rpm:{HH-MM}`) in
//! the router's in-memory cache and reads all of them on every pick. The glue keeps this mirror of
//! the cache's entries (value and expiry) up to date write by write, and a pick reads the mirror
//! with `InMemoryCache.get_cache`'s semantics. Whatever the mirror cannot answer exactly (an
//! expired key, which litellm's read removes, or a value that is not a plain number) is reported,
//! and the caller reads litellm's cache in place instead.
//!
//! least-busy's in-flight counters (`{group}_request_count:{id}`) live in the same cache as plain
//! numbers, so its picks read them from the same mirror (`InFlightPlan`).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::{first_seen_last_wins, Fnv1a, Limits, UsageCandidate};

/// A cache value as the usage pick reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A Python `int` or `float`.
    Number(f64),
    /// `None`: read as no counter.
    Null,
    /// Anything else (a string `get_cache` would JSON-decode, a bool, a dict ...).
    Other,
}

/// One cache entry: its value and its `ttl_dict` expiry (`None`: no expiry; `Some(NAN)`: an
/// expiry that is not a plain number).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    pub value: Value,
    pub expiry: Option<f64>,
}

impl Entry {
    /// `get_cache`'s read of this entry at `now`.
    fn read(&self, now: f64) -> Read {
        if let Some(expiry) = self.expiry {
            if expiry.is_nan() || now > expiry {
                return Read::Unusable;
            }
        }
        match self.value {
            Value::Number(value) => Read::Number(value),
            Value::Null => Read::Absent,
            Value::Other => Read::Unusable,
        }
    }
}

/// A read of one key at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Read {
    Absent,
    Number(f64),
    /// litellm's read would do more than return a number: remove an expired key, decode a string.
    Unusable,
}

/// The cache's entries by key.
#[derive(Debug, Default)]
pub struct CounterMirror {
    entries: HashMap<String, Entry, BuildHasherDefault<Fnv1a>>,
    /// Moves on every change, so a plan can keep its last read while nothing changed.
    generation: u64,
}

impl CounterMirror {
    /// The entry for `key` as the cache now holds it (`None`: the cache lacks the key).
    pub fn set(&mut self, key: &str, entry: Option<Entry>) {
        self.generation += 1;
        match entry {
            Some(entry) => {
                self.entries.insert(key.to_owned(), entry);
            }
            None => {
                self.entries.remove(key);
            }
        }
    }

    pub fn clear(&mut self) {
        self.generation += 1;
        self.entries.clear();
    }

    /// `InMemoryCache.get_cache(key)` at `now`: an entry past its expiry (`now > expiry`) is one
    /// litellm's read removes, so it is `Unusable` here, as is an expiry that is not a number.
    pub fn read(&self, key: &str, now: f64) -> Read {
        self.read_entry(key, now).0
    }

    /// `read`, with the expiry of the entry read (`INFINITY`: none).
    fn read_entry(&self, key: &str, now: f64) -> (Read, f64) {
        let Some(entry) = self.entries.get(key) else {
            return (Read::Absent, f64::INFINITY);
        };
        (entry.read(now), entry.expiry.unwrap_or(f64::INFINITY))
    }
}

/// A read of some of the mirror's keys (`get_cache`'s value of each, `None`: absent), kept with
/// what was made of it while the mirror has not changed and none of the entries read has expired.
#[derive(Debug)]
struct LastRead<T> {
    generation: u64,
    /// The earliest expiry among the entries read.
    expires: f64,
    made: T,
}

/// `keys` read from `mirror` at `now` and `make`'s result of the values, reusing `last` while it
/// holds; `None` when some key (of any, as litellm's picks read them all) is `Unusable`.
fn kept_read<'a, 'k, T>(
    last: &'a mut Option<LastRead<T>>,
    mirror: &CounterMirror,
    now: f64,
    keys: impl Iterator<Item = &'k str>,
    make: impl FnOnce(Vec<Option<f64>>) -> T,
) -> Option<&'a T> {
    let fresh =
        matches!(last, Some(read) if read.generation == mirror.generation && now <= read.expires);
    if !fresh {
        *last = None;
        let mut expires = f64::INFINITY;
        let mut values = Vec::with_capacity(keys.size_hint().0);
        for key in keys {
            let (read, expiry) = mirror.read_entry(key, now);
            values.push(usable(read)?);
            expires = expires.min(expiry);
        }
        *last = Some(LastRead {
            generation: mirror.generation,
            expires,
            made: make(values),
        });
    }
    last.as_ref().map(|read| &read.made)
}

/// One pick's fixed inputs for a candidate list at one minute: each candidate's id and counter
/// keys, and the limits of the candidates litellm's usage dicts keep (`first_seen_last_wins`).
#[derive(Debug)]
pub struct UsagePlan {
    /// (`{id}:{model}:tpm:{minute}`, `{id}:{model}:rpm:{minute}`) per candidate, in order.
    keys: Vec<(String, String)>,
    kept: Vec<usize>,
    limits: Vec<Limits>,
    last: Option<LastRead<Vec<UsageCandidate>>>,
}

impl UsagePlan {
    /// `candidates`: (id, tpm key, rpm key, limits) per candidate.
    pub fn new(candidates: Vec<(&str, String, String, Limits)>) -> Self {
        let kept = first_seen_last_wins(candidates.iter().map(|(id, ..)| *id));
        let limits = kept.iter().map(|&index| candidates[index].3).collect();
        let keys = candidates
            .into_iter()
            .map(|(_, tpm, rpm, _)| (tpm, rpm))
            .collect();
        Self {
            keys,
            kept,
            limits,
            last: None,
        }
    }

    /// The candidate index behind each of `mirrored_usage`'s entries.
    pub fn kept(&self) -> &[usize] {
        &self.kept
    }

    /// The kept candidates' usage as litellm's pick reads it from the cache, or `None` when some
    /// counter (of any candidate, as litellm reads them all) is `Unusable`. The last read is
    /// reused while the mirror has not changed and none of its entries has expired.
    pub fn mirrored_usage(
        &mut self,
        mirror: &CounterMirror,
        now: f64,
    ) -> Option<&[UsageCandidate]> {
        let Self {
            keys,
            kept,
            limits,
            last,
        } = self;
        let read = keys
            .iter()
            .flat_map(|(tpm, rpm)| [tpm.as_str(), rpm.as_str()]);
        let usage = kept_read(last, mirror, now, read, |values| {
            // (tpm, rpm) of candidate `index` at `2 * index`, `2 * index + 1`
            kept.iter()
                .zip(limits.iter())
                .map(|(&index, &limits)| UsageCandidate {
                    tpm: values[2 * index].unwrap_or(0.0),
                    rpm: values[2 * index + 1],
                    limits,
                })
                .collect()
        })?;
        Some(usage.as_slice())
    }
}

/// least-busy's in-flight counters of one candidate list (`{group}_request_count:{id}`, written
/// by `LeastBusyLoggingHandler` through the router cache's `increment_cache` / `set_cache`), read
/// from the same mirror as the usage counters.
#[derive(Debug)]
pub struct InFlightPlan {
    keys: Vec<String>,
    last: Option<LastRead<Vec<Option<f64>>>>,
}

impl InFlightPlan {
    pub fn new(keys: Vec<String>) -> Self {
        Self { keys, last: None }
    }

    /// Each candidate's counter as `InMemoryCache.get_cache` returns it (`None`: absent), or
    /// `None` when some counter is `Unusable`. Reused as `UsagePlan::mirrored_usage`'s read is.
    pub fn mirrored_counts(&mut self, mirror: &CounterMirror, now: f64) -> Option<&[Option<f64>]> {
        kept_read(
            &mut self.last,
            mirror,
            now,
            self.keys.iter().map(String::as_str),
            |values| values,
        )
        .map(Vec::as_slice)
    }
}

fn usable(read: Read) -> Option<Option<f64>> {
    match read {
        Read::Absent => Some(None),
        Read::Number(value) => Some(Some(value)),
        Read::Unusable => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lowest_usage;

    fn number(value: f64, expiry: Option<f64>) -> Option<Entry> {
        Some(Entry {
            value: Value::Number(value),
            expiry,
        })
    }

    #[test]
    fn reads_follow_get_cache() {
        let mut mirror = CounterMirror::default();
        mirror.set("n", number(3.0, Some(10.0)));
        mirror.set(
            "null",
            Some(Entry {
                value: Value::Null,
                expiry: None,
            }),
        );
        mirror.set(
            "text",
            Some(Entry {
                value: Value::Other,
                expiry: None,
            }),
        );
        assert_eq!(mirror.read("n", 10.0), Read::Number(3.0)); // not yet past its expiry
        assert_eq!(mirror.read("n", 10.5), Read::Unusable); // litellm's read removes it
        assert_eq!(mirror.read("null", 0.0), Read::Absent);
        assert_eq!(mirror.read("text", 0.0), Read::Unusable);
        assert_eq!(mirror.read("missing", 0.0), Read::Absent);
        mirror.set("n", None);
        assert_eq!(mirror.read("n", 0.0), Read::Absent);
        mirror.clear();
        assert_eq!(mirror.read("null", 0.0), Read::Absent);
    }

    #[test]
    fn a_non_number_expiry_is_unusable() {
        let mut mirror = CounterMirror::default();
        mirror.set("n", number(1.0, Some(f64::NAN)));
        assert_eq!(mirror.read("n", 0.0), Read::Unusable);
    }

    fn plan(ids: &[&'static str], rpm_limit: f64) -> UsagePlan {
        UsagePlan::new(
            ids.iter()
                .map(|id| {
                    (
                        *id,
                        format!("{id}:m:tpm:10-00"),
                        format!("{id}:m:rpm:10-00"),
                        Limits {
                            tpm: f64::INFINITY,
                            rpm: rpm_limit,
                        },
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn mirrored_usage_feeds_the_usage_pick() {
        let mut mirror = CounterMirror::default();
        mirror.set("a:m:tpm:10-00", number(5.0, None));
        mirror.set("b:m:tpm:10-00", number(2.0, None));
        mirror.set("b:m:rpm:10-00", number(2.0, None));
        let mut plan = plan(&["a", "b", "c"], 3.0);
        let usage = plan.mirrored_usage(&mirror, 0.0).unwrap().to_vec();
        assert_eq!(usage[0].tpm, 5.0);
        assert_eq!(usage[1].rpm, Some(2.0));
        assert_eq!(usage[2].rpm, None);
        // b is at its rpm limit (2 + 1 >= 3); c has used nothing.
        assert_eq!(lowest_usage(&usage, 0.0), vec![2]);
    }

    #[test]
    fn the_last_read_is_kept_only_while_nothing_changed_or_expired() {
        let mut mirror = CounterMirror::default();
        mirror.set("a:m:tpm:10-00", number(5.0, Some(100.0)));
        let mut plan = plan(&["a"], f64::INFINITY);
        assert_eq!(plan.mirrored_usage(&mirror, 0.0).unwrap()[0].tpm, 5.0);
        mirror.set("a:m:tpm:10-00", number(6.0, Some(100.0)));
        assert_eq!(plan.mirrored_usage(&mirror, 1.0).unwrap()[0].tpm, 6.0);
        assert_eq!(plan.mirrored_usage(&mirror, 100.0).unwrap()[0].tpm, 6.0);
        assert!(plan.mirrored_usage(&mirror, 100.5).is_none()); // expired since the last read
    }

    #[test]
    fn duplicate_ids_keep_the_last_candidate_at_the_first_position() {
        let plan = plan(&["a", "b", "a"], f64::INFINITY);
        assert_eq!(plan.kept(), &[2, 1]);
    }

    #[test]
    fn in_flight_counts_follow_the_mirror_and_its_expiry() {
        let mut mirror = CounterMirror::default();
        mirror.set("g_request_count:a", number(2.0, Some(100.0)));
        let mut plan =
            InFlightPlan::new(vec!["g_request_count:a".into(), "g_request_count:b".into()]);
        assert_eq!(
            plan.mirrored_counts(&mirror, 0.0).unwrap(),
            &[Some(2.0), None]
        );
        mirror.set("g_request_count:b", number(1.0, None));
        assert_eq!(
            plan.mirrored_counts(&mirror, 1.0).unwrap(),
            &[Some(2.0), Some(1.0)]
        );
        assert!(plan.mirrored_counts(&mirror, 100.5).is_none()); // litellm's read removes a
        mirror.set(
            "g_request_count:a",
            Some(Entry {
                value: Value::Other,
                expiry: None,
            }),
        );
        assert!(plan.mirrored_counts(&mirror, 1.0).is_none());
    }

    #[test]
    fn any_unusable_counter_declines_the_whole_read() {
        let mut mirror = CounterMirror::default();
        mirror.set("b:m:rpm:10-00", number(1.0, Some(1.0)));
        let mut plan = plan(&["a", "b"], f64::INFINITY);
        assert!(plan.mirrored_usage(&mirror, 0.5).is_some());
        assert!(plan.mirrored_usage(&mirror, 2.0).is_none());
    }
}
