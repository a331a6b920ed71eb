"""Type stubs for `litellm_rust._native`, the PyO3 glue over the pure-Rust crates (rust/crates/py).

Every Rust failure surfaces as an ordinary exception: `Unsupported` when the input needs behaviour
the Rust path does not reproduce (the reason in `args[0]`), `RustPanic` for a caught panic.
"""

from collections.abc import Callable, Mapping
from datetime import datetime
from types import ModuleType
from typing import Any, Literal

class Unsupported(Exception): ...
class RustPanic(Exception): ...

def inject_fault(kind: Literal["error", "panic", "wrong_result"] | None) -> None:
    """Make every component's Rust side fail (tests of fallback, breaker and alerting)."""

def dict_version(dict: dict, /) -> int | None:
    """The dict's PEP 509 version tag, which moves whenever the dict changes (`None`: this CPython
    keeps none per dict)."""

class CallStats:
    """A component's call accounting in atomics, read by the telemetry at collection time."""

    def __init__(self) -> None: ...
    def set_mode(self, mode: Literal["python", "shadow", "rust"]) -> None: ...
    def python_call(self) -> None: ...
    def fallback(self, reason: str) -> None: ...
    def comparison(self, matched: bool) -> None: ...
    def calls(self) -> dict[tuple[str, str], int]: ...
    @property
    def rust_calls(self) -> int: ...
    @property
    def python_calls(self) -> int: ...
    @property
    def fallbacks(self) -> int: ...
    @property
    def comparisons(self) -> int: ...
    @property
    def mismatches(self) -> int: ...
    @property
    def fallback_reasons(self) -> dict[str, int]: ...

class TokenCounter:
    """litellm's `token_counter` for one model's encoding and accounting."""

    def __init__(
        self,
        encoding: Literal["cl100k_base", "o200k_base"],
        *,
        legacy_accounting: bool,
        template_tools: bool,
        constants: Mapping[str, int | float],
        render_tools: Callable[[Any], str],
        message_dicts: Callable[[Any], list[dict[str, Any]]],
        stats: CallStats,
    ) -> None: ...
    @property
    def encoding(self) -> str: ...
    def count(
        self,
        text: Any,
        messages: Any,
        count_response_tokens: Any,
        tools: Any,
        tool_choice: Any,
        use_default_image_token_count: Any,
        /,
    ) -> int: ...
    def count_batch(self, texts: list[str]) -> list[int]:
        """`[token_counter(model, text=t) for t in texts]` in one call, in parallel for large batches."""

class ManualClock:
    """A clock for tests and replays: time moves only through `advance` / `set` (seconds)."""

    def __init__(self) -> None: ...
    def advance(self, seconds: float) -> None: ...
    def set(self, seconds: float) -> None: ...
    def now(self) -> float: ...

class RateLimitResult:
    allowed: bool
    remaining: dict[str, int]
    refused_by: str | None
    retry_after: float
    error: str | None
    def __bool__(self) -> bool: ...

class RateLimiter:
    """Keyed limits in this process; `limits`: `(name, "requests" | "tokens", amount, period_seconds)`."""

    def __init__(
        self,
        limits: list[tuple[str, str, int, float]],
        *,
        algorithm: Literal["fixed_window", "gcra"],
        max_parallel_requests: int | None,
        idle_seconds: float,
        clock: ManualClock | None = None,
    ) -> None: ...
    def check(self, key: str, tokens: int = 0) -> RateLimitResult: ...
    def record_usage(self, key: str, unit_name: str, amount: int, name: str | None = None) -> None: ...
    def acquire(self, key: str) -> bool: ...
    def release(self, key: str) -> None: ...
    def slots_in_use(self, key: str) -> int: ...
    def evict_idle(self) -> int: ...
    def key_count(self) -> int: ...

class RedisRateLimiter:
    """The same limits shared through Redis: one Lua script per check."""

    def __init__(
        self,
        url: str,
        limits: list[tuple[str, str, int, float]],
        *,
        prefix: str,
        timeout_seconds: float,
        fail_open: bool,
    ) -> None: ...
    def check(self, key: str, tokens: int = 0) -> RateLimitResult: ...
    def record_usage(
        self, key: str, unit_name: str, amount: int, name: str | None = None
    ) -> tuple[bool, str | None]: ...
    @property
    def errors(self) -> int: ...
    @property
    def connections(self) -> int: ...

class ModelRateLimits:
    """The counters of litellm's router `enforce_model_rate_limits` check, for one router cache."""

    def __init__(self, stats: CallStats) -> None: ...
    def check(
        self,
        deployment: Mapping[str, Any],
        now: datetime | None,
        is_async: bool,
        seconds: float,
        day_of: Callable[[Mapping[str, Any], datetime | None, float], str],
        gcra: bool,
    ) -> tuple[Literal["tpm", "rpm", "tpd", "rpd"], int, int, int | None] | None: ...
    def record_tokens(self, deployment: str, minute_of_day: int, day: str, tokens: int, now: float) -> None: ...

_Entry = Any  # litellm's RateLimitWindow | RateLimitCounter | RateLimitGauge
_LocalValue = int | float | str | dict[str, float]

class MemoryRateLimits:
    """The memory-only keyspace of litellm's proxy rate limiter (v3), answering synchronously."""

    def __init__(self, stats: CallStats) -> None: ...
    def get_local(self, entry: _Entry) -> _LocalValue | None: ...
    def set_local(self, entry: _Entry, value: _LocalValue, ttl_seconds: float | None) -> None: ...
    def increment(self, entry: _Entry, amount: int | float, ttl_seconds: int | None) -> int | float | None: ...

def text_within(value: object, limit: int) -> bool:
    """Whether the strings in `value` (through dicts, lists and tuples) hold at most `limit` characters."""

class ParallelSlots:
    """The router's `max_parallel_requests` slots, counted on litellm's own `MaxParallelRequestsLimit`
    objects (see components/parallel_slots.py)."""

    def __init__(
        self,
        stats: CallStats,
        /,
        *,
        lookup: Callable[[Any, Mapping[str, Any], Mapping[str, Any]], Any],
        limit_type: type,
        dual_cache_type: type,
        in_memory_cache_type: type,
        slotted_kinds: frozenset[str],
        logging: ModuleType,
    ) -> None:
        """`in_memory_cache_type`'s default clock (`time.time()`) is read natively."""
    def limit(self, port: Any, deployment: Mapping[str, Any], kwargs: Mapping[str, Any]) -> Any:
        """`max_parallel_requests_limit`: the limit object litellm's lookup returns."""
    def enter(
        self, port: Any, plan: Any | None, deployment: Mapping[str, Any], kwargs: Mapping[str, Any]
    ) -> Slot | None:
        """The slot taken (or an empty one); None when every slot is taken."""
    def peek(
        self, port: Any, plan: Any | None, deployment: Mapping[str, Any], kwargs: Mapping[str, Any]
    ) -> tuple[Literal["no_slot", "admit", "full"], Any]:
        """What `enter` would do now, taking nothing."""

class Slot:
    """A taken slot (or none), where litellm uses the `ExitStack` holding it."""

    def __enter__(self) -> Slot: ...
    def __exit__(self, *exc_info: object) -> bool: ...
    def pop_all(self) -> Slot: ...
    def close(self) -> None: ...

# -- routing: litellm's strategy picks over the strategies' own state (see components/routing.py) --

class PickContext:
    """What every pick of one routing component shares: its stats, the least-busy and usage-v2
    counter keys (built once per deployment id and group, or model and minute), the plans of the
    router's shared candidate records (kept per list), Python's `random.randrange`, whether `sum()`
    compensates floats, and least-busy's reservation lifetime in seconds."""

    def __init__(
        self, *, stats: CallStats, randrange: Callable[[int], int], compensated_sum: bool, reservation_ttl: float
    ) -> None: ...

class LatencyRequest:
    """One latency-based-routing pick's inputs: the minute (`%Y-%m-%d-%H-%M`), whether the request
    streams, the router's `ttft_percentile` and `lowest_latency_buffer`, whether the handler's
    placeholders are written (`commit`), whether `_latency_per_deployment` is reported (`debug`)."""

    def __init__(
        self, *, minute: str, stream: bool, ttft_percentile: float | None, buffer: float, commit: bool, debug: bool
    ) -> None: ...

class LeastBusyRequest:
    """One least-busy pick's inputs: the model group, the in-memory cache of in-flight counts, the
    handler's reservation store, `now` on the handler's clock, and with Redis the in-flight counts
    every worker shares (one per candidate)."""

    def __init__(
        self, *, group: str, counts: Any, reservations: Any, now: float, shared_in_flight: tuple[int, ...] | None
    ) -> None: ...

def latency_choices(
    deployments_list: list[dict[str, Any]],
    map: dict[str, Any] | None,
    /,
    *,
    request: LatencyRequest,
    count_input_tokens: Callable[[], int],
    context: PickContext,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]: ...
def cheapest(
    deployments_list: list[dict[str, Any]],
    map: dict[str, Any] | None,
    /,
    *,
    minute: str,
    rates: Callable[[dict[str, Any]], Any],
    count_input_tokens: Callable[[], int],
    commit: bool,
    context: PickContext,
) -> dict[str, Any] | None: ...
def least_used(
    deployments_list: list[dict[str, Any]],
    /,
    *,
    minute: str,
    cache: Any | None,
    prefetched_keys: frozenset[str] | None,
    prefetched_values: dict[str, Any] | None,
    count_input_tokens: Callable[[], int],
    context: PickContext,
) -> list[dict[str, Any]]:
    """`cache` (an `InMemoryCache`) is read on its own clock."""

def lowest_tpm(
    deployments_list: list[dict[str, Any]],
    /,
    *,
    tpm: dict[Any, Any] | None,
    rpm: dict[Any, Any] | None,
    count_input_tokens: Callable[[], int],
    commit: bool,
    context: PickContext,
    shared_records: bool = False,
) -> int | None:
    """`shared_records`: the candidates are the router's shared records, whose ids and limits the
    context keeps per list (never a caller's own dicts, which may change between picks)."""

class UsageMirror:
    """One router `InMemoryCache`'s entries as usage-based-routing-v2's and least-busy's picks read
    them, copied write by write (see components/routing_state.py); dict version tags catch other writes."""

    def __init__(self) -> None:
        """Raises `Unsupported("dict_versions")` on a CPython whose dict version tags it cannot read."""
    def begin(self, cache: Any) -> bool:
        """Before a write through the cache's methods: whether the mirror is the cache's copy now."""
    def written(self, cache: Any, key: Any, current: bool) -> None:
        """After a write of `key`: the key's entry as the cache now holds it."""
    def cleared(self, cache: Any, current: bool) -> None:
        """After `flush_cache`."""
    def least_used(
        self,
        deployments_list: list[dict[str, Any]],
        /,
        *,
        minute: str,
        cache: Any,
        count_input_tokens: Callable[[], int],
        context: PickContext,
    ) -> list[dict[str, Any]] | None:
        """`least_used` from the mirror, on the cache's clock; `None`: some counter must be read in the
        cache itself."""
    def counts(self) -> dict[str, int]:
        """mirrored_picks, resyncs (whole re-reads of the cache), read_in_place."""

class LatencyMirror:
    """One router `InMemoryCache`'s latency maps as latency-based-routing's pick reads them, held
    per model group and re-read where version tags or list items moved (see
    components/routing_latency.py)."""

    def __init__(self, compensated_sum: bool) -> None:
        """Raises `Unsupported("dict_versions")` on a CPython whose dicts and lists it cannot read."""
    def latency_choices(
        self,
        deployments_list: list[dict[str, Any]],
        map: dict[str, Any] | None,
        /,
        *,
        group: str,
        request: LatencyRequest,
        count_input_tokens: Callable[[], int],
        context: PickContext,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None] | None:
        """`latency_choices` from the mirror; `None`: another pick holds it (read in place)."""
    def counts(self) -> dict[str, int]:
        """mirrored_picks, resyncs (walks of a map whose keys changed), entry_reads, read_in_place."""

def least_busy(
    deployments_list: list[dict[str, Any]],
    /,
    *,
    request: LeastBusyRequest,
    context: PickContext,
    shared_records: bool = False,
    mirror: UsageMirror | None = None,
) -> int | None:
    """The index of the first deployment with the fewest in-flight calls (the larger of the shared
    counts and this worker's, with `request.shared_in_flight`) plus live reservations; the request's
    `counts` and `reservations` (each an `InMemoryCache`) are read on their own clocks. With
    `shared_records` (see `lowest_tpm`) and `mirror`, this worker's counts are read from the mirror
    where it is exact."""

def cooling_keys(keys: list[str], snapshot: dict[str, Any]) -> list[tuple[int, str]] | None:
    """`(position, id)` of each cooldown key whose deployment the cooldown store's entries hold;
    `None` unless every key is a cooldown key."""
