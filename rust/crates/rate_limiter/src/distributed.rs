//! Limits shared by every process through Redis: one Lua script per check (one round trip,
//! atomic on the server), windows anchored at the first hit through the key's TTL, so the
//! processes need no common clock. A Redis that does not answer within the timeout (one deadline
//! per call, connecting included) is reported, and the configured fail mode decides the request.
//! Connections are pooled; after a connection fault, calls fail fast until a reconnect is due,
//! with exponential backoff, so an outage costs one connection attempt per backoff step rather
//! than one per call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::{Client, Connection, Script};

use crate::{ConfigError, Decision, Limit, Unit};

/// Checks every limit first and charges all of them only if all admit the request.
/// KEYS: one per limit. ARGV: amount, period (ms), cost for each limit in turn.
/// Returns {1, remaining...} or {0, refusing limit (1-based), retry-after ms, remaining...}.
const CHECK: &str = r"
local used = {}
local refused, retry_ms = 0, 0
for i = 1, #KEYS do
  local amount, cost = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i])
  used[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  if refused == 0 and used[i] + cost > amount then
    refused, retry_ms = i, math.max(redis.call('PTTL', KEYS[i]), 0)
  end
end
local result = {}
if refused > 0 then
  result = {0, refused, retry_ms}
  for i = 1, #KEYS do result[#result + 1] = math.max(tonumber(ARGV[3 * i - 2]) - used[i], 0) end
  return result
end
result = {1}
for i = 1, #KEYS do
  local amount, period, cost = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local now_used = redis.call('INCRBY', KEYS[i], cost)
  if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], period) end
  result[#result + 1] = math.max(amount - now_used, 0)
end
return result
";

/// Charges (or refunds, never below zero) usage known after the response. KEYS[1], ARGV: amount, period ms.
const DEBIT: &str = r"
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if used < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') end
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return used
";

/// The wait before the first reconnect after a connection fault, doubled per further fault.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// When the next connection attempt may be made, after `faults` connection faults in a row.
#[derive(Debug, Default)]
struct Reconnect {
    faults: u32,
    not_before: Option<Instant>,
    last_error: String,
}

impl Reconnect {
    fn backoff(faults: u32) -> Duration {
        RECONNECT_FIRST
            .saturating_mul(1 << faults.saturating_sub(1).min(16))
            .min(RECONNECT_MAX)
    }

    fn fault(&mut self, now: Instant, error: &str) {
        self.faults = self.faults.saturating_add(1);
        self.not_before = Some(now + Self::backoff(self.faults));
        error.clone_into(&mut self.last_error);
    }

    /// `Err` with why, while a connection attempt is not yet due.
    fn due(&self, now: Instant) -> Result<(), String> {
        match self.not_before {
            Some(at) if now < at => Err(format!(
                "Redis unreachable, next attempt in {} ms ({} connection faults in a row; last: {})",
                (at - now).as_millis(),
                self.faults,
                self.last_error
            )),
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailMode {
    /// Admit requests while Redis is unreachable.
    Open,
    /// Refuse requests while Redis is unreachable.
    Closed,
}

/// A check's result: Redis decided it, or Redis could not be reached and the fail mode did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Decided(Decision),
    Unavailable { allowed: bool, error: String },
}

fn set_timeouts(connection: &Connection, timeout: Duration) -> redis::RedisResult<()> {
    connection.set_read_timeout(Some(timeout))?;
    connection.set_write_timeout(Some(timeout))
}

pub struct RedisLimiter {
    client: Client,
    // Idle connections; a call takes one (or opens one) and puts it back if it still works.
    idle: Mutex<Vec<Connection>>,
    limits: Vec<Limit>,
    prefix: String,
    timeout: Duration,
    fail_mode: FailMode,
    check_script: Script,
    debit_script: Script,
    errors: AtomicU64,
    connections: AtomicU64,
    reconnect: Mutex<Reconnect>,
}

impl RedisLimiter {
    pub fn new(
        url: &str,
        limits: Vec<Limit>,
        prefix: &str,
        timeout: Duration,
        fail_mode: FailMode,
    ) -> Result<Self, String> {
        if limits.is_empty() {
            return Err(ConfigError::NoLimits.to_string());
        }
        if let Some(limit) = limits
            .iter()
            .find(|limit| limit.quota.period_ns < 1_000_000)
        {
            return Err(format!(
                "{}: Redis windows are whole milliseconds; the period must be at least 1 ms",
                limit.name
            ));
        }
        let client = Client::open(url).map_err(|error| format!("invalid Redis URL: {error}"))?;
        Ok(RedisLimiter {
            client,
            idle: Mutex::new(Vec::new()),
            limits,
            prefix: prefix.to_owned(),
            timeout,
            fail_mode,
            check_script: Script::new(CHECK),
            debit_script: Script::new(DEBIT),
            errors: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            reconnect: Mutex::new(Reconnect::default()),
        })
    }

    pub fn limits(&self) -> &[Limit] {
        &self.limits
    }

    /// Redis calls that failed (timeouts, refused connections, script errors).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn redis_key(&self, key: &str, limit: &Limit) -> String {
        // One hash tag per limited key keeps its limits in one cluster slot (the script touches them together).
        format!("{}:{{{}}}:{}", self.prefix, key, limit.name)
    }

    /// Connections opened (attempts included).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    fn with_connection<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + self.timeout;
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let (mut connection, fresh) = match pooled {
            Some(connection) => (connection, false),
            None => (self.connect(deadline)?, true),
        };
        match work(&mut connection) {
            Ok(value) => {
                if fresh {
                    self.reconnect
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .faults = 0;
                    // What connecting left of the first call's deadline; later calls get a whole one.
                    if set_timeouts(&connection, self.timeout).is_err() {
                        return Ok(value);
                    }
                }
                self.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(connection);
                Ok(value)
            }
            // The connection is dropped: a late reply would be read as the next call's.
            Err(error) => Err(self.failed(error)),
        }
    }

    /// A new connection within what is left of `deadline`, if a connection attempt is due.
    fn connect(&self, deadline: Instant) -> Result<Connection, String> {
        self.reconnect
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .due(Instant::now())
            .map_err(|why| self.count_error(why))?;
        self.connections.fetch_add(1, Ordering::Relaxed);
        let left = |now: Instant| {
            deadline
                .saturating_duration_since(now)
                .max(Duration::from_millis(1))
        };
        let connection = self
            .client
            .get_connection_with_timeout(left(Instant::now()))
            .map_err(|error| self.failed(error))?;
        set_timeouts(&connection, left(Instant::now())).map_err(|error| self.failed(error))?;
        Ok(connection)
    }

    fn failed(&self, error: redis::RedisError) -> String {
        let message = error.to_string();
        if error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
        {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear(); // likely as dead
            self.reconnect
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .fault(Instant::now(), &message);
        }
        self.count_error(message)
    }

    fn count_error(&self, message: String) -> String {
        self.errors.fetch_add(1, Ordering::Relaxed);
        message
    }

    pub fn check(&self, key: &str, tokens: u64) -> Outcome {
        let mut invocation = self.check_script.prepare_invoke();
        for limit in &self.limits {
            let cost = match limit.unit {
                Unit::Requests => 1,
                Unit::Tokens => tokens,
            };
            invocation.key(self.redis_key(key, limit));
            invocation
                .arg(limit.quota.amount)
                .arg(limit.quota.period_ns / 1_000_000)
                .arg(cost);
        }
        match self.with_connection(|connection| invocation.invoke::<Vec<i64>>(connection)) {
            Ok(reply) => Outcome::Decided(self.decision(&reply)),
            Err(error) => Outcome::Unavailable {
                allowed: self.fail_mode == FailMode::Open,
                error,
            },
        }
    }

    fn decision(&self, reply: &[i64]) -> Decision {
        let allowed = reply.first() == Some(&1);
        let remaining_from = if allowed { 1 } else { 3 };
        let remaining = reply
            .get(remaining_from..)
            .unwrap_or_default()
            .iter()
            .map(|left| (*left).max(0) as u64)
            .collect();
        let refused_by = if allowed {
            None
        } else {
            reply.get(1).map(|i| (*i as usize).saturating_sub(1))
        };
        Decision {
            allowed,
            remaining,
            refused_by,
            retry_after_ns: if allowed {
                0
            } else {
                reply.get(2).copied().unwrap_or(0).max(0) as u64 * 1_000_000
            },
        }
    }

    /// Charge usage known after the response to the limits counting `unit` (or `name` only);
    /// `Ok(false)` when no limit counts it (Redis was not asked).
    pub fn record_usage(
        &self,
        key: &str,
        unit: Unit,
        amount: i64,
        name: Option<&str>,
    ) -> Result<bool, String> {
        let mut asked = false;
        for limit in self
            .limits
            .iter()
            .filter(|limit| limit.unit == unit && name.map_or(true, |name| name == limit.name))
        {
            let mut invocation = self.debit_script.prepare_invoke();
            invocation
                .key(self.redis_key(key, limit))
                .arg(amount)
                .arg(limit.quota.period_ns / 1_000_000);
            self.with_connection(|connection| invocation.invoke::<i64>(connection))?;
            asked = true;
        }
        Ok(asked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;
    use std::net::TcpListener;

    fn limiter_at(url: &str) -> RedisLimiter {
        let limit = Limit {
            name: "rpm".to_owned(),
            unit: Unit::Requests,
            quota: Quota::from_seconds(10, 60.0).unwrap(),
        };
        RedisLimiter::new(
            url,
            vec![limit],
            "t",
            Duration::from_millis(200),
            FailMode::Open,
        )
        .unwrap()
    }

    /// A loopback port nobody listens on: connections to it are refused at once.
    fn refusing_url() -> String {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("redis://127.0.0.1:{port}/0")
    }

    #[test]
    fn the_backoff_doubles_from_the_first_wait_up_to_its_cap() {
        let waits: Vec<_> = (1..=8).map(Reconnect::backoff).collect();
        assert_eq!(waits[0], RECONNECT_FIRST);
        assert_eq!(waits[1], RECONNECT_FIRST * 2);
        assert_eq!(waits[2], RECONNECT_FIRST * 4);
        assert_eq!(*waits.last().unwrap(), RECONNECT_MAX);
        assert_eq!(Reconnect::backoff(u32::MAX), RECONNECT_MAX);
    }

    #[test]
    fn after_a_connection_fault_calls_fail_fast_until_a_reconnect_is_due() {
        let limiter = limiter_at(&refusing_url());
        let outcomes: Vec<_> = (0..20).map(|_| limiter.check("k", 0)).collect();
        assert_eq!(limiter.connections(), 1);
        assert_eq!(limiter.errors(), 20);
        for outcome in &outcomes {
            assert!(matches!(
                outcome,
                Outcome::Unavailable { allowed: true, .. }
            ));
        }
        let Outcome::Unavailable { error, .. } = &outcomes[1] else {
            unreachable!()
        };
        assert!(
            error.contains("next attempt in") && error.contains("1 connection faults"),
            "{error}"
        );
        // a fault that is due again is attempted again, and the wait grows
        let due = limiter.reconnect.lock().unwrap().not_before.unwrap();
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        assert!(limiter.record_usage("k", Unit::Requests, 1, None).is_err());
        assert_eq!(limiter.connections(), 2);
        assert_eq!(limiter.reconnect.lock().unwrap().faults, 2);
    }
}
