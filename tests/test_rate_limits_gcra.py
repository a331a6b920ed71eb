"""`rate_limit_algorithm: gcra`: the router's `enforce_model_rate_limits` check with rpm and tpm as
token buckets (a burst of the limit, then a steady limit per minute), side by side with parity
(litellm's wall-clock minutes), through litellm's own check and Router."""

import asyncio
from datetime import UTC, datetime

import litellm
import litellm_rust
import pytest
from litellm.caching.dual_cache import DualCache
from litellm.caching.in_memory_cache import InMemoryCache
from litellm.router_utils.pre_call_checks.model_rate_limit_check import ModelRateLimitingCheck
from litellm_rust import LiteLLMRustInstrumentor, configure, set_mode
from litellm_rust.components import components, settings_classes
from litellm_rust.config import Config, ConfigError, from_environment

MINUTE_START = datetime(2026, 11, 27, 10, 5, tzinfo=UTC).timestamp()
MESSAGES = [{"role": "user", "content": "hi"}]


class FixedClock:
    """One reading for litellm's check (a UTC datetime) and the router cache (seconds), moved
    only by the test."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.seconds, UTC)

    def attach(self, check: ModelRateLimitingCheck) -> None:
        check.clock = self.now
        check.dual_cache.in_memory_cache._clock = lambda: self.seconds


def clocked_check(clock: FixedClock) -> ModelRateLimitingCheck:
    check = ModelRateLimitingCheck(DualCache(in_memory_cache=InMemoryCache()))
    clock.attach(check)
    return check


def deployment(**limits) -> dict:
    return {"model_name": "g", "litellm_params": {"model": "openai/m", **limits}, "model_info": {"id": "d1"}}


def refusal(call) -> litellm.RateLimitError | None:
    try:
        call()
    except litellm.RateLimitError as error:
        return error
    return None


def burst_through_router(algorithm: str | None) -> list[tuple[int, list[str]]]:
    """A real Router (rpm 3 on its one deployment) on a fixed clock: bursts of requests at given
    seconds after 10:05:00, each phase's admissions and the refusals' retry-after."""
    router = litellm.Router(
        model_list=[{"model_name": "g", "litellm_params": {"model": "openai/m", "api_key": "k", "rpm": 3}}],
        optional_pre_call_checks=["enforce_model_rate_limits"],
        num_retries=0,
    )
    [check] = [callback for callback in litellm.callbacks if isinstance(callback, ModelRateLimitingCheck)]
    clock = FixedClock(MINUTE_START)
    clock.attach(check)
    if algorithm:
        configure("rate_limits", rate_limit_algorithm=algorithm)
    phases = []
    for offset, requests in [(59, 6), (60.5, 6), (80, 2), (100, 2)]:
        clock.seconds = MINUTE_START + offset
        admitted, retry_after = 0, []
        for _ in range(requests):
            refused = refusal(lambda: router.completion(model="g", messages=MESSAGES, mock_response="ok"))
            if refused is None:
                admitted += 1
            else:
                retry_after.append(refused.response.headers["retry-after"])
        phases.append((admitted, retry_after))
    litellm.callbacks.clear()
    return phases


def test_a_burst_across_a_minute_boundary_parity_admits_two_limits_gcra_one_then_one_per_interval(
    instrumented, no_earlier_routers
):
    default = burst_through_router(None)
    assert default == [
        (3, ["60"] * 3),  # 10:05:59, the minute's 3
        (3, ["60"] * 3),  # 10:06:00.5, a new minute: 3 more, 6 within 1.5 s
        (0, ["60"] * 2),  # 10:06:20, the new minute is spent until 10:07
        (0, ["60"] * 2),  # 10:06:40
    ]
    assert burst_through_router("parity") == default
    assert burst_through_router("gcra") == [
        (3, ["20"] * 3),  # a burst of the limit; the next fits one interval (60 s / 3) later: 10:06:19
        (0, ["19"] * 6),  # the minute changing gives nothing back
        (1, ["19"]),  # then one per 20 s
        (1, ["19"]),
    ]


def test_parity_is_litellms_own_decisions_on_the_same_sequence(no_earlier_routers):
    reference = burst_through_router(None)
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        assert burst_through_router("parity") == reference
    finally:
        instrumentor.uninstrument()


@pytest.mark.parametrize("is_async", [False, True])
def test_a_gcra_refusal_is_litellms_rate_limit_error_with_the_buckets_retry_after(is_async, instrumented):
    limited = deployment(rpm=2)
    clock = FixedClock(MINUTE_START)
    litellm_check, check = clocked_check(clock), clocked_check(clock)
    name = "async_pre_call_check" if is_async else "pre_call_check"
    litellm_method, our_method = vars(ModelRateLimitingCheck)[name].__wrapped__, vars(ModelRateLimitingCheck)[name]

    def decide(method, target) -> litellm.RateLimitError | None:
        return refusal(lambda: asyncio.run(method(target, limited)) if is_async else method(target, limited))

    configure("rate_limits", rate_limit_algorithm="gcra")
    for _ in range(2):
        assert decide(litellm_method, litellm_check) is decide(our_method, check) is None
    clock.seconds += 5
    expected, refused = decide(litellm_method, litellm_check), decide(our_method, check)
    assert type(refused) is type(expected) is litellm.RateLimitError
    assert (
        refused.message
        == expected.message
        == "litellm.RateLimitError: Model rate limit exceeded. RPM limit=2, current usage=3"
    )
    assert (refused.response.status_code, refused.response.text) == (429, expected.response.text)
    assert refused.num_retries == expected.num_retries
    assert (expected.response.headers["retry-after"], refused.response.headers["retry-after"]) == ("60", "25")


def test_tokens_are_charged_after_the_call_and_the_next_request_waits_for_them_to_refill(instrumented):
    """tpm 100 and a first call of 250 tokens: parity refuses until the wall-clock minute ends;
    gcra until one more token fits (151 refilled at 100 a minute: 90.6 s)."""
    limited = deployment(tpm=100)
    success = {
        "standard_logging_object": {
            "model_id": "d1",
            "total_tokens": 250,
            "hidden_params": {"litellm_model_name": "openai/m"},
        },
        "litellm_params": limited["litellm_params"],
    }
    outcomes = {}
    for algorithm in ("parity", "gcra"):
        configure("rate_limits", rate_limit_algorithm=algorithm)
        clock = FixedClock(MINUTE_START + 30)
        check = clocked_check(clock)
        assert check.pre_call_check(limited) is limited
        check.log_success_event(success, None, None, None)
        seen = []
        for offset in (30, 60, 120, 121):
            clock.seconds = MINUTE_START + offset
            refused = refusal(lambda check=check: check.pre_call_check(limited))
            seen.append(
                "admitted"
                if refused is None
                else f"{refused.message.split('exceeded. ')[1]} retry-after={refused.response.headers['retry-after']}"
            )
        outcomes[algorithm] = seen
    assert outcomes == {
        "parity": [
            "TPM limit=100, current usage=250 retry-after=60",
            "admitted",  # a new minute: the 250 tokens are forgotten
            "admitted",
            "admitted",
        ],
        "gcra": [
            "TPM limit=100, current usage=250 retry-after=91",
            "TPM limit=100, current usage=200 retry-after=61",
            "TPM limit=100, current usage=100 retry-after=1",
            "admitted",
        ],
    }


def test_daily_limits_stay_litellms_days_under_gcra(instrumented):
    limited = deployment(rpm=10, rpd=2, daily_reset_time="06:30")
    clock = FixedClock(MINUTE_START)
    litellm_check, check = clocked_check(clock), clocked_check(clock)
    original = ModelRateLimitingCheck.pre_call_check.__wrapped__
    configure("rate_limits", rate_limit_algorithm="gcra")
    for _ in range(2):
        assert check.pre_call_check(limited) is original(litellm_check, limited) is limited
    expected, refused = (
        refusal(lambda: original(litellm_check, limited)),
        refusal(lambda check=check: check.pre_call_check(limited)),
    )
    assert refused.message == expected.message
    assert refused.response.headers["retry-after"] == expected.response.headers["retry-after"]  # until 06:30 tomorrow


def test_an_unknown_algorithm_is_rejected_naming_the_setting():
    with pytest.raises(
        ConfigError,
        match=r"^components\.rate_limits\.rate_limit_algorithm: unknown algorithm 'smooth' \(expected one of parity, gcra\)$",
    ):
        configure("rate_limits", rate_limit_algorithm="smooth")
    assert components()["rate_limits"].control.settings.rate_limit_algorithm == "parity"


def test_the_algorithm_is_read_from_its_environment_variable():
    declared = {"rate_limits": settings_classes()["rate_limits"]}
    layer = from_environment(declared, {"OTEL_PYTHON_LITELLM_RUST_RATE_LIMITS_RATE_LIMIT_ALGORITHM": "gcra"})
    assert Config.build(declared, [layer]).components["rate_limits"].rate_limit_algorithm == "gcra"


def test_gcra_cannot_be_shadowed_whichever_is_set_first():
    """litellm is no reference for gcra's decisions: shadowing them would count every difference
    by design as a mismatch, so the combination is refused and the configuration kept."""
    control = components()["rate_limits"].control
    set_mode("rate_limits", "shadow")
    with pytest.raises(ConfigError, match=r"^components\.rate_limits: rate_limit_algorithm gcra cannot be shadowed"):
        configure("rate_limits", rate_limit_algorithm="gcra")
    assert (control.settings.mode, control.settings.rate_limit_algorithm) == ("shadow", "parity")
    set_mode("rate_limits", "rust")
    configure("rate_limits", rate_limit_algorithm="gcra")
    with pytest.raises(ConfigError, match="cannot be shadowed"):
        set_mode("rate_limits", "shadow")
    assert (control.settings.mode, control.settings.rate_limit_algorithm) == ("rust", "gcra")


def test_instrument_refuses_gcra_under_a_shared_shadow_mode_unless_rate_limits_serve_rust():
    instrumentor = LiteLLMRustInstrumentor()
    with pytest.raises(ConfigError, match="cannot be shadowed"):
        instrumentor.instrument(mode="shadow", rate_limit_algorithm="gcra")
    assert not components()["rate_limits"].instrumented
    instrumentor.instrument(mode="shadow", components={"rate_limits": {"mode": "rust", "rate_limit_algorithm": "gcra"}})
    try:
        assert litellm_rust.status()["token_counter"]["mode"] == "shadow"
        assert components()["rate_limits"].control.settings.rate_limit_algorithm == "gcra"
    finally:
        instrumentor.uninstrument()


def test_python_mode_and_uninstrument_serve_litellms_windows_whatever_the_algorithm(instrumented):
    limited = deployment(rpm=1)
    configure("rate_limits", rate_limit_algorithm="gcra")

    def admitted_at(check, offsets) -> list[bool]:
        clock = FixedClock(MINUTE_START)
        clock.attach(check)
        outcomes = []
        for offset in offsets:
            clock.seconds = MINUTE_START + offset
            outcomes.append(refusal(lambda check=check: check.pre_call_check(limited)) is None)
        return outcomes

    parity, gcra = [True, True], [True, False]  # 10:05:59 then 10:06:00.5
    assert admitted_at(ModelRateLimitingCheck(DualCache()), (59, 60.5)) == gcra
    set_mode("rate_limits", "python")
    assert admitted_at(ModelRateLimitingCheck(DualCache()), (59, 60.5)) == parity
    set_mode("rate_limits", "rust")
    instrumented.uninstrument()
    assert admitted_at(ModelRateLimitingCheck(DualCache()), (59, 60.5)) == parity
    instrumented.instrument()  # the fixture uninstruments
