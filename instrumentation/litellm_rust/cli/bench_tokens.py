"""`litellm-rust bench tokens`: litellm's own token counting vs litellm-rust, side by side.

Three implementations run interleaved in one process on the same inputs:
  * litellm Python: litellm's `token_counter` implementation as litellm ships it (the original
    `litellm.litellm_core_utils.token_counter.token_counter`, which `litellm.token_counter` calls);
  * litellm native: the Rust tokenizer bundled with litellm 1.110
    (`litellm.rust_bridge._native.Tokenizer.count(text, fast=True)`), which counts a raw string
    without litellm's chunking or message accounting, so it has no chat row;
  * litellm-rust: `litellm.token_counter` as instrumented (adapter + native path).
Times are medians over interleaved rounds; ratios are what to read, not absolute numbers.
"""

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from litellm_rust.cli.progress import Progress
from litellm_rust.cli.timing import time_per_call

CHAT = [
    {"role": "system", "content": "You are a helpful assistant that answers concisely."},
    {"role": "user", "content": "What is the capital of France, and what is it famous for?"},
    {"role": "assistant", "content": "Paris. It is famous for the Eiffel Tower, the Louvre and its cafés."},
]
_PROSE = (
    "The committee reviewed the quarterly results on 2026-11-27 and didn't find anomalies; revenue grew 12.5% "
    "while costs stayed flat. Über-efficient teams in München and 東京 shipped 3 releases. 🚀\n"
)


def _text(size: int) -> str:
    return (_PROSE * (size // len(_PROSE) + 1))[:size]


@dataclass
class Row:
    model: str
    workload: str
    python: Callable[[], object]
    native: Callable[[], object] | None
    ours: Callable[[], object]


def _measure(row: Row, rounds: int, budget: float) -> dict[str, float | None]:
    samples: dict[str, list[float]] = {"python": [], "native": [], "ours": []}
    for _ in range(rounds):  # interleaved, so drift in machine load hits all three alike
        samples["python"].append(time_per_call(row.python, budget))
        if row.native is not None:
            samples["native"].append(time_per_call(row.native, budget))
        samples["ours"].append(time_per_call(row.ours, budget))
    return {name: statistics.median(values) if values else None for name, values in samples.items()}


def _rows(python_counter, ours_counter, native_tokenizer, batch_counter) -> list[Row]:
    rows = []
    short_texts = [f"request {i}: summarize ticket #{i * 7} about login failures" for i in range(1000)]
    for model, encoding in (("gpt-4o", "o200k_base"), ("gpt-3.5-turbo", "cl100k_base")):
        native = native_tokenizer(encoding)
        rows.append(
            Row(
                model,
                "3-message chat",
                lambda m=model: python_counter(model=m, messages=CHAT),
                None,
                lambda m=model: ours_counter(model=m, messages=CHAT),
            )
        )
        for name, text in (
            ("4 KB text", _text(4096)),
            ("100 KB text", _text(100_000)),
            ('100 KB of "a"', "a" * 100_000),
        ):
            rows.append(
                Row(
                    model,
                    name,
                    lambda m=model, t=text: python_counter(model=m, text=t),
                    (lambda t=text, n=native: n.count(t, fast=True)) if native else None,
                    lambda m=model, t=text: ours_counter(model=m, text=t),
                )
            )
        rows.append(
            Row(
                model,
                "batch of 1,000 short texts",
                lambda m=model: [python_counter(model=m, text=t) for t in short_texts],
                (lambda n=native: [n.count(t, fast=True) for t in short_texts]) if native else None,
                lambda m=model: batch_counter(m, short_texts),
            )
        )
    return rows


def _native_tokenizer_factory():
    try:
        from litellm.rust_bridge._native import Tokenizer
    except ImportError:
        return lambda encoding: None
    return Tokenizer.from_tiktoken


def _format_us(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e6:,.1f}"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    return "n/a" if numerator is None or denominator is None else f"{numerator / denominator:.1f}x"


def run_token_benchmark(quick: bool = False) -> list[dict]:
    import litellm

    from litellm_rust import LiteLLMRustInstrumentor, count_tokens_batch
    from litellm_rust.components import components

    progress = Progress("tokens")
    litellm.suppress_debug_info = True
    component = components()["token_counter"]
    python_counter = component.reference
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        ours_counter = litellm.token_counter
        rows = _rows(python_counter, ours_counter, _native_tokenizer_factory(), count_tokens_batch)
        rounds, budget = (3, 0.05) if quick else (7, 0.2)
        results = []
        header = (
            f"{'model':<14} {'workload':<27} {'litellm py µs':>14} {'litellm native µs':>18} {'litellm-rust µs':>16} "
            f"{'py/ours':>8} {'native/ours':>12} {'ours==py':>9} {'native==py':>11}"
        )
        print(header)
        print("-" * len(header))
        for number, row in enumerate(rows, 1):
            progress(f"{row.model}, {row.workload}: litellm py, litellm native, litellm-rust ({number}/{len(rows)})")
            times = _measure(row, rounds, budget)
            expected = row.python()
            native_equal = "n/a" if row.native is None else str(row.native() == expected)
            result = {
                "model": row.model,
                "workload": row.workload,
                "python_us": times["python"] * 1e6,
                "native_us": None if times["native"] is None else times["native"] * 1e6,
                "ours_us": times["ours"] * 1e6,
                "ours_equals_python": row.ours() == expected,
                "native_equals_python": native_equal,
            }
            results.append(result)
            print(
                f"{row.model:<14} {row.workload:<27} {_format_us(times['python']):>14} {_format_us(times['native']):>18} "
                f"{_format_us(times['ours']):>16} {_ratio(times['python'], times['ours']):>8} "
                f"{_ratio(times['native'], times['ours']):>12} {str(result['ours_equals_python']):>9} {native_equal:>11}"
            )
        for model in ("gpt-4o", "gpt-3.5-turbo"):
            by_workload = {r["workload"]: r for r in results if r["model"] == model}
            pathological = by_workload['100 KB of "a"']["ours_us"] / by_workload["100 KB text"]["ours_us"]
            print(f'{model}: litellm-rust time on 100 KB of "a" / on 100 KB text = {pathological:.2f}')
    finally:
        instrumentor.uninstrument()
    progress(f"instrumentation overhead per call: native count vs instrumented, telemetry off and on ({rounds} rounds)")
    _print_overhead(instrumentor, component, rounds, budget)
    return results


def _print_overhead(instrumentor, component, rounds: int, budget: float) -> None:
    """The instrumentation's own cost per call: the replacement function and control plane on top
    of the native count, with telemetry off (no-op providers, nothing sampled) and on (SDK meter
    and tracer providers, the default 1% of calls timed)."""
    import litellm

    counter = component.profile("gpt-4o")
    variants: dict[str, dict] = {"telemetry off": {"timing_sample_rate": 0.0}}
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider

        variants["telemetry on (SDK, 1% timed)"] = {
            "meter_provider": MeterProvider(metric_readers=[InMemoryMetricReader()]),
            "tracer_provider": TracerProvider(),
        }
    except ImportError:
        pass  # the SDK is a test dependency; without it only the no-op row is measured
    samples: dict[str, list[float]] = {name: [] for name in ("native", *variants)}
    for _ in range(rounds):
        samples["native"].append(time_per_call(lambda: counter.count(None, CHAT, False, None, None, False), budget))
        for name, settings in variants.items():
            instrumentor.instrument(**settings)
            try:
                samples[name].append(
                    time_per_call(lambda: litellm.token_counter(model="gpt-4o", messages=CHAT), budget)
                )
            finally:
                instrumentor.uninstrument()
    native = statistics.median(samples["native"])
    print()
    print("instrumentation overhead per call, 3-message chat, gpt-4o (median of interleaved rounds):")
    print(f"  native TokenCounter.count alone          {native * 1e9:>8,.0f} ns")
    for name in variants:
        extra = statistics.median(samples[name]) - native
        print(f"  litellm.token_counter, {name:<30} {extra * 1e9:>+8,.0f} ns")
