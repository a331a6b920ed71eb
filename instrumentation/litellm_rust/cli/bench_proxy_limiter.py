"""The proxy's rate limiter per request: litellm as is vs with `LiteLLMRustInstrumentor().instrument()`.

litellm's proxy limiter is `litellm/proxy/hooks/parallel_request_limiter_v3.py::_PROXY_MaxParallelRequestsHandler_v3`,
built as `ProxyLogging` builds it (an `InternalUsageCache` over a `DualCache`, no Redis, so its counters live in
litellm's native in-memory `RateLimitStore`). One request is what the proxy fires for a key with rpm, tpm and
max_parallel_requests limits: `async_pre_call_hook` (rpm window, parallel slot, tpm reservation), then
`async_logging_hook` and `async_log_success_event` from the success handler (slot released, tokens reconciled to the
response's usage), then `async_post_call_success_hook` (rate-limit headers). Each request runs in its own context,
as each proxy request runs in its own task: the limiter keeps its per-request stash in a ContextVar.

Both columns run in one process, interleaved round by round (median of each round's mean wall time over the
hooks, litellm's worker-thread hops for the token estimates included). The admission decisions of a schedule
that hits every limit are compared between the columns: they must be identical. Instrumented, the `proxy_limits`
component serves the limiter's store and its small token estimates (see its module).

    python -m litellm_rust.cli.bench_proxy_limiter
"""

import asyncio
import contextvars
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

_KEY_HASH = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
_MODEL = "gpt-4o"
_USAGE = {"prompt_tokens": 41, "completion_tokens": 23, "total_tokens": 64}
# A fixed clock for the decision schedule, so both columns see the same windows whatever the wall clock does.
_FROZEN_NOW = datetime(2025, 1, 1, 12, 0, 0)


@dataclass(frozen=True)
class _KeyLimits:
    rpm: int
    tpm: int
    max_parallel_requests: int


# Generous limits for timing (nothing is refused); for the schedule, limits that each refuse some requests.
_TIMING_LIMITS = _KeyLimits(rpm=10**9, tpm=10**12, max_parallel_requests=100)
_SCHEDULE_LIMITS = _KeyLimits(rpm=12, tpm=700, max_parallel_requests=3)


def _proxy_limiter(time_provider=None):
    """The v3 handler as `litellm.proxy.utils.ProxyLogging` builds it (in memory: no Redis configured)."""
    from litellm.caching.dual_cache import DualCache
    from litellm.proxy.hooks.parallel_request_limiter_v3 import _PROXY_MaxParallelRequestsHandler_v3
    from litellm.proxy.utils import InternalUsageCache

    usage_cache = InternalUsageCache(dual_cache=DualCache(default_in_memory_ttl=1))
    return _PROXY_MaxParallelRequestsHandler_v3(usage_cache, time_provider=time_provider)


def _api_key(limits: _KeyLimits):
    from litellm.proxy._types import UserAPIKeyAuth

    return UserAPIKeyAuth(
        api_key=_KEY_HASH,
        token=_KEY_HASH,
        key_alias="bench-key",
        user_id="user-7",
        team_id="team-3",
        rpm_limit=limits.rpm,
        tpm_limit=limits.tpm,
        max_parallel_requests=limits.max_parallel_requests,
    )


def _request_data(call_id: str) -> dict:
    """A chat request body as it reaches the pre-call hook (after auth added its metadata)."""
    return {
        "model": _MODEL,
        "messages": [
            {"role": "system", "content": "You are a support assistant. Answer briefly."},
            {"role": "user", "content": "My login fails with error 403 since this morning; ticket #4412."},
            {"role": "assistant", "content": "Did you reset your password recently?"},
            {"role": "user", "content": "Yes, yesterday. The new one works on the web but not in the app."},
        ],
        "temperature": 0.2,
        "litellm_call_id": call_id,
        "metadata": {
            "user_api_key_hash": _KEY_HASH,
            "user_api_key_alias": "bench-key",
            "user_api_key_user_id": "user-7",
            "user_api_key_team_id": "team-3",
            "headers": {"content-type": "application/json", "user-agent": "openai-python/1.99.0"},
            "endpoint": "/chat/completions",
        },
    }


def _success_kwargs(data: dict) -> dict:
    """The subset of litellm's logging `model_call_details` the limiter's success callbacks read."""
    metadata = {**data["metadata"], "model_group": _MODEL}
    return {
        "model": _MODEL,
        "messages": data["messages"],
        "litellm_call_id": data["litellm_call_id"],
        "call_type": "acompletion",
        "stream": False,
        "litellm_params": {"metadata": metadata},
        "standard_logging_object": {"metadata": dict(metadata), "hidden_params": {}},
    }


def _response():
    from litellm.types.utils import ModelResponse, Usage

    return ModelResponse(model=_MODEL, usage=Usage(**_USAGE))


def _refusal_reason(error: Exception) -> str | None:
    from litellm.proxy.common_utils.proxy_rate_limit_error import ProxyRateLimitError

    if isinstance(error, ProxyRateLimitError):
        return f"429 {error.headers.get('rate_limit_type')}"
    return None


class _ProxyRequest:
    """One proxy request against the limiter, in its own context (the ContextVar stash lives there)."""

    def __init__(self, handler, api_key) -> None:
        self._handler, self._api_key = handler, api_key
        self._context = contextvars.Context()
        self.data = _request_data(str(uuid.uuid4()))
        # Built by litellm and the proxy around the limiter, so they stay outside the timed hooks.
        self._success_kwargs, self._response = _success_kwargs(self.data), _response()

    async def _admit(self) -> str:
        try:
            # The v3 hook reads no `cache` for chat calls (only its batch limiter does).
            await self._handler.async_pre_call_hook(
                user_api_key_dict=self._api_key, cache=None, data=self.data, call_type="acompletion"
            )
        except Exception as error:
            reason = _refusal_reason(error)
            if reason is None:
                raise
            return reason
        return "admitted"

    async def _finish(self) -> None:
        ended = datetime.now()
        kwargs, response = await self._handler.async_logging_hook(self._success_kwargs, self._response, "acompletion")
        await self._handler.async_log_success_event(kwargs, response, ended, ended)
        await self._handler.async_post_call_success_hook(
            data=self.data, user_api_key_dict=self._api_key, response=response
        )

    async def _timed_whole_request(self) -> int:
        start = time.perf_counter_ns()
        if await self._admit() != "admitted":
            raise AssertionError("the timing key's limits must admit every request")
        await self._finish()
        return time.perf_counter_ns() - start

    def admit(self) -> "asyncio.Task[str]":
        return asyncio.create_task(self._admit(), context=self._context)

    def finish(self) -> "asyncio.Task[None]":
        return asyncio.create_task(self._finish(), context=self._context)

    def timed_whole_request(self) -> "asyncio.Task[int]":
        return asyncio.create_task(self._timed_whole_request(), context=self._context)


async def _ns_per_request(requests: int) -> float:
    handler, api_key = _proxy_limiter(), _api_key(_TIMING_LIMITS)
    await _ProxyRequest(handler, api_key).timed_whole_request()  # first-use imports stay out of the timing
    total_ns = 0
    for _ in range(requests):
        total_ns += await _ProxyRequest(handler, api_key).timed_whole_request()
    return total_ns / requests


async def _decision_schedule(waves: int, wave_size: int) -> list[str]:
    """Waves of requests admitted one after another and held open together (max_parallel_requests refuses the
    excess), then finished; the rpm and tpm windows run out along the way. Every request's decision, in order."""
    handler, api_key = _proxy_limiter(time_provider=lambda: _FROZEN_NOW), _api_key(_SCHEDULE_LIMITS)
    decisions = []
    for _ in range(waves):
        wave = [_ProxyRequest(handler, api_key) for _ in range(wave_size)]
        wave_decisions = [await request.admit() for request in wave]
        for request, decision in zip(wave, wave_decisions, strict=True):
            if decision == "admitted":
                await request.finish()
        decisions += wave_decisions
    return decisions


def _with_instrumentation(active: bool, run):
    """Runs `run()` with the instrumentor on or off, restoring its state afterwards."""
    from litellm_rust import LiteLLMRustInstrumentor

    instrumentor = LiteLLMRustInstrumentor()
    was_active = instrumentor.is_instrumented_by_opentelemetry
    if active and not was_active:
        instrumentor.instrument()
    elif not active and was_active:
        instrumentor.uninstrument()
    try:
        return run()
    finally:
        if active and not was_active:
            instrumentor.uninstrument()
        elif not active and was_active:
            instrumentor.instrument()


def proxy_limiter_rows(requests: int = 2_000, rounds: int = 5, waves: int = 4, wave_size: int = 5) -> list[dict]:
    """Rows of the proxy-limiter benchmark: ns per request for litellm as is and with the instrumentor active
    (interleaved rounds, median), and the admission decisions of a schedule that hits every limit, per column."""
    samples = {"litellm": [], "instrumented": []}
    for _ in range(rounds):
        for column, active in (("litellm", False), ("instrumented", True)):
            samples[column].append(_with_instrumentation(active, lambda: asyncio.run(_ns_per_request(requests))))
    litellm_ns, instrumented_ns = (statistics.median(samples[column]) for column in ("litellm", "instrumented"))

    decisions = {
        column: _with_instrumentation(active, lambda: asyncio.run(_decision_schedule(waves, wave_size)))
        for column, active in (("litellm", False), ("instrumented", True))
    }
    limits = _SCHEDULE_LIMITS
    return [
        {
            "workload": "pre-call + success + post-call, 1 key",
            "litellm_ns": litellm_ns,
            "instrumented_ns": instrumented_ns,
            "requests": requests,
            "rounds": rounds,
        },
        {
            "workload": (
                f"{waves} waves of {wave_size}, rpm {limits.rpm} tpm {limits.tpm:,} "
                f"parallel {limits.max_parallel_requests}"
            ),
            "litellm_decisions": decisions["litellm"],
            "instrumented_decisions": decisions["instrumented"],
            "decisions_equal": decisions["litellm"] == decisions["instrumented"],
        },
    ]


def _summary(decisions: list[str]) -> str:
    admitted = decisions.count("admitted")
    refused = {reason: decisions.count(reason) for reason in dict.fromkeys(decisions) if reason != "admitted"}
    return f"{admitted} admitted, " + ", ".join(f"{count} {reason}" for reason, count in refused.items())


def print_proxy_limiter_table(rows: list[dict]) -> None:
    timing, schedule = rows
    print(f"{'proxy limiter (v3, in memory)':<42} {'litellm ns':>12} {'instrumented ns':>16} {'litellm/instr':>14}")
    print("-" * 87)
    ratio = timing["litellm_ns"] / timing["instrumented_ns"]
    print(
        f"{timing['workload']:<42} {timing['litellm_ns']:>12,.0f} {timing['instrumented_ns']:>16,.0f} {ratio:>13.2f}x"
    )
    print()
    print(f"admission decisions, {schedule['workload']}:")
    print(f"  litellm       {_summary(schedule['litellm_decisions'])}")
    print(f"  instrumented  {_summary(schedule['instrumented_decisions'])}")
    print(f"  identical, request by request: {schedule['decisions_equal']}")


if __name__ == "__main__":
    print_proxy_limiter_table(proxy_limiter_rows())
