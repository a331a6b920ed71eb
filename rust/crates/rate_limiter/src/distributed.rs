//! Limits shared by every process through Redis: one Lua script per check (one round trip,
//! atomic on the server), windows anchored at the first hit through the key's TTL, so the
//! processes need no common clock. A Redis that does not answer within the timeout is reported,
//! and the configured fail mode decides the request; the connection is re-established on the
//! next call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

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

    fn with_connection<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, String> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => self.connect().map_err(|error| self.failed(error))?,
        };
        match work(&mut connection) {
            Ok(value) => {
                self.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(connection);
                Ok(value)
            }
            Err(error) => Err(self.failed(error)), // the connection is dropped; the next call reconnects
        }
    }

    fn connect(&self) -> redis::RedisResult<Connection> {
        let connection = self.client.get_connection_with_timeout(self.timeout)?;
        connection.set_read_timeout(Some(self.timeout))?;
        connection.set_write_timeout(Some(self.timeout))?;
        Ok(connection)
    }

    fn failed(&self, error: redis::RedisError) -> String {
        self.errors.fetch_add(1, Ordering::Relaxed);
        error.to_string()
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

    /// Charge usage known after the response to the limits counting `unit` (or `name` only).
    pub fn record_usage(
        &self,
        key: &str,
        unit: Unit,
        amount: i64,
        name: Option<&str>,
    ) -> Result<(), String> {
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
        }
        Ok(())
    }
}
