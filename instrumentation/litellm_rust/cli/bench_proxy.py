"""`litellm-rust bench proxy`: the real litellm proxy CLI, plain vs under `opentelemetry-instrument` with
litellm-rust in mode "rust" and in mode "python", as a team runs it.

Per row (deployments x routing strategy x `enable_pre_call_checks`, one streaming row) a config is written (N
deployments of `openai/gpt-4o` at a loopback provider, a master key, no database) and three proxies start from
the venv (`litellm --config ... --host 127.0.0.1 --num_workers 1`): plain; and through `opentelemetry-instrument`
(exporters `none`) with `OTEL_PYTHON_LITELLM_RUST_MODE=rust` and `=python`. The provider is `litellm-rust demo`'s
loopback server, answering at once, in a process of its own. Each proxy is warmed up, then rounds alternate
between the modes (plain, rust, python, plain, ...): `concurrency` clients send a 3-message chat until the
round's requests are done. A mode's CPU is that of its proxy's process group (/proc `utime+stime`, children
included), read before and after each of its rounds, so neither the clients nor the provider are counted.

Responses are compared as a multiset per mode: status code and JSON body (each server-sent chunk of a stream)
with the fields that differ between any two requests removed (`id` and `created` at the top of a body or chunk);
everything else, usage and `system_fingerprint` included, must equal plain litellm's.

`--profile` samples each proxy's GIL holder with py-spy (100 Hz) during one extra, unmeasured round per mode, and
prints the functions with the most samples (own, and on the stack) per mode; `--profile-dir DIR` keeps py-spy's
collapsed stacks there.
"""

import asyncio
import collections
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from litellm_rust.cli.demo import _CHAT, _format_table
from litellm_rust.cli.progress import Progress

MODES = ("plain", "rust", "python")
_MASTER_KEY = "sk-litellm-rust-bench-proxy"  # the proxy refuses the well-known sk-1234 by default
_MODEL_GROUP = "gpt-4o"
# Fields of a response body (or stream chunk) that differ between any two requests, whoever serves them.
VOLATILE_FIELDS = frozenset({"id", "created"})
_STARTUP_TIMEOUT = 300.0  # one proxy start takes 10-40 s on the shared 2-core machine, three start together
_REQUEST_TIMEOUT = 60.0
_STOP_TIMEOUT = 15.0
_PROFILE_RATE = 100
# On the stack, the first functions are the request's wrapper chain (middleware, the router's entry points).
_TOP_FUNCTIONS = 30
_TOP_OWN = 12
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Row:
    deployments: int
    strategy: str
    pre_call_checks: bool
    stream: bool = False

    @property
    def name(self) -> str:
        """What `--rows` selects it by."""
        checks = "precall" if self.pre_call_checks else "noprecall"
        return f"{self.deployments}-{_SHORT_STRATEGY[self.strategy]}-{checks}" + ("-stream" if self.stream else "")

    @property
    def label(self) -> str:
        checks = "pre-call" if self.pre_call_checks else "no pre-call"
        return f"{self.deployments} {_SHORT_STRATEGY[self.strategy]} {checks}" + (" stream" if self.stream else "")


_SHORT_STRATEGY = {"latency-based-routing": "latency", "simple-shuffle": "shuffle"}


ROWS = (
    *(
        Row(deployments, strategy, checks)
        for deployments in (10, 100)
        for strategy in ("latency-based-routing", "simple-shuffle")
        for checks in (True, False)
    ),
    Row(10, "latency-based-routing", True, stream=True),
)
QUICK_ROWS = ("10-latency-precall", "100-latency-precall")


# -- the pure parts: config, normalisation, CPU accounting, table ----------------------------------


def proxy_config(row: Row, provider_port: int) -> dict:
    """The proxy's config.yaml content for `row`: N deployments of one model group at the loopback provider."""
    model_list = [
        {
            "model_name": _MODEL_GROUP,
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_base": f"http://127.0.0.1:{provider_port}/v1",
                "api_key": "sk-provider",
                # Limits high enough never to refuse, so the pre-call checks have rpm/tpm to read.
                "rpm": 10_000_000,
                "tpm": 10_000_000_000,
            },
            "model_info": {"id": f"bench-deployment-{index}"},
        }
        for index in range(row.deployments)
    ]
    return {
        "model_list": model_list,
        "router_settings": {"routing_strategy": row.strategy, "enable_pre_call_checks": row.pre_call_checks},
        "general_settings": {"master_key": _MASTER_KEY},
    }


def request_body(row: Row) -> dict:
    body = {"model": _MODEL_GROUP, "messages": _CHAT}
    if row.stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def _strip_volatile(document: object) -> object:
    if isinstance(document, dict):
        return {key: value for key, value in document.items() if key not in VOLATILE_FIELDS}
    return document


def normalised_response(status: int, body: str, stream: bool) -> str:
    """One response as a comparable string: the status code and the body's JSON (a stream: each `data:` event's)
    with `VOLATILE_FIELDS` removed at the top of each document; a body that is not JSON is kept as text."""
    if stream and status == 200:
        events = [line[len("data:") :].strip() for line in body.splitlines() if line.startswith("data:")]
        documents = [event if event == "[DONE]" else _strip_volatile(json.loads(event)) for event in events]
        return json.dumps([status, documents], sort_keys=True)
    try:
        document = _strip_volatile(json.loads(body))
    except ValueError:
        document = body
    return json.dumps([status, document], sort_keys=True)


def stat_group_and_ticks(stat: str) -> tuple[int, int]:
    """(process group, CPU clock ticks of the process and its reaped children) from a /proc/<pid>/stat line."""
    # The command name (field 2) is in parentheses and may hold spaces and parentheses: split after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): pgrp is field 5, utime, stime, cutime, cstime are fields 14-17.
    return int(fields[2]), sum(int(value) for value in fields[11:15])


def group_cpu_seconds(group: int, proc: Path = Path("/proc")) -> float:
    """CPU seconds used so far by the live processes of process group `group` (and the children they reaped)."""
    ticks = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended since the listing
            continue
        process_group, process_ticks = stat_group_and_ticks(stat)
        if process_group == group:
            ticks += process_ticks
    return ticks / _CLOCK_TICKS


@dataclass
class ModeResult:
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    responses: collections.Counter = field(default_factory=collections.Counter)

    def add(self, cpu_seconds: float, wall_seconds: float, load: "LoadResult") -> None:
        self.cpu_seconds += cpu_seconds
        self.wall_seconds += wall_seconds
        self.requests += load.requests
        self.errors += load.errors
        self.latencies += load.latencies
        self.responses += load.responses

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds / self.requests * 1e3

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.wall_seconds

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1e3


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator > 0 else "n/a"


def _triple(results: dict[str, ModeResult], value, spec: str) -> str:
    return " / ".join(format(value(results[mode]), spec) for mode in MODES)


def _same_responses(results: dict[str, ModeResult]) -> str:
    differing = [mode for mode in MODES[1:] if results[mode].responses != results["plain"].responses]
    return "yes" if not differing else "NO (" + ", ".join(differing) + ")"


def format_table(measured: list[tuple[Row, dict[str, ModeResult]]]) -> str:
    """One line per row: each mode's numbers as plain / rust / python, and plain's CPU over each mode's."""
    header = [
        "deployments strategy checks",
        "CPU ms/req plain/rust/python",
        "plain/rust",
        "plain/python",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "same responses",
    ]
    lines = []
    for row, results in measured:
        plain = results["plain"].cpu_ms_per_request
        lines.append(
            [
                row.label,
                _triple(results, lambda r: r.cpu_ms_per_request, ".1f"),
                _ratio(plain, results["rust"].cpu_ms_per_request),
                _ratio(plain, results["python"].cpu_ms_per_request),
                _triple(results, lambda r: r.requests_per_second, ".1f"),
                _triple(results, lambda r: r.latency_ms(0.5), ".0f"),
                _triple(results, lambda r: r.latency_ms(0.99), ".0f"),
                _triple(results, lambda r: r.errors, "d"),
                _same_responses(results),
            ]
        )
    return _format_table(header, lines)


def top_functions(collapsed: Iterable[str], limit: int = _TOP_FUNCTIONS) -> tuple[int, list, list]:
    """From py-spy's raw (collapsed) output, `frame;frame;...;leaf count` per line: (samples, the functions
    with the most own samples, the functions on the most stacks), each as (share, function)."""
    own, anywhere, total = collections.Counter(), collections.Counter(), 0
    for line in collapsed:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            anywhere[frame] += int(count)
    if not total:
        return 0, [], []

    def shares(counter: collections.Counter) -> list:
        return [(count / total, function) for function, count in counter.most_common(limit)]

    # Frames on (nearly) every stack are the process's scaffolding (the event loop, uvicorn's run), not work.
    anywhere = collections.Counter({frame: count for frame, count in anywhere.items() if count < 0.9 * total})
    return total, shares(own), shares(anywhere)


# -- processes --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """Its whole process group: SIGTERM, then SIGKILL if it has not ended in time."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=_STOP_TIMEOUT)
        except ProcessLookupError:
            pass
    # Processes of the group that outlived its leader.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def _process(command: list[str], **popen) -> Iterator[subprocess.Popen]:
    # A session (and process group) of its own, so that stopping it stops everything it started.
    process = subprocess.Popen(command, start_new_session=True, **popen)
    try:
        yield process
    finally:
        _stop(process)


def serve_provider() -> None:
    """The provider process: the demo's loopback server until stdin closes (its port on stdout)."""
    from litellm_rust.cli.demo import _loopback_server

    with _loopback_server() as port:
        print(port, flush=True)
        sys.stdin.read()


@contextmanager
def _provider() -> Iterator[int]:
    command = [sys.executable, "-c", "from litellm_rust.cli.bench_proxy import serve_provider; serve_provider()"]
    with _process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as process:
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"the loopback provider did not start (exit code {process.poll()})")
        yield int(line)


def _venv_tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: the bench runs litellm's proxy CLI from the venv it runs in")
    return str(path)


def _proxy_environment(mode: str, base: dict[str, str], event_loop: str = "uvloop") -> dict[str, str]:
    """The proxy's environment: offline, no database, no inherited OpenTelemetry settings; litellm-rust's mode."""
    environment = {
        name: value for name, value in base.items() if not name.startswith("OTEL_") and name != "DATABASE_URL"
    }
    environment.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_OFFLINE_MODE="true", HF_HUB_OFFLINE="1")
    if event_loop == "asyncio":
        # litellm's proxy CLI asks uvicorn for uvloop unless told otherwise.
        environment["LITELLM_EVENT_LOOP"] = "asyncio"
    if mode != "plain":
        environment.update(
            OTEL_TRACES_EXPORTER="none",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_PYTHON_LITELLM_RUST_MODE=mode,
        )
    return environment


def proxy_command(mode: str, config: Path, port: int) -> list[str]:
    litellm = [_venv_tool("litellm"), "--config", str(config), "--port", str(port), "--host", "127.0.0.1"]
    litellm += ["--num_workers", "1"]
    if mode == "plain":
        return litellm
    # `--` so that opentelemetry-instrument does not read litellm's `--config` as an abbreviation of its own flags.
    return [_venv_tool("opentelemetry-instrument"), "--", *litellm]


def event_loop() -> str:
    """The proxy's event loop: uvloop as litellm's CLI asks for it, asyncio's when uvloop is not installed."""
    found = subprocess.run([sys.executable, "-c", "import uvloop"], capture_output=True)
    return "uvloop" if found.returncode == 0 else "asyncio"


@dataclass
class _Proxy:
    mode: str
    port: int
    process: subprocess.Popen
    log: Path

    def failure(self, what: str) -> RuntimeError:
        tail = self.log.read_text(errors="replace").splitlines()[-30:]
        return RuntimeError(f"proxy ({self.mode}) {what}; the end of its log {self.log}:\n" + "\n".join(tail))

    def native_module_loaded(self) -> bool:
        maps = Path(f"/proc/{self.process.pid}/maps").read_text()
        return any(line.endswith("litellm_rust/_native.abi3.so") for line in maps.splitlines())


async def _wait_ready(proxy: _Proxy, client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            raise proxy.failure(f"exited with code {proxy.process.returncode} while starting")
        try:
            response = await client.get(f"http://127.0.0.1:{proxy.port}/health/liveliness", timeout=2.0)
            if response.status_code == 200:
                return
        except httpx.HTTPError:  # not listening yet
            pass
        await asyncio.sleep(0.5)
    raise proxy.failure(f"was not ready after {_STARTUP_TIMEOUT:.0f} s")


# -- the load -------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    responses: collections.Counter = field(default_factory=collections.Counter)


async def _load(
    client: httpx.AsyncClient, port: int, row: Row, requests: int, concurrency: int, deadline: float
) -> LoadResult:
    """`requests` chat completions, `concurrency` in flight; none is started after `deadline` (time.monotonic),
    and the ones never sent count as errors."""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {_MASTER_KEY}"}
    body = request_body(row)
    result = LoadResult(requests=requests)
    tickets = iter(range(requests))

    async def client_loop() -> None:
        for _ in tickets:
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                response = await client.post(url, json=body, headers=headers, timeout=_REQUEST_TIMEOUT)
            except httpx.HTTPError as error:  # counted among the responses, so that it shows as a difference too
                result.responses[json.dumps(["no response", type(error).__name__])] += 1
                continue
            result.latencies.append(time.perf_counter() - started)
            result.responses[normalised_response(response.status_code, response.text, row.stream)] += 1

    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    ok = sum(count for response, count in result.responses.items() if response.startswith("[200,"))
    result.errors = requests - ok
    return result


def _deadline(requests: int) -> float:
    """When a round of `requests` stops sending: at 0.5 requests/s, ~10x slower than the slowest row measured
    here, so only a stuck proxy reaches it."""
    return time.monotonic() + max(60.0, requests * 2.0)


async def _round(
    client: httpx.AsyncClient, proxy: _Proxy, row: Row, requests: int, concurrency: int
) -> tuple[float, float, LoadResult]:
    """(proxy CPU seconds, wall seconds, the load's result) for one round against one proxy."""
    cpu, wall = group_cpu_seconds(proxy.process.pid), time.perf_counter()
    load = await _load(client, proxy.port, row, requests, concurrency, _deadline(requests))
    return group_cpu_seconds(proxy.process.pid) - cpu, time.perf_counter() - wall, load


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("--profile needs py-spy (pip install py-spy, or litellm-rust's [dev] extra)")
    return found


def check_py_spy() -> None:
    """Fail clearly when py-spy cannot read another process here (ptrace refused: a container without
    CAP_SYS_PTRACE, or kernel.yama.ptrace_scope)."""
    with _process([sys.executable, "-c", "import time; time.sleep(60)"]) as target:
        dump = subprocess.run([_py_spy(), "dump", "--pid", str(target.pid)], capture_output=True, text=True, timeout=30)
    if dump.returncode != 0:
        raise RuntimeError(
            "py-spy cannot sample a process here (it needs ptrace: run as root or with CAP_SYS_PTRACE, "
            f"or lower /proc/sys/kernel/yama/ptrace_scope):\n{dump.stderr.strip()}"
        )


async def _profile_round(
    client: httpx.AsyncClient, proxy: _Proxy, row: Row, requests: int, concurrency: int, directory: Path
):
    output = directory / f"profile-{row.name}-{proxy.mode}.txt"
    command = [_py_spy(), "record", "--pid", str(proxy.process.pid), "--rate", str(_PROFILE_RATE)]
    # --gil: only the thread holding the GIL, so that threads waiting for work (anyio's and the executor's) are not
    # counted as busy; native code that released the GIL is not seen.
    command += ["--gil", "--format", "raw", "--function", "--output", str(output), "--duration", "600"]
    with _process(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as recorder:
        await asyncio.sleep(1.0)  # py-spy attaches
        await _load(client, proxy.port, row, requests, concurrency, _deadline(requests))
        # SIGINT: py-spy stops sampling and writes what it has.
        recorder.send_signal(signal.SIGINT)
        _, errors = recorder.communicate(timeout=60)
    if not output.exists():
        raise proxy.failure(f"could not be profiled: {errors.strip()}")
    return top_functions(output.read_text().splitlines())


# -- one row, the whole bench ---------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    requests: int
    rounds: int
    concurrency: int
    warmup: int
    # Where py-spy's collapsed stacks go (profile-<row>-<mode>.txt); None: no profiling.
    profile_dir: Path | None
    event_loop: str


async def _measure_row(
    row: Row, provider_port: int, settings: Settings, directory: Path, progress: Progress
) -> tuple[dict[str, ModeResult], dict]:
    config = directory / f"config-{row.name}.yaml"
    config.write_text(yaml.safe_dump(proxy_config(row, provider_port), sort_keys=False))
    results = {mode: ModeResult() for mode in MODES}
    profiles = {}
    limits = httpx.Limits(max_connections=settings.concurrency + 4, max_keepalive_connections=settings.concurrency + 4)
    with ExitStack() as stack:
        proxies = {}
        for mode in MODES:
            port, log = _free_port(), directory / f"proxy-{row.name}-{mode}.log"
            output = stack.enter_context(log.open("w"))
            process = stack.enter_context(
                _process(
                    proxy_command(mode, config, port),
                    env=_proxy_environment(mode, dict(os.environ), settings.event_loop),
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    cwd=directory,
                )
            )
            proxies[mode] = _Proxy(mode, port, process, log)
        async with httpx.AsyncClient(limits=limits) as client:
            progress(f"{row.label}: starting the plain, rust and python proxies")
            await asyncio.gather(*(_wait_ready(proxy, client) for proxy in proxies.values()))
            for proxy in proxies.values():
                # The OpenTelemetry trap (a missing exporter): litellm-rust silently not loaded.
                if proxy.native_module_loaded() != (proxy.mode != "plain"):
                    raise proxy.failure("does not have litellm-rust loaded as its mode says")
                progress(f"{row.label}: warm-up of the {proxy.mode} proxy ({settings.warmup} requests)")
                await _load(client, proxy.port, row, settings.warmup, settings.concurrency, _deadline(settings.warmup))
            for number in range(1, settings.rounds + 1):
                for mode in MODES:
                    progress(f"{row.label}: {mode}, {settings.requests} requests (round {number}/{settings.rounds})")
                    results[mode].add(
                        *await _round(client, proxies[mode], row, settings.requests, settings.concurrency)
                    )
            if settings.profile_dir is not None:
                for mode in MODES:
                    progress(f"{row.label}: {mode}, profiling {settings.requests} requests with py-spy")
                    profiles[mode] = await _profile_round(
                        client, proxies[mode], row, settings.requests, settings.concurrency, settings.profile_dir
                    )
    return results, profiles


def _print_profiles(row: Row, profiles: dict) -> None:
    for mode in MODES:
        samples, own, anywhere = profiles[mode]
        print(f"\n{row.label}, {mode}: {samples} samples")
        for title, functions in (("own samples", own[:_TOP_OWN]), ("on the stack", anywhere)):
            print(f"  top functions by {title}:")
            for share, function in functions:
                print(f"    {share:>6.1%}  {function}")


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def run_proxy_benchmark(
    quick: bool = False,
    rows: list[str] | None = None,
    requests: int | None = None,
    rounds: int | None = None,
    concurrency: int = 32,
    profile: bool = False,
    profile_dir: Path | None = None,
) -> int:
    """Prints the table (and the profiles); 1 when a mode had an error or a response differing from plain's."""
    names = rows or (list(QUICK_ROWS) if quick else [row.name for row in ROWS])
    selected = [row for row in ROWS if row.name in names]
    settings = Settings(
        requests=requests or (100 if quick else 400),
        rounds=rounds or (1 if quick else 3),
        concurrency=concurrency,
        warmup=2 * concurrency,
        profile_dir=None,
        event_loop=event_loop(),
    )
    if profile or profile_dir:
        check_py_spy()
    progress = Progress("proxy")
    loop = settings.event_loop
    if loop == "asyncio":
        loop += " (uvloop is not installed: pip install 'litellm-rust[proxy]')"
    measured, profiles = [], []
    # SIGTERM (`timeout`, a CI job's end) unwinds like Ctrl-C, so every proxy's group is stopped on the way out.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with tempfile.TemporaryDirectory(prefix="litellm-rust-bench-proxy-") as directory, _provider() as port:
            if profile or profile_dir:
                settings = dataclasses.replace(settings, profile_dir=Path(profile_dir or directory))
                settings.profile_dir.mkdir(parents=True, exist_ok=True)
            for row in selected:
                results, row_profiles = asyncio.run(_measure_row(row, port, settings, Path(directory), progress))
                measured.append((row, results))
                profiles.append((row, row_profiles))
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(
        f"litellm proxy (one worker, master key, no database, event loop {loop}) over N deployments at a loopback "
        f"provider;\n{settings.concurrency} clients, a 3-message chat; {settings.rounds} round(s) of "
        f"{settings.requests} requests per mode, alternating plain, rust, python; CPU of the proxy's processes.\n"
        "latency = latency-based-routing, shuffle = simple-shuffle; pre-call = enable_pre_call_checks"
    )
    print(format_table(measured))
    for row, row_profiles in profiles:
        if row_profiles:
            _print_profiles(row, row_profiles)
    if profile_dir:
        print(f"\npy-spy's collapsed stacks (for flamegraph.pl or speedscope): {profile_dir}")
    clean = all(result.errors == 0 for _, results in measured for result in results.values())
    same = all(_same_responses(results) == "yes" for _, results in measured)
    return 0 if clean and same else 1
