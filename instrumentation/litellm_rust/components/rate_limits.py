"""Rate limits: the router's `enforce_model_rate_limits` pre-call check served from Rust counters.

litellm's `ModelRateLimitingCheck` counts each deployment's requests and tokens per minute and
per day in the router's cache. Its pre-call checks decide here from a native `ModelRateLimits`
store per router cache, with litellm's keys, windows, TTLs and order of checks, raising the same
`RateLimitError`; its success events run litellm's own bookkeeping and charge the native store too.

`rate_limit_algorithm: gcra` serves rpm and tpm from a token bucket per deployment instead (rpd/tpd
stay litellm's days); litellm is no reference for it, so it is never shadowed. While Rust serves,
litellm's own counters are not charged: on degrading to Python mid-minute, that minute starts over.
"""

import weakref
from dataclasses import dataclass
from datetime import UTC

from litellm_rust import _native
from litellm_rust._component import Component
from litellm_rust._control import Site, decline, standing_in_for
from litellm_rust._litellm import RATE_LIMITS, deployment_id
from litellm_rust.config import ComponentSettings, ConfigError, choice

_CHECK_METHODS = ("pre_call_check", "async_pre_call_check")
_SUCCESS_METHODS = ("log_success_event", "async_log_success_event")


@dataclass(frozen=True)
class RateLimitsSettings(ComponentSettings):
    rate_limit_algorithm: str = choice("parity", ("parity", "gcra"), "algorithm")
    """The router's `enforce_model_rate_limits` where Rust serves it: `parity` (litellm's
    wall-clock minutes, decision for decision) or `gcra` (rpm and tpm as token buckets: a burst of
    the limit, then a steady limit per minute). Not comparable with litellm, so never shadowed."""


class RateLimitsComponent(Component):
    name = "rate_limits"
    stateful = True
    settings_class = RateLimitsSettings

    def __init__(self) -> None:
        super().__init__()
        litellm = self._litellm = RATE_LIMITS.litellm
        self._limit_error_prefix = RATE_LIMITS.router_errors.user_defined_ratelimit_error.value
        # One store per router cache (by id, dropped with the cache: a dict lookup per call).
        self._stores: dict[int, _native.ModelRateLimits] = {}
        # The callbacks list last scanned for a usage-routing strategy (rescanned when it is
        # replaced or its length changes), and the caches such strategies count in.
        self._scanned_callbacks: list | None = None
        self._scanned_length = -1
        self._usage_routed_caches: frozenset[int] = frozenset()
        namespace = vars(RATE_LIMITS.check_class)
        self.references = {name: namespace[name] for name in (*_CHECK_METHODS, *_SUCCESS_METHODS)}
        self._refusal = litellm.RateLimitError

    def sites(self):
        refusal = (self._refusal,)
        yield Site(
            self.references["pre_call_check"],
            lambda check, deployment: self.rust_check(check, deployment, False),
            request_key=_deployment_key,
            describe=self.describe,
            answers=refusal,
        )
        yield Site(
            self.references["async_pre_call_check"],
            lambda check, deployment, parent_otel_span=None: self.rust_check(check, deployment, True),
            request_key=_deployment_key,
            describe=self.describe,
            answers=refusal,
        )

    def wrappers(self):
        return {
            self.references["log_success_event"]: _charging_success_event(self),
            self.references["async_log_success_event"]: _charging_async_success_event(self),
        }

    def check_settings(self, settings: RateLimitsSettings) -> None:
        if settings.mode == "shadow" and settings.rate_limit_algorithm == "gcra":
            raise ConfigError(
                f"components.{self.name}: rate_limit_algorithm gcra cannot be shadowed, its decisions differ from "
                "litellm's by design (use mode rust with gcra, or rate_limit_algorithm parity to shadow)"
            )

    # -- the store -----------------------------------------------------------------------------

    def store(self, cache) -> _native.ModelRateLimits:
        """The native counters standing in for `cache`'s (one router's), refusing what they do not
        reproduce."""
        if cache.redis_cache is not None:
            decline("redis_cache")
        if id(cache) in self._usage_routed():
            decline("shared_with_usage_routing")
        try:
            return self._stores[id(cache)]
        except KeyError:
            store = self._stores[id(cache)] = _native.ModelRateLimits(self.stats)
            weakref.finalize(cache, self._stores.pop, id(cache), None)
            return store

    def _usage_routed(self) -> frozenset[int]:
        """The caches a usage-based-routing-v2 strategy counts in."""
        callbacks = self._litellm.callbacks
        if callbacks is not self._scanned_callbacks or len(callbacks) != self._scanned_length:
            self._usage_routed_caches = frozenset(
                id(callback.router_cache)
                for callback in callbacks
                if isinstance(callback, RATE_LIMITS.usage_routing_handler)
            )
            self._scanned_callbacks, self._scanned_length = callbacks, len(callbacks)
        return self._usage_routed_caches

    # -- the check -------------------------------------------------------------------------------

    def rust_check(self, check, deployment: object, is_async: bool):
        """The deployment, or the `RateLimitError` litellm would raise (returned, not raised, so
        shadow mode can compare it)."""
        cache = check.dual_cache
        store = self.store(cache)
        seconds = cache.in_memory_cache._clock()
        # litellm's own clock is UTC now: read once, from the cache's clock, instead of twice.
        now = None if check.clock is RATE_LIMITS.utc_now else check.clock()
        gcra = self.control.settings.rate_limit_algorithm == "gcra"
        refused = store.check(deployment, now, is_async, seconds, self._day, gcra)
        if refused is None:
            return deployment
        kind, limit, usage, retry_after = refused
        if kind in ("tpd", "rpd"):
            now = now or self._utc_at(seconds)
            return RATE_LIMITS.daily_limit_deployment.model_validate(deployment).limit_error(kind, limit, usage, now)
        return self._minute_limit_error(
            kind, limit, usage, deployment, is_async, 60 if retry_after is None else retry_after
        )

    def _day(self, deployment: dict, now, seconds: float) -> str:
        """litellm's name for the deployment's current day (shifted by its daily reset time)."""
        try:
            daily = RATE_LIMITS.daily_limit_deployment.model_validate(deployment)
            return RATE_LIMITS.daily_window_day(now or self._utc_at(seconds), daily.reset_offset())
        except Exception:  # litellm admits a deployment whose daily settings it cannot read
            decline("unusual_deployment")

    @staticmethod
    def _utc_at(seconds: float):
        from datetime import datetime

        return datetime.fromtimestamp(seconds, UTC)

    def _minute_limit_error(self, kind, limit, usage, deployment: dict, is_async: bool, retry_after: int):
        """The 429 litellm raises for a tpm or rpm refusal (the async check also forbids retries)."""
        import httpx

        model_id = deployment.get("model_info", {}).get("id")
        model = deployment.get("litellm_params", {}).get("model")
        group = deployment.get("model_name", "")
        return self._litellm.RateLimitError(
            message=f"Model rate limit exceeded. {kind.upper()} limit={limit}, current usage={usage}",
            llm_provider="",
            model=model,
            response=httpx.Response(
                status_code=429,
                content=f"{self._limit_error_prefix} {kind} limit={limit}. current usage={usage}. id={model_id}, model_group={group}",
                headers={"retry-after": str(retry_after)},
                request=httpx.Request(method="model_rate_limit_check", url="https://github.com/BerriAI/litellm"),
            ),
            **({"num_retries": 0} if is_async else {}),
        )

    def compare(self, python_result: object, rust_result: object) -> bool:
        """Admitted by both, or refused by both with the same message (limit, usage and kind)."""
        error = self._litellm.RateLimitError
        if isinstance(python_result, error) or isinstance(rust_result, error):
            return (
                isinstance(python_result, error)
                and isinstance(rust_result, error)
                and python_result.message == rust_result.message
            )
        return python_result is rust_result

    def charge(self, check, kwargs: dict) -> None:
        """A successful call's tokens, charged to the native counters under litellm's keys."""
        logged = kwargs.get("standard_logging_object")
        if logged is None or logged.get("model_id") is None:
            return
        tokens = logged.get("total_tokens", 0)
        model = logged.get("hidden_params", {}).get("litellm_model_name")
        if not model or not tokens:
            return
        try:
            store = self.store(check.dual_cache)
        except _native.Unsupported:  # its pre-call checks fell back (and were counted) already
            return
        now = check.clock()
        day = RATE_LIMITS.daily_window_day(now, RATE_LIMITS.reset_offset_from_kwargs(kwargs))
        store.record_tokens(
            f"{logged['model_id']}:{model}",
            now.hour * 60 + now.minute,
            day,
            int(tokens),
            check.dual_cache.in_memory_cache._clock(),
        )

    def charge_quietly(self, check, kwargs: dict) -> None:
        """`charge` after litellm's own bookkeeping; a failure is counted, never raised into the
        logging pipeline."""
        if self.control.settings.mode == "python":
            return
        try:
            self.charge(check, kwargs)
        except Exception as error:
            self.control.rust_failed(error, python_serves=False)

    @staticmethod
    def describe(capture_content: bool, check, deployment: object, *_) -> dict:
        if not isinstance(deployment, dict):
            return {"deployment": type(deployment).__name__}
        return {"model_group": deployment.get("model_name"), "id": (deployment.get("model_info") or {}).get("id")}


def _charging_success_event(component: RateLimitsComponent):
    original = component.references["log_success_event"]

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        original(self, kwargs, response_obj, start_time, end_time)
        component.charge_quietly(self, kwargs)

    return standing_in_for(original, log_success_event)


def _charging_async_success_event(component: RateLimitsComponent):
    original = component.references["async_log_success_event"]

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        await original(self, kwargs, response_obj, start_time, end_time)
        component.charge_quietly(self, kwargs)

    return standing_in_for(original, async_log_success_event)


def _deployment_key(check, deployment: object, *_) -> str | None:
    """The rollout key: a deployment stays on one implementation, so its counts stay in one place."""
    return deployment_id(deployment)
