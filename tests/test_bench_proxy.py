"""`litellm-rust bench proxy`: its config, response normalisation, CPU accounting, table and profile summary,
and one tiny real run of the three proxies (~1 minute here: three litellm proxies start, 20 requests each)."""

import asyncio
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from litellm_rust.__main__ import main
from litellm_rust.cli import bench_proxy
from litellm_rust.cli.bench_proxy import (
    ROWS,
    ModeResult,
    Row,
    format_table,
    group_cpu_seconds,
    normalised_response,
    proxy_command,
    proxy_config,
    stat_group_and_ticks,
    top_functions,
)
from litellm_rust.cli.demo import _loopback_server
from litellm_rust.cli.progress import Progress

LATENCY_10 = Row(10, "latency-based-routing", True)


# -- config -----------------------------------------------------------------------------------------


def test_the_config_has_n_deployments_of_one_group_at_the_loopback_provider_and_no_database():
    config = proxy_config(Row(100, "simple-shuffle", False), provider_port=4321)
    deployments = config["model_list"]
    assert len(deployments) == 100
    assert len({deployment["model_info"]["id"] for deployment in deployments}) == 100
    assert {deployment["model_name"] for deployment in deployments} == {"gpt-4o"}
    assert {deployment["litellm_params"]["api_base"] for deployment in deployments} == {"http://127.0.0.1:4321/v1"}
    assert config["router_settings"] == {"routing_strategy": "simple-shuffle", "enable_pre_call_checks": False}
    assert config["general_settings"]["master_key"] not in ("", "sk-1234")
    assert "database_url" not in config["general_settings"]


def test_the_rows_are_both_sizes_strategies_and_check_settings_plus_one_streaming_row():
    plain = {(row.deployments, row.strategy, row.pre_call_checks) for row in ROWS if not row.stream}
    assert plain == {
        (n, strategy, checks)
        for n in (10, 100)
        for strategy in ("latency-based-routing", "simple-shuffle")
        for checks in (True, False)
    }
    assert [row.name for row in ROWS if row.stream] == ["10-latency-precall-stream"]
    assert len({row.name for row in ROWS}) == len(ROWS)
    assert set(bench_proxy.QUICK_ROWS) <= {row.name for row in ROWS}


def test_the_instrumented_modes_start_through_opentelemetry_instrument_with_exporters_off(monkeypatch):
    plain = proxy_command("plain", Path("c.yaml"), 4000)
    rust = proxy_command("rust", Path("c.yaml"), 4000)
    assert Path(plain[0]).name == "litellm" and "--num_workers" in plain
    assert Path(rust[0]).name == "opentelemetry-instrument" and rust[1] == "--" and rust[2:] == plain
    base = {"OTEL_PYTHON_LITELLM_RUST_MODE": "shadow", "DATABASE_URL": "postgres://x", "PATH": "/bin"}
    assert bench_proxy._proxy_environment("plain", base) == {
        "PATH": "/bin",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_OFFLINE_MODE": "true",
        "HF_HUB_OFFLINE": "1",
    }
    python = bench_proxy._proxy_environment("python", base)
    assert "LITELLM_EVENT_LOOP" not in python
    assert bench_proxy._proxy_environment("rust", base, "asyncio")["LITELLM_EVENT_LOOP"] == "asyncio"
    assert python["OTEL_PYTHON_LITELLM_RUST_MODE"] == "python" and "DATABASE_URL" not in python
    assert {python[f"OTEL_{signal}_EXPORTER"] for signal in ("TRACES", "METRICS", "LOGS")} == {"none"}


# -- normalisation ------------------------------------------------------------------------------------


def _completion(**changes) -> str:
    body = {
        "id": "chatcmpl-1",
        "created": 1,
        "model": "gpt-4o",
        "system_fingerprint": "fp_demo",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Rotterdam."}}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 3, "total_tokens": 43},
    }
    return json.dumps({**body, **changes})


def test_responses_differing_only_in_id_and_created_are_equal():
    assert normalised_response(200, _completion(), False) == normalised_response(
        200, _completion(id="chatcmpl-2", created=2), False
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hamburg."}}]},
        {"usage": {"prompt_tokens": 41, "completion_tokens": 3, "total_tokens": 44}},
        {"system_fingerprint": "fp_other"},
        {"model": "gpt-4o-mini"},
        {"extra": None},
    ],
)
def test_any_other_difference_in_the_body_is_kept(changes):
    assert normalised_response(200, _completion(), False) != normalised_response(200, _completion(**changes), False)


def test_the_status_code_is_part_of_the_response_and_a_non_json_body_is_kept_as_text():
    assert normalised_response(200, _completion(), False) != normalised_response(500, _completion(), False)
    assert normalised_response(502, "Bad Gateway", False) == json.dumps([502, "Bad Gateway"])


def _sse(*events: dict) -> str:
    return "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"


def test_a_stream_is_compared_event_by_event_without_ids_and_created():
    first = _sse({"id": "a", "created": 1, "choices": [{"delta": {"content": "Rotter"}}]}, {"id": "a", "created": 1})
    second = _sse({"id": "b", "created": 2, "choices": [{"delta": {"content": "Rotter"}}]}, {"id": "b", "created": 3})
    other = _sse({"id": "a", "created": 1, "choices": [{"delta": {"content": "Hamburg"}}]}, {"id": "a", "created": 1})
    assert normalised_response(200, first, True) == normalised_response(200, second, True)
    assert normalised_response(200, first, True) != normalised_response(200, other, True)
    assert json.loads(normalised_response(200, first, True))[1][-1] == "[DONE]"


def test_the_demo_server_streams_the_answer_it_gives_whole():
    """The provider's streamed chunks carry the same answer and usage as its plain reply."""
    body = bench_proxy.request_body(Row(10, "latency-based-routing", True, stream=True))
    with _loopback_server() as port:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        whole = httpx.post(url, json={**body, "stream": False}).json()
        streamed = httpx.post(url, json=body)
    assert streamed.headers["content-type"] == "text/event-stream"
    events = json.loads(normalised_response(200, streamed.text, True))[1]
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "Rotterdam."
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["usage"] == whole["usage"]


# -- CPU accounting -------------------------------------------------------------------------------------


def _stat(pid: int, command: str, group: int, utime: int, stime: int, cutime: int = 0, cstime: int = 0) -> str:
    # Fields 3-13 (state .. cmajflt), then utime, stime, cutime, cstime, then the rest.
    return (
        f"{pid} ({command}) S 1 {group} {group} 0 -1 4194560 100 0 0 0 "
        f"{utime} {stime} {cutime} {cstime} 20 0 1 0 100 1000 10\n"
    )


def test_a_stat_line_gives_the_process_group_and_its_cpu_ticks_whatever_the_command_name():
    assert stat_group_and_ticks(_stat(7, "python", 7, 120, 30, 5, 1)) == (7, 156)
    assert stat_group_and_ticks(_stat(8, "a (b) c)", 3, 1, 2)) == (3, 3)


def test_the_group_cpu_is_the_sum_over_the_groups_processes_only(tmp_path):
    ticks = os.sysconf("SC_CLK_TCK")
    for pid, group, utime, stime in ((100, 100, ticks, ticks), (101, 100, 2 * ticks, 0), (102, 555, 9 * ticks, 0)):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(_stat(pid, "litellm", group, utime, stime))
    (tmp_path / "self").mkdir()  # /proc's non-process entries are skipped
    (tmp_path / "103").mkdir()  # a process that ended between the listing and the read
    assert group_cpu_seconds(100, proc=tmp_path) == 4.0
    assert group_cpu_seconds(555, proc=tmp_path) == 9.0


def test_the_group_cpu_of_a_real_process_group_counts_its_child():
    """A leader that only waits and a child that spins: the child's CPU is in the group's."""
    spin = "import time; end = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    leader = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {spin!r}]).wait(); sys.stdin.read()"
    with subprocess.Popen([sys.executable, "-c", leader], stdin=subprocess.PIPE, start_new_session=True) as process:
        try:
            # Live, the child is in the group; reaped, its CPU is in the leader's cutime.
            deadline = time.monotonic() + 60
            while group_cpu_seconds(process.pid) < 0.3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert group_cpu_seconds(process.pid) >= 0.3
        finally:
            process.stdin.close()
            process.wait(timeout=30)


# -- the table and the profile summary ---------------------------------------------------------------------


def _mode(cpu: float, body: str, errors: int = 0) -> ModeResult:
    result = ModeResult(cpu_seconds=cpu, wall_seconds=2.0, requests=100, errors=errors)
    result.latencies = [i / 1000 for i in range(1, 101)]
    result.responses = collections.Counter({normalised_response(200, body, False): 100 - errors})
    return result


def test_the_table_has_each_modes_numbers_and_plains_cpu_over_each_modes():
    results = {"plain": _mode(4.0, _completion()), "rust": _mode(2.0, _completion()), "python": _mode(4.0, "x", 1)}
    table = format_table([(LATENCY_10, results)])
    line = table.splitlines()[-1]
    assert line.startswith("10 latency pre-call")
    assert "40.0 / 20.0 / 40.0" in line and "2.00x" in line and "1.00x" in line
    assert "50.0 / 50.0 / 50.0" in line  # requests per second
    assert "51 / 51 / 51" in line and "100 / 100 / 100" in line  # p50 and p99 in ms
    assert "0 / 0 / 1" in line and line.endswith("NO (python)")


def test_the_profile_summary_counts_own_and_stack_samples_and_drops_the_scaffolding():
    collapsed = [
        "run (uvicorn/main.py:1);handle (app.py:5);model_info (router.py:9) 6",
        "run (uvicorn/main.py:1);handle (app.py:5) 3",
        "run (uvicorn/main.py:1);validate (pydantic.py:2) 3",
        "",
    ]
    total, own, anywhere = top_functions(collapsed, limit=2)
    assert total == 12
    assert own == [(0.5, "model_info (router.py:9)"), (0.25, "handle (app.py:5)")]
    # `run` is on every stack: left out.
    assert anywhere == [(0.75, "handle (app.py:5)"), (0.5, "model_info (router.py:9)")]


# -- the command line --------------------------------------------------------------------------------------


def test_the_command_passes_its_options_and_returns_the_benchs_exit_code(monkeypatch):
    calls = []
    monkeypatch.setattr(bench_proxy, "run_proxy_benchmark", lambda **kwargs: calls.append(kwargs) or 1)
    argv = ["bench", "proxy", "--rows", "100-shuffle-noprecall,10-latency-precall-stream", "--requests", "50"]
    assert main(argv + ["--rounds", "2", "--profile"]) == 1
    assert calls == [
        {
            "quick": False,
            "rows": ["100-shuffle-noprecall", "10-latency-precall-stream"],
            "requests": 50,
            "rounds": 2,
            "concurrency": 32,
            "profile": True,
            "profile_dir": None,
        }
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "proxy", "--rows", "10-nothing"],
        ["bench", "proxy", "--requests", "0"],
        ["bench", "tokens", "--profile"],
        ["bench", "routing", "--profile-dir", "profiles"],
    ],
)
def test_the_command_refuses_unknown_rows_bad_counts_and_proxy_options_elsewhere(argv):
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2


# -- one tiny real run -------------------------------------------------------------------------------------


def test_each_mode_serves_every_request_with_plain_litellms_responses(tmp_path):
    """Three real proxies (10 deployments, latency-based routing, pre-call checks), 20 requests each: no error,
    litellm-rust loaded in the instrumented ones only (checked by the bench), the same responses as plain."""
    settings = bench_proxy.Settings(
        requests=20, rounds=1, concurrency=4, warmup=4, profile_dir=None, event_loop=bench_proxy.event_loop()
    )
    with bench_proxy._provider() as port:
        results, profiles = asyncio.run(
            bench_proxy._measure_row(LATENCY_10, port, settings, tmp_path, Progress("test"))
        )
    assert profiles == {}
    for mode in bench_proxy.MODES:
        assert (results[mode].requests, results[mode].errors, len(results[mode].latencies)) == (20, 0, 20), mode
        assert results[mode].responses == results["plain"].responses, mode
        assert results[mode].cpu_seconds > 0, mode
    ((response, count),) = results["plain"].responses.items()
    assert count == 20 and json.loads(response)[1]["choices"][0]["message"]["content"] == "Rotterdam."
