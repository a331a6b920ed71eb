"""The long-running tools print a progress line per phase on stderr; their tables stay on stdout."""

import re

from litellm_rust.cli import bench_tokens
from litellm_rust.cli.progress import Progress

PROGRESS_LINE = re.compile(r"\[ *\d+\.\ds\] tokens: ")


def test_a_progress_line_says_the_elapsed_time_the_tool_and_what_it_measures(capsys):
    readings = iter([100.0, 112.34])
    Progress("routing", clock=lambda: next(readings))("latency-based-routing n=100 (round 3/5)")
    captured = capsys.readouterr()
    assert captured.err == "[  12.3s] routing: latency-based-routing n=100 (round 3/5)\n"
    assert captured.out == ""


def test_a_worker_counts_from_its_parents_start(capsys):
    Progress("routing", started=10.0, clock=lambda: 70.0)("in the worker")
    assert capsys.readouterr().err == "[  60.0s] routing: in the worker\n"


def test_bench_tokens_prints_progress_to_stderr_and_its_table_to_stdout(monkeypatch, capsys):
    def one_call(function, budget):
        # One call per measurement instead of a time budget: what is checked is where the lines go.
        function()
        return 1e-6

    monkeypatch.setattr(bench_tokens, "time_per_call", one_call)
    bench_tokens.run_token_benchmark(quick=True)
    captured = capsys.readouterr()
    table = captured.out.splitlines()
    assert table[0].split()[:2] == ["model", "workload"]
    assert table[2].startswith("gpt-4o         3-message chat")
    assert not [line for line in table if PROGRESS_LINE.match(line)]
    progress = captured.err.splitlines()
    assert all(PROGRESS_LINE.match(line) for line in progress), progress
    assert [PROGRESS_LINE.sub("", line) for line in progress[:2]] == [
        "gpt-4o, 3-message chat: litellm py, litellm native, litellm-rust (1/10)",
        "gpt-4o, 4 KB text: litellm py, litellm native, litellm-rust (2/10)",
    ]
    assert PROGRESS_LINE.sub("", progress[-1]).startswith("instrumentation overhead per call")
    assert len(progress) == 11
