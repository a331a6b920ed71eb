"""`litellm_rust.RateLimiter`: keyed rate limits served by Rust, usable on their own (for instance
in a litellm custom hook).

    limiter = RateLimiter(rpm=60, tpm=100_000, max_parallel_requests=8)
    result = limiter.check(api_key, tokens=estimated_prompt_tokens)
    if not result.allowed:
        raise HTTPException(429, headers={"retry-after": str(math.ceil(result.retry_after))})
    ...
    limiter.record_usage(api_key, tokens=actual_tokens - estimated_prompt_tokens)

Two algorithms, side by side:

* ``fixed_window`` (default) counts requests and tokens over a window that starts at the first hit
  after the previous window ended, which is how litellm's own limiters count;
* ``gcra`` is the smoother token bucket (generic cell rate algorithm): a burst of the limit, then a
  steady rate of ``limit / period``, so a client cannot spend two windows' worth around a boundary.

Each limit is admitted atomically (compare-and-swap for GCRA, a per-key lock for a window), so
concurrent callers never get more than the limit in any window; a request refused by one limit
charges none. Idle keys are evicted with ``evict_idle()``.

With ``redis_url``, requests and tokens are counted in Redis and shared by every process: one Lua
script per check (one round trip, atomic on the server), fixed windows anchored at the first hit
by the key's TTL (no shared clock needed). A Redis that does not answer within ``redis_timeout``
is reported in the result's ``error`` and ``fail_open`` decides (admit, by default, or refuse);
the connection is re-established on the next call. Outcomes go to the process's Redis health
record (``redis_health``): failed calls are counted in the ``litellm_rust.redis.errors`` metric,
and the start and end of an outage are telemetry events (with ``instrument()`` or
``start_metrics_server()``).
Parallel-request slots stay per process.
"""

import asyncio

from litellm_rust import _native
from litellm_rust.redis_health import REDIS_HEALTH

ManualClock = _native.ManualClock
RateLimitResult = _native.RateLimitResult

# Named limits: (unit, period in seconds).
_NAMED_LIMITS = {
    "rpm": ("requests", 60.0),
    "tpm": ("tokens", 60.0),
    "rpd": ("requests", 86_400.0),
    "tpd": ("tokens", 86_400.0),
}
_MAX_AMOUNT = 2**63 - 1


def _amount(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected a whole number, got {value!r}")
    if not 0 <= value <= _MAX_AMOUNT:
        raise ValueError(f"{name}: must be between 0 and {_MAX_AMOUNT}, got {value}")
    return value


class RateLimiter:
    """Keyed limits: ``rpm``, ``tpm``, ``rpd``, ``tpd``, any custom ``limits`` as
    ``(name, "requests" | "tokens", amount, period_seconds)``, and ``max_parallel_requests`` slots.

    ``clock``: a ``ManualClock`` for deterministic tests and replays (default: monotonic time).
    """

    def __init__(
        self,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        rpd: int | None = None,
        tpd: int | None = None,
        limits: list[tuple[str, str, int, float]] = (),
        max_parallel_requests: int | None = None,
        algorithm: str = "fixed_window",
        idle_seconds: float = 600.0,
        clock: "_native.ManualClock | None" = None,
        redis_url: str | None = None,
        redis_prefix: str = "litellm_rust:ratelimit",
        redis_timeout: float = 0.05,
        fail_open: bool = True,
    ) -> None:
        specs = []
        for name, value in (("rpm", rpm), ("tpm", tpm), ("rpd", rpd), ("tpd", tpd)):
            if value is not None:
                unit, period = _NAMED_LIMITS[name]
                specs.append((name, unit, _amount(name, value), period))
        specs += [(name, unit, _amount(name, amount), float(period)) for name, unit, amount, period in limits]
        if max_parallel_requests is not None:
            _amount("max_parallel_requests", max_parallel_requests)
        self._limiter = _native.RateLimiter(
            specs,
            algorithm=algorithm,
            max_parallel_requests=max_parallel_requests,
            idle_seconds=idle_seconds,
            clock=clock,
        )
        self._shared = None
        if redis_url is not None:
            if algorithm != "fixed_window":
                raise ValueError("limits shared through Redis use fixed windows; algorithm must be 'fixed_window'")
            if clock is not None:
                raise ValueError("limits shared through Redis use Redis's clock; a ManualClock cannot drive them")
            self._shared = _native.RedisRateLimiter(
                redis_url, specs, prefix=redis_prefix, timeout_seconds=redis_timeout, fail_open=fail_open
            )
            self.check = self._shared_check

    @property
    def redis_errors(self) -> int:
        """Redis calls that failed (the fail mode decided those checks)."""
        return 0 if self._shared is None else self._shared.errors

    @property
    def redis_connections(self) -> int:
        """Redis connections opened, attempts included: pooled connections are reused, and after
        a connection fault a reconnect is tried with exponential backoff (0.1 s doubling to 5 s)
        while checks fail fast to the fail mode."""
        return 0 if self._shared is None else self._shared.connections

    def check(self, key: str, tokens: int = 0) -> RateLimitResult:
        """Admit one request carrying ``tokens`` (charged to token limits), or refuse it.

        Keys are any valid Unicode string (a lone surrogate is a ``UnicodeEncodeError``);
        ``tokens`` a non-negative whole number (``OverflowError`` otherwise)."""
        return self._limiter.check(key, tokens)

    def _shared_check(self, key: str, tokens: int = 0) -> RateLimitResult:
        """`check` through Redis, its outcome reported to the process's Redis health record."""
        result = self._shared.check(key, tokens)
        if result.error is not None or not REDIS_HEALTH.available:
            REDIS_HEALTH.record(result.error)
        return result

    def record_usage(self, key: str, tokens: int, limit: str | None = None) -> str | None:
        """Charge tokens known only after the response (negative refunds an over-estimate), to
        every token limit or to ``limit`` only. Charged even beyond the limit. Returns the Redis
        error when shared usage could not be recorded."""
        if isinstance(tokens, bool) or not isinstance(tokens, int) or abs(tokens) > _MAX_AMOUNT:
            raise ValueError(f"tokens: expected a whole number within +/-{_MAX_AMOUNT}, got {tokens!r}")
        if self._shared is not None:
            asked, error = self._shared.record_usage(key, "tokens", tokens, limit)
            if asked and (error is not None or not REDIS_HEALTH.available):
                REDIS_HEALTH.record(error)  # no limit counting tokens: Redis was not asked
            return error
        self._limiter.record_usage(key, "tokens", tokens, limit)
        return None

    def acquire(self, key: str) -> bool:
        """Take one of ``max_parallel_requests`` slots; False when all are taken."""
        return self._limiter.acquire(key)

    def release(self, key: str) -> None:
        self._limiter.release(key)

    def slots_in_use(self, key: str) -> int:
        return self._limiter.slots_in_use(key)

    def evict_idle(self) -> int:
        """Forget keys idle for ``idle_seconds`` that hold no slot; returns how many."""
        return self._limiter.evict_idle()

    def __len__(self) -> int:
        return self._limiter.key_count()

    # Local checks are well under a microsecond and run inline; a Redis round trip (bounded by
    # redis_timeout) runs in a worker thread so the event loop never waits on the network.
    async def acheck(self, key: str, tokens: int = 0) -> RateLimitResult:
        if self._shared is None:
            return self.check(key, tokens)
        return await asyncio.to_thread(self.check, key, tokens)

    async def arecord_usage(self, key: str, tokens: int, limit: str | None = None) -> str | None:
        if self._shared is None:
            return self.record_usage(key, tokens, limit)
        return await asyncio.to_thread(self.record_usage, key, tokens, limit)

    async def aacquire(self, key: str) -> bool:
        return self.acquire(key)

    async def arelease(self, key: str) -> None:
        self.release(key)
