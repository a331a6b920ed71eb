"""litellm-rust: Rust acceleration for LiteLLM, shipped as an OpenTelemetry instrumentor.

from litellm_rust import LiteLLMRustInstrumentor
LiteLLMRustInstrumentor().instrument()
"""

from litellm_rust.control_plane import (
    clear_overrides,
    configure,
    force_open,
    recommendations,
    release,
    set_mode,
    stats,
)
from litellm_rust.instrumentor import LiteLLMRustInstrumentor
from litellm_rust.prometheus import start_metrics_server
from litellm_rust.rate_limiter import ManualClock, RateLimiter, RateLimitResult
from litellm_rust.version import __version__
from litellm_rust.webhook import start_alert_webhook

__all__ = [
    "LiteLLMRustInstrumentor",
    "ManualClock",
    "RateLimitResult",
    "RateLimiter",
    "__version__",
    "clear_overrides",
    "configure",
    "count_tokens_batch",
    "force_open",
    "recommendations",
    "release",
    "set_mode",
    "start_alert_webhook",
    "start_metrics_server",
    "stats",
    "status",
]


def status() -> dict:
    """Per component: whether it is instrumented, its mode and rollout, which source set each
    setting in effect (`sources`), calls by mode and implementation, fallbacks and their reasons,
    shadow comparisons and sampled mismatch details, and the breaker's state and transitions.
    Counts are cumulative for the process.

    JSON-serializable; safe to call before or without `instrument()`, and with any litellm (a
    component the installed litellm does not support shows `supported: False` and why).
    """
    from litellm_rust.components import COMPONENT_NAMES, components, unsupported
    from litellm_rust.control_plane import PLANE

    built, refused = components(), unsupported()
    return {
        name: {**built[name].status(), "sources": PLANE.sources(name)}
        if name in built
        else {"instrumented": False, "supported": False, "serving": "python", "reason": refused[name]}
        for name in COMPONENT_NAMES
    }


def count_tokens_batch(model: str, texts: list[str]) -> list[int]:
    """Token counts of many texts in one native call (parallel for large batches).

    Equal to ``[litellm.token_counter(model=model, text=t) for t in texts]``; `texts` is a list
    (anything else raises `TypeError`).
    """
    from litellm_rust.components import components, unsupported

    component = components().get("token_counter")
    if component is None:
        raise RuntimeError(f"token counting is not supported here: {unsupported()['token_counter']}")
    return component.count_batch(model, texts)
