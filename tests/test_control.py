"""Modes, rollout, shadow comparison, the circuit breaker and telemetry, end to end."""

import collections
import threading
import time

import litellm
import litellm_rust
import pytest
from conftest import metric_points
from corpus import CHAT
from litellm_rust import _native
from litellm_rust._control import rollout_bucket
from litellm_rust.telemetry import DURATION_BUCKETS
from opentelemetry.instrumentation.utils import suppress_instrumentation
from parity import litellm_outcome

FAST_BREAKER = {"min_calls": 5, "cool_off_seconds": 0.05, "probe_rate": 1.0, "probes_to_close": 3}


def status() -> dict:
    return litellm_rust.status()["token_counter"]


def count(messages=CHAT, **kwargs) -> int:
    return litellm.token_counter(model="gpt-4o", messages=messages, **kwargs)


EXPECTED = None


def expected_chat_count() -> int:
    return litellm_outcome(model="gpt-4o", messages=CHAT)


# -- metrics -------------------------------------------------------------------------------------


def test_every_counter_is_exported_from_start_up(otel):
    otel.instrument()
    points = metric_points(otel.reader)
    every_component = set(litellm_rust.status())
    assert every_component == {
        "token_counter",
        "rate_limits",
        "proxy_limits",
        "parallel_slots",
        "routing",
        "router_cache",
        "group_usage",
        "precall_facts",
    }
    for name in every_component:

        def of(metric: str, component: str = name) -> list:
            return [p for _, p in points[metric] if p.attributes["litellm_rust.operation"] == component]

        calls = {
            (p.attributes["litellm_rust.mode"], p.attributes["litellm_rust.implementation"])
            for p in of("litellm_rust.operation.calls")
        }
        assert calls == {(m, i) for m in ("python", "shadow", "rust") for i in ("python", "rust")}
        assert {"rust_error", "rust_panic"} <= {p.attributes["error.type"] for p in of("litellm_rust.fallbacks")}
        assert [p.value for p in of("litellm_rust.shadow.mismatches")] == [
            litellm_rust.status()[name]["shadow_mismatches"]
        ]
        assert [p.value for p in of("litellm_rust.breaker.state")] == [0]
    assert len(points["litellm_rust.config.reload_errors"]) == 1


def test_calls_are_counted_by_mode_and_implementation(otel):
    otel.instrument()

    def calls() -> dict:
        return {
            p.attributes["litellm_rust.mode"] + p.attributes["litellm_rust.implementation"]: p.value
            for _, p in metric_points(otel.reader)["litellm_rust.operation.calls"]
            if p.attributes["litellm_rust.operation"] == "token_counter"
        }

    rust_before = calls()
    for _ in range(5):
        count()
    after = calls()
    assert after["rustrust"] - rust_before["rustrust"] == 5
    assert after["rustpython"] == rust_before["rustpython"]


def test_sampled_durations_use_microsecond_buckets_and_attributes(otel):
    otel.instrument(timing_sample_rate=1.0)
    for _ in range(4):
        count()
    ((metric, point),) = [
        (m, p)
        for m, p in metric_points(otel.reader)["litellm_rust.operation.duration"]
        if p.attributes["litellm_rust.implementation"] == "rust"
    ]
    assert metric.unit == "s"
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS
    assert point.count == 4
    assert dict(point.attributes) == {
        "litellm_rust.operation": "token_counter",
        "litellm_rust.implementation": "rust",
        "litellm_rust.mode": "rust",
    }


def test_only_sampled_calls_record_durations(otel):
    otel.instrument(timing_sample_rate=0.1)
    for _ in range(50):
        count()
    recorded = sum(p.count for _, p in metric_points(otel.reader)["litellm_rust.operation.duration"])
    assert recorded == 5


def test_no_span_per_call(otel):
    otel.instrument(timing_sample_rate=1.0, span_sample_rate=0.0)
    for _ in range(20):
        count()
    assert otel.exporter.get_finished_spans() == ()


# -- spans for rare events -----------------------------------------------------------------------


def test_a_fallback_becomes_a_span_with_its_error_type(otel):
    otel.instrument()
    _native.inject_fault("panic")
    assert count() == expected_chat_count()
    (span,) = otel.exporter.get_finished_spans()
    assert span.name == "litellm_rust.fallback"
    assert span.attributes["error.type"] == "rust_panic"
    assert span.attributes["litellm_rust.operation"] == "token_counter"


def test_a_fallback_inside_a_recording_span_is_an_event_on_it(otel):
    otel.instrument()
    _native.inject_fault("error")
    with otel.tracer_provider.get_tracer("app").start_as_current_span("request"):
        count()
    (span,) = otel.exporter.get_finished_spans()
    assert span.name == "request"
    assert [event.name for event in span.events] == ["litellm_rust.fallback"]
    assert span.events[0].attributes["error.type"] == "rust_error"


def test_suppressed_instrumentation_emits_no_spans(otel):
    otel.instrument()
    _native.inject_fault("error")
    with suppress_instrumentation():
        assert count() == expected_chat_count()
    assert otel.exporter.get_finished_spans() == ()


# -- modes ---------------------------------------------------------------------------------------


def test_shadow_mode_returns_pythons_result_and_compares(instrumented):
    litellm_rust.set_mode("token_counter", "shadow")
    before = status()
    assert count() == expected_chat_count()
    after = status()
    assert after["shadow_comparisons"] == before["shadow_comparisons"] + 1
    assert after["shadow_mismatches"] == before["shadow_mismatches"]
    assert after["calls"]["shadow/python"] == before["calls"]["shadow/python"] + 1
    assert after["calls"]["shadow/rust"] == before["calls"]["shadow/rust"] + 1


def test_shadow_mode_raises_pythons_exception(instrumented):
    litellm_rust.set_mode("token_counter", "shadow")
    with pytest.raises(ValueError):
        litellm.token_counter(model="gpt-4o", text="a", messages=CHAT)


def test_shadow_mismatch_is_counted_and_described_without_prompt_text(instrumented):
    litellm_rust.configure("token_counter", mode="shadow", breaker={"max_mismatch_rate": 1.0})
    _native.inject_fault("wrong_result")
    assert count() == expected_chat_count()  # the caller still sees Python's answer
    (detail,) = status()["mismatch_details"]
    assert detail["python"] == repr(expected_chat_count())
    assert detail["rust"] == repr(expected_chat_count() + 1)
    assert detail["inputs"]["messages"][1] == {"role": "user", "content": f"str[{len(CHAT[1]['content'])}]"}
    assert CHAT[1]["content"] not in repr(detail)


def test_capture_content_puts_the_prompt_in_mismatch_details(instrumented):
    litellm_rust.configure("token_counter", mode="shadow", capture_content=True, breaker={"max_mismatch_rate": 1.0})
    _native.inject_fault("wrong_result")
    count()
    assert CHAT[1]["content"] in repr(status()["mismatch_details"])


def test_shadow_sample_rate_zero_never_runs_rust(instrumented):
    litellm_rust.configure("token_counter", mode="shadow", shadow_sample_rate=0.0)
    before = status()
    for _ in range(10):
        count()
    assert status()["shadow_comparisons"] == before["shadow_comparisons"]
    assert status()["rust_calls"] == before["rust_calls"]


def test_modes_switch_at_run_time_under_eight_threads(instrumented):
    expected = expected_chat_count()
    results, errors = [], []
    stop = threading.Event()

    def caller():
        while not stop.is_set():
            try:
                results.append(count())
            except Exception as error:  # recorded, then asserted empty
                errors.append(error)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for mode in ["python", "shadow", "rust"] * 5:
        litellm_rust.set_mode("token_counter", mode)
        time.sleep(0.01)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results and set(results) == {expected}


# -- rollout -------------------------------------------------------------------------------------


def test_rollout_buckets_are_uniform():
    buckets = collections.Counter(rollout_bucket(f"req-{i}") * 10 // 10_000 for i in range(50_000))
    # Ten deciles of 5,000 expected each; a chi-square over 9 degrees of freedom above 27.9 has p < 0.001.
    chi_square = sum((observed - 5_000) ** 2 / 5_000 for observed in buckets.values())
    assert len(buckets) == 10 and chi_square < 27.9


def test_rollout_is_consistent_per_request_and_monotonic_in_the_percentage(token_component):
    control = token_component.control
    keys = [f"litellm-call-{i}" for i in range(2_000)]
    served_by_rust = {}
    for percent in (5, 25, 50, 100):
        litellm_rust.configure("token_counter", rollout_percent=percent)
        decisions = {key: control._in_rollout(key) for key in keys}
        assert decisions == {key: control._in_rollout(key) for key in keys}  # same answer on every ask
        assert all(decisions[key] for key, rust in served_by_rust.items() if rust)  # raising never flaps back
        assert abs(sum(decisions.values()) / len(keys) - percent / 100) < 0.05
        served_by_rust = decisions


def test_partial_rollout_splits_calls_without_request_keys(instrumented):
    litellm_rust.configure("token_counter", rollout_percent=30)
    before = status()
    for _ in range(1_000):
        count()
    rust = status()["calls"]["rust/rust"] - before["calls"]["rust/rust"]
    python = status()["calls"]["rust/python"] - before["calls"]["rust/python"]
    assert rust + python == 1_000
    assert 200 < rust < 400


# -- the breaker, driven through the real native boundary ----------------------------------------


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_breaker_opens_on_rust_errors_and_recovers_through_probes(instrumented):
    litellm_rust.configure("token_counter", breaker=FAST_BREAKER)
    expected = expected_chat_count()
    _native.inject_fault("error")
    for _ in range(5):
        assert count() == expected
    assert status()["breaker"]["state"] == "open"
    rust_before = status()["rust_calls"]
    fallbacks_before = status()["fallbacks"]
    assert count() == expected
    assert (status()["rust_calls"], status()["fallbacks"]) == (rust_before, fallbacks_before)  # Rust not tried

    _native.inject_fault(None)
    time.sleep(FAST_BREAKER["cool_off_seconds"])
    for _ in range(FAST_BREAKER["probes_to_close"]):
        assert count() == expected
    transitions = [(t["from"], t["to"]) for t in status()["breaker"]["transitions"]]
    assert transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert token_component_fast_path()


def token_component_fast_path() -> bool:
    from litellm_rust.components import components

    return components()["token_counter"].control.rust_fast


def test_breaker_opens_on_shadow_mismatches(instrumented):
    litellm_rust.configure("token_counter", mode="shadow")
    _native.inject_fault("wrong_result")
    count()
    assert status()["breaker"]["state"] == "open"
    assert "shadow mismatches" in status()["breaker"]["transitions"][-1]["reason"]


def test_a_failed_probe_opens_the_breaker_again(instrumented):
    litellm_rust.configure("token_counter", breaker=FAST_BREAKER)
    _native.inject_fault("error")
    for _ in range(5):
        count()
    time.sleep(FAST_BREAKER["cool_off_seconds"])
    count()
    assert [t["to"] for t in status()["breaker"]["transitions"]] == ["open", "half_open", "open"]


def test_forced_open_holds_until_released_then_probes(instrumented):
    litellm_rust.configure("token_counter", breaker=FAST_BREAKER)
    litellm_rust.force_open("token_counter", "alert LiteLLMRustErrorRatioHigh firing")
    rust_before = status()["rust_calls"]
    time.sleep(FAST_BREAKER["cool_off_seconds"] * 2)
    count()
    assert status()["rust_calls"] == rust_before  # no probing while forced, cool-off or not
    assert status()["breaker"] | {"transitions": None} == {"state": "open", "forced": True, "transitions": None}
    litellm_rust.release("token_counter", "alert resolved")
    assert status()["breaker"]["state"] == "half_open"
    for _ in range(FAST_BREAKER["probes_to_close"]):
        count()
    assert status()["breaker"]["state"] == "closed"


def test_breaker_state_and_transitions_are_exported(otel):
    otel.instrument(breaker=FAST_BREAKER)
    litellm_rust.force_open("token_counter", "test")
    points = metric_points(otel.reader)
    states = {p.attributes["litellm_rust.operation"]: p.value for _, p in points["litellm_rust.breaker.state"]}
    assert states == {
        "token_counter": 2,
        "rate_limits": 0,
        "proxy_limits": 0,
        "parallel_slots": 0,
        "routing": 0,
        "router_cache": 0,
        "group_usage": 0,
        "precall_facts": 0,
    }
    (span,) = [s for s in otel.exporter.get_finished_spans() if s.name == "litellm_rust.breaker.transition"]
    assert span.attributes["litellm_rust.breaker.to"] == "open"
    assert span.attributes["litellm_rust.breaker.reason"] == "forced: test"


# -- stats and advice ----------------------------------------------------------------------------


def test_stats_and_recommendations_from_shadow_timings(instrumented):
    litellm_rust.configure("token_counter", mode="shadow", timing_sample_rate=1.0)
    for _ in range(30):
        count()
    timings = litellm_rust.stats()["token_counter"]
    assert timings["rust"]["samples"] >= 30 and timings["python"]["samples"] >= 30
    assert timings["rust"]["p50"] <= timings["rust"]["p95"] <= timings["rust"]["p99"]
    (advice,) = [line for line in litellm_rust.recommendations() if line.startswith("token_counter:")]
    assert advice.startswith("token_counter: Rust p50 ")
    assert "0 mismatches in" in advice and "safe to move to rust at 100%" in advice


def test_sampled_calls_become_spans_at_the_span_sample_rate(otel):
    otel.instrument(timing_sample_rate=1.0, span_sample_rate=1.0)
    count()
    (span,) = otel.exporter.get_finished_spans()
    assert span.name == "litellm_rust.call"
    assert span.attributes["litellm_rust.implementation"] == "rust"
    assert span.attributes["litellm_rust.duration_s"] > 0


def raising(error: Exception):
    def run():
        raise error

    return run


def test_in_shadow_mode_an_input_both_implementations_reject_alike_is_not_a_rust_error(token_component):
    litellm_rust.configure("token_counter", mode="shadow", shadow_sample_rate=1.0)
    before = dict(token_component.stats.fallback_reasons)
    with pytest.raises(TypeError, match="litellm's"):
        token_component.control.serve(raising(TypeError("rust's")), raising(TypeError("litellm's")))
    assert dict(token_component.stats.fallback_reasons) == before


def test_in_shadow_mode_a_rust_error_unlike_litellms_is_counted(token_component):
    litellm_rust.configure("token_counter", mode="shadow", shadow_sample_rate=1.0)
    before = token_component.stats.fallback_reasons.get("rust_error", 0)
    with pytest.raises(TypeError, match="litellm's"):
        token_component.control.serve(raising(ValueError("rust's")), raising(TypeError("litellm's")))
    assert token_component.stats.fallback_reasons.get("rust_error", 0) == before + 1
