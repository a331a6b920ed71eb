"""`litellm-rust demo`: a real `litellm.Router` workload against a loopback server, Python vs Rust.

An embedded OpenAI-compatible chat-completions server (plain and streamed answers) runs on 127.0.0.1
(stdlib `http.server` in a background thread; `litellm-rust bench proxy` runs it as its provider too).
A `litellm.Router` with latency-based routing over 100 deployments (which counts the prompt's tokens
and ranks every deployment's latencies on each pick) sends requests to it, and its picks
(`get_available_deployment`, `select`) are timed on their own. The same workload runs twice in one
process, once with the instrumentor in mode "python" and once in mode "rust", and the per-operation
CPU times are printed side by side, followed by `status()`.

Then the rate-limit scenario: a Router with `enforce_model_rate_limits` and one deployment per
model group (rpm 20 each, so which requests are refused does not depend on a random pick) takes a
burst of 30 requests per group, once per mode on its own groups: the admitted and refused counts
must be equal, and the CPU per request is printed side by side.

Environment:
    LITELLM_RUST_DEMO_REQUESTS     router requests per mode (default 200)
    LITELLM_RUST_DEMO_DEPLOYMENTS  deployments in the "gpt-4o" model group (default 100)
    LITELLM_RUST_DEMO_PICKS        router picks per mode, sync and async each (default 400)
    LITELLM_RUST_DEMO_DIRECT_CALLS direct token_counter calls on the large prompt per mode (default 200)
"""

import asyncio
import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from litellm_rust.cli.progress import Progress

_MODES = ("python", "rust")
_MODEL_GROUP = "gpt-4o"
_LARGE_PROMPT_BYTES = 20_000
_CONCURRENCY = 8
_ANSWER = "Rotterdam."

_CHAT = [
    {"role": "system", "content": "You are a concise assistant for a logistics company."},
    {"role": "user", "content": "Which of our three warehouses has the shortest average dispatch time?"},
    {"role": "assistant", "content": "Rotterdam, at 4.2 hours on average over the last quarter."},
]


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    number = int(value)
    if number < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return number


# -- the loopback server ----------------------------------------------------------------------


class _ChatCompletionsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as litellm's pooled clients expect
    server_version = "litellm-rust-demo/1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._reply(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            self._reply(400, {"error": {"message": "invalid JSON body", "type": "invalid_request_error"}})
            return
        messages = request.get("messages") or []
        prompt_chars = sum(len(m.get("content") or "") for m in messages if isinstance(m.get("content"), str))
        # A rough prompt estimate: the server is not what is measured.
        prompt_tokens = max(1, prompt_chars // 4)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 3, "total_tokens": prompt_tokens + 3}
        head = {
            "id": f"chatcmpl-demo-{self.server.next_id()}",
            "created": int(time.time()),
            "model": request.get("model") or "gpt-4o",
            "system_fingerprint": "fp_demo",
        }
        if request.get("stream"):
            self._reply_stream(head, usage if (request.get("stream_options") or {}).get("include_usage") else None)
            return
        self._reply(
            200,
            {
                **head,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": _ANSWER, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
        )

    def _reply_stream(self, head: dict, usage: dict | None) -> None:
        """The answer as OpenAI's server-sent chunks (role, content, finish, then usage when asked), sent at once
        with a Content-Length so the keep-alive connection stays usable."""
        chunk = {**head, "object": "chat.completion.chunk"}
        deltas = [({"role": "assistant", "content": ""}, None), ({"content": _ANSWER}, None), ({}, "stop")]
        events = [
            {**chunk, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            for delta, finish in deltas
        ]
        if usage is not None:
            events.append({**chunk, "choices": [], "usage": usage})
        payload = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
        self._send(200, "text/event-stream", payload.encode())

    def _reply(self, code: int, body: dict) -> None:
        self._send(code, "application/json", json.dumps(body).encode())

    def _send(self, code: int, content_type: str, payload: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's signature)
        pass


class _DemoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ChatCompletionsHandler)
        self._ids = 0
        self._lock = threading.Lock()

    def next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids


@contextmanager
def _loopback_server():
    server = _DemoServer()
    thread = threading.Thread(target=server.serve_forever, name="litellm-rust-demo-server", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- the workload -----------------------------------------------------------------------------


def _quiet_litellm():
    import litellm

    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "httpx", "openai"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return litellm


def _large_messages() -> list[dict]:
    paragraph = (
        "Shipment {i}: container MSCU{i:07d} left Rotterdam at 06:{m:02d} with 14 pallets of "
        "refrigerated produce; the carrier reports a 3.5% humidity deviation, and the customs "
        "broker asks for the revised commercial invoice (EUR {eur},{cents:02d}) before noon.\n"
    )
    parts, size, i = [], 0, 0
    while size < _LARGE_PROMPT_BYTES:
        part = paragraph.format(i=i, m=i % 60, eur=1000 + 37 * i, cents=(13 * i) % 100)
        parts.append(part)
        size += len(part.encode())
        i += 1
    return [
        {"role": "system", "content": "Summarize the shipment log below for the operations manager."},
        {"role": "user", "content": "".join(parts)},
    ]


def _build_router(port: int, deployments: int):
    from litellm import Router

    model_list = [
        {
            "model_name": _MODEL_GROUP,
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_base": f"http://127.0.0.1:{port}/v1",
                "api_key": "sk-demo",
            },
            "model_info": {"id": f"demo-deployment-{index}"},
        }
        for index in range(deployments)
    ]
    return Router(model_list=model_list, routing_strategy="latency-based-routing", num_retries=0)


async def _router_phase(router, requests: int) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, responses) for `requests` acompletion calls, `_CONCURRENCY` in flight."""
    queue = iter(range(requests))
    answered = 0

    async def worker() -> None:
        nonlocal answered
        for _ in queue:
            response = await router.acompletion(model=_MODEL_GROUP, messages=_CHAT)
            if response.choices and response.choices[0].message.content:
                answered += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(_CONCURRENCY)))
    return time.process_time() - cpu, time.perf_counter() - wall, answered


_LIMITED_GROUPS = 10
_GROUP_RPM = 20
_BURST_PER_GROUP = 30


def _build_limited_router(port: int):
    """One deployment per group and phase (warm-up, python, rust): each phase starts at zero."""
    from litellm import Router

    model_list = [
        {
            "model_name": f"limited-{phase}-{index}",
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_base": f"http://127.0.0.1:{port}/v1",
                "api_key": "sk-demo",
                "rpm": _GROUP_RPM,
            },
            "model_info": {"id": f"limited-{phase}-{index}"},
        }
        for phase in ("warm-python", "warm-rust", *_MODES)
        for index in range(_LIMITED_GROUPS)
    ]
    return Router(model_list=model_list, optional_pre_call_checks=["enforce_model_rate_limits"], num_retries=0)


async def _rate_limited_phase(router, phase: str) -> tuple[float, int, int]:
    """(CPU seconds, admitted, refused) for a burst over every group of `phase`."""
    from litellm import RateLimitError

    groups = [f"limited-{phase}-{index}" for index in range(_LIMITED_GROUPS)]
    queue = iter([group for _ in range(_BURST_PER_GROUP) for group in groups])
    outcomes = {"admitted": 0, "refused": 0}

    async def worker() -> None:
        for group in queue:
            try:
                await router.acompletion(model=group, messages=_CHAT)
                outcomes["admitted"] += 1
            except RateLimitError:
                outcomes["refused"] += 1

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(_CONCURRENCY)))
    return time.process_time() - cpu, outcomes["admitted"], outcomes["refused"]


def _within_one_minute(progress: Progress, seconds_needed: float = 15.0) -> None:
    """litellm's rpm windows are wall-clock minutes: start a burst only when it ends in the same one."""
    left = 60.0 - time.time() % 60.0
    if left < seconds_needed:
        progress(f"waiting {left:.0f}s for the next wall-clock minute (litellm's rpm window)")
        time.sleep(left + 0.05)


def _rate_limit_scenario(port: int, instrumentor, loop, progress: Progress) -> dict[str, tuple[float, int, int]]:
    router = _build_limited_router(port)
    results = {}
    for mode in _MODES:
        progress(
            f"rate-limit scenario, mode {mode}: a burst of {_BURST_PER_GROUP} requests on each of "
            f"{_LIMITED_GROUPS} groups (rpm {_GROUP_RPM})"
        )
        instrumentor.instrument(mode=mode)
        try:
            loop.run_until_complete(_rate_limited_phase(router, f"warm-{mode}"))
            _within_one_minute(progress)
            results[mode] = loop.run_until_complete(_rate_limited_phase(router, mode))
        finally:
            instrumentor.uninstrument()
    return results


def _print_rate_limit_scenario(results: dict[str, tuple[float, int, int]]) -> None:
    (py_cpu, py_admitted, py_refused), (rs_cpu, rs_admitted, rs_refused) = results["python"], results["rust"]
    requests = _LIMITED_GROUPS * _BURST_PER_GROUP
    print()
    print(
        f"rate-limit scenario: {_LIMITED_GROUPS} groups x 1 deployment (rpm {_GROUP_RPM}), "
        f"enforce_model_rate_limits, a burst of {_BURST_PER_GROUP} acompletion requests per group"
    )
    header = ["mode", "admitted", "refused (429)", "CPU µs/request"]
    rows = [
        ["python", str(py_admitted), str(py_refused), f"{py_cpu / requests * 1e6:,.0f}"],
        ["rust", str(rs_admitted), str(rs_refused), f"{rs_cpu / requests * 1e6:,.0f}"],
    ]
    print(_format_table(header, rows))
    same = (py_admitted, py_refused) == (rs_admitted, rs_refused)
    print(f"same admissions: {'yes' if same else 'NO'}; python/rust CPU per request {py_cpu / rs_cpu:.2f}x")


def _pick_phase(router, loop, picks: int) -> tuple[float, float]:
    """CPU seconds for `picks` sync picks and for as many async picks."""
    cpu = time.process_time()
    for _ in range(picks):
        router.get_available_deployment(model=_MODEL_GROUP, messages=_CHAT)
    sync_cpu = time.process_time() - cpu

    async def select_all() -> None:
        for _ in range(picks):
            await router.select(_MODEL_GROUP, {}, messages=_CHAT)

    cpu = time.process_time()
    loop.run_until_complete(select_all())
    return sync_cpu, time.process_time() - cpu


def _direct_phase(litellm, messages: list[dict], calls: int) -> tuple[float, float, set[int]]:
    counts = set()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        counts.add(litellm.token_counter(model=_MODEL_GROUP, messages=messages))
    return time.process_time() - cpu, time.perf_counter() - wall, counts


def _format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(header, widths, strict=True))
        ),
        "  ".join("-" * w for w in widths),
    ]
    for row in rows:
        lines.append(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def run_demo() -> None:
    for name, value in (
        ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
        ("LITELLM_OFFLINE_MODE", "true"),
        ("HF_HUB_OFFLINE", "1"),
    ):
        os.environ.setdefault(name, value)
    requests = _env_int("LITELLM_RUST_DEMO_REQUESTS", 200)
    deployments = _env_int("LITELLM_RUST_DEMO_DEPLOYMENTS", 100)
    picks = _env_int("LITELLM_RUST_DEMO_PICKS", 400)
    direct_calls = _env_int("LITELLM_RUST_DEMO_DIRECT_CALLS", 200)

    progress = Progress("demo")
    litellm = _quiet_litellm()
    from litellm_rust import LiteLLMRustInstrumentor, status

    big_messages = _large_messages()
    big_bytes = sum(len(m["content"].encode()) for m in big_messages)
    instrumentor = LiteLLMRustInstrumentor()
    results = {
        mode: {
            "router_cpu": 0.0,
            "router_wall": 0.0,
            "answered": 0,
            "direct_cpu": 0.0,
            "direct_wall": 0.0,
            "counts": set(),
            "sync_pick_cpu": 0.0,
            "async_pick_cpu": 0.0,
        }
        for mode in _MODES
    }
    # Calls of each component during the timed router phase, by mode.
    router_status = {
        (component, mode): {"rust_calls": 0, "python_calls": 0, "fallbacks": 0}
        for component in ("token_counter", "routing")
        for mode in _MODES
    }
    # Two rounds in alternating order (python, rust, then rust, python), so neither mode always
    # runs first; each round does half the work.
    round_requests = [requests // 2, requests - requests // 2]
    round_direct = [direct_calls // 2, direct_calls - direct_calls // 2]
    round_picks = [picks // 2, picks - picks // 2]
    schedule = [(0, _MODES), (1, tuple(reversed(_MODES)))]

    with _loopback_server() as port:
        router = _build_router(port, deployments)
        loop = asyncio.new_event_loop()
        try:
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
            # Warm up once, uninstrumented: client creation, litellm's lazy imports, tokenizer load.
            progress(f"warm-up, uninstrumented: a Router over {deployments} deployments on 127.0.0.1:{port}")
            loop.run_until_complete(_router_phase(router, _CONCURRENCY))
            litellm.token_counter(model=_MODEL_GROUP, messages=big_messages)
            for round_index, modes in schedule:
                for mode in modes:
                    progress(
                        f"mode {mode} (round {round_index + 1}/{len(schedule)}): "
                        f"{round_requests[round_index]} router requests, "
                        f"{round_direct[round_index]} direct token_counter calls, "
                        f"{round_picks[round_index]} sync and async picks"
                    )
                    instrumentor.instrument(mode=mode)
                    try:
                        # Warm this mode's path (native counter construction) outside the timing.
                        loop.run_until_complete(_router_phase(router, _CONCURRENCY))
                        litellm.token_counter(model=_MODEL_GROUP, messages=big_messages)
                        before = status()
                        router_cpu, router_wall, answered = loop.run_until_complete(
                            _router_phase(router, round_requests[round_index])
                        )
                        after = status()
                        direct_cpu, direct_wall, counts = _direct_phase(
                            litellm, big_messages, round_direct[round_index]
                        )
                        sync_pick_cpu, async_pick_cpu = _pick_phase(router, loop, round_picks[round_index])
                    finally:
                        instrumentor.uninstrument()
                    for (component, counted_mode), calls in router_status.items():
                        if counted_mode == mode:
                            for key in calls:
                                calls[key] += after[component][key] - before[component][key]
                    result = results[mode]
                    result["router_cpu"] += router_cpu
                    result["router_wall"] += router_wall
                    result["answered"] += answered
                    result["direct_cpu"] += direct_cpu
                    result["direct_wall"] += direct_wall
                    result["counts"] |= counts
                    result["sync_pick_cpu"] += sync_pick_cpu
                    result["async_pick_cpu"] += async_pick_cpu
            rate_limited = _rate_limit_scenario(port, instrumentor, loop, progress)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    py, rs = results["python"], results["rust"]

    def per_op(seconds: float, ops: int) -> float:
        return seconds / ops * 1e6

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b > 0 else "n/a"

    router_py, router_rs = per_op(py["router_cpu"], requests), per_op(rs["router_cpu"], requests)
    direct_py, direct_rs = per_op(py["direct_cpu"], direct_calls), per_op(rs["direct_cpu"], direct_calls)
    counts_py, counts_rs = sorted(py["counts"]), sorted(rs["counts"])
    counts_equal = counts_py == counts_rs and len(counts_py) == 1

    print(
        f"litellm Router demo: {deployments} deployments of {_MODEL_GROUP!r}, latency-based-routing, "
        f"loopback server on 127.0.0.1:{port}"
    )
    print(
        f"router: {requests} acompletion requests per mode, {_CONCURRENCY} in flight, two alternating rounds; "
        f"direct: {direct_calls} token_counter calls per mode on a {big_bytes:,}-byte prompt"
    )
    print("CPU time per operation (time.process_time, whole process incl. the loopback server thread)")
    print()
    header = ["phase", "python µs/op", "rust µs/op", "python/rust", "python wall s", "rust wall s", "tokens equal"]
    rows = [
        [
            "router acompletion (3-message chat)",
            f"{router_py:,.0f}",
            f"{router_rs:,.0f}",
            ratio(router_py, router_rs),
            f"{py['router_wall']:.2f}",
            f"{rs['router_wall']:.2f}",
            "-",
        ],
        [
            f"direct token_counter ({big_bytes // 1000} KB prompt)",
            f"{direct_py:,.0f}",
            f"{direct_rs:,.0f}",
            ratio(direct_py, direct_rs),
            f"{py['direct_wall']:.2f}",
            f"{rs['direct_wall']:.2f}",
            "yes" if counts_equal else "NO",
        ],
    ]
    for phase, key in (
        ("router pick, sync (get_available_deployment)", "sync_pick_cpu"),
        ("router pick, async (select)", "async_pick_cpu"),
    ):
        pick_py, pick_rs = per_op(py[key], picks), per_op(rs[key], picks)
        rows.append([phase, f"{pick_py:,.0f}", f"{pick_rs:,.0f}", ratio(pick_py, pick_rs), "-", "-", "-"])
    print(_format_table(header, rows))
    print()
    print(f"direct token counts: python={counts_py} rust={counts_rs}")
    print(f"router responses: python={py['answered']}/{requests} rust={rs['answered']}/{requests}")
    print("component calls during the timed router phase, by mode:")
    for (component, mode), calls in router_status.items():
        print(
            f"  {component:<13} {mode:<6}  rust_calls={calls['rust_calls']}  python_calls={calls['python_calls']}  "
            f"fallbacks={calls['fallbacks']}  (per request: "
            f"{(calls['rust_calls'] + calls['python_calls']) / requests:.2f})"
        )
    _print_rate_limit_scenario(rate_limited)
    print()
    print("status() (cumulative over both modes and warm-ups; read after the final uninstrument()):")
    print(json.dumps(status(), indent=2))
