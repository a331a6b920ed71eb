"""The command line's tools live in `litellm_rust.cli`, which only `litellm_rust.__main__` imports, one
module per subcommand when it runs; no runtime module imports them, at import time or later."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from imports import MODULES, imported_modules
from litellm_rust.__main__ import main
from litellm_rust.components import COMPONENT_NAMES
from servers import require_tool

CLI = "litellm_rust.cli"


def _runtime_modules() -> dict[str, Path]:
    """Every module of the package but the command line (`__main__` and the `cli` subpackage)."""
    return {
        name: path
        for name, path in MODULES.items()
        if not (name == CLI or name.startswith(f"{CLI}.") or name == "litellm_rust.__main__")
    }


def test_the_scan_sees_the_runtime_modules_and_the_command_lines_imports():
    modules = _runtime_modules()
    assert {"litellm_rust", "litellm_rust._control", "litellm_rust.components"} <= modules.keys()
    assert not any(name.startswith(CLI) or name == "litellm_rust.__main__" for name in modules)
    main_imports = imported_modules("litellm_rust.__main__")
    assert {f"{CLI}.bench_tokens", f"{CLI}.bench_ratelimit", f"{CLI}.bench_routing", f"{CLI}.demo"} <= main_imports


def test_no_runtime_module_imports_the_command_line_tools():
    offenders = {
        module: sorted(name for name in imported_modules(module) if name == CLI or name.startswith(f"{CLI}."))
        for module in _runtime_modules()
    }
    assert {module: names for module, names in offenders.items() if names} == {}


def test_importing_every_runtime_module_loads_no_command_line_tool():
    program = (
        "import importlib, json, sys\n"
        f"for name in {sorted(_runtime_modules())!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout
    )
    assert "litellm_rust.components" in loaded
    assert [name for name in loaded if name == CLI or name.startswith(f"{CLI}.")] == []


@pytest.mark.parametrize(
    ("argv", "module", "function", "arguments"),
    [
        (["bench", "tokens"], "bench_tokens", "run_token_benchmark", {"quick": False}),
        (["bench", "ratelimit", "--quick"], "bench_ratelimit", "run_ratelimit_benchmark", {"quick": True}),
        (["bench", "routing", "--quick"], "bench_routing", "run_routing_benchmark", {"quick": True}),
        (["demo"], "demo", "run_demo", {}),
    ],
)
def test_each_subcommand_runs_its_tool(monkeypatch, argv, module, function, arguments):
    tool = importlib.import_module(f"{CLI}.{module}")
    calls = []
    monkeypatch.setattr(tool, function, lambda **kwargs: calls.append(kwargs))
    assert main(argv) == 0
    assert calls == [arguments]


def test_the_token_benchmarks_overhead_rows_measure_the_native_count(capsys, token_component):
    """The overhead table calls the native counter directly: its call must match the native API."""
    from litellm_rust import LiteLLMRustInstrumentor
    from litellm_rust.cli.bench_tokens import _print_overhead

    _print_overhead(LiteLLMRustInstrumentor(), token_component, rounds=1, budget=0.001)
    printed = capsys.readouterr().out
    assert "native TokenCounter.count alone" in printed
    assert "litellm.token_counter, telemetry off" in printed


def test_the_soak_tool_runs_both_modes_and_reports_every_component():
    require_tool("redis-server")
    completed = subprocess.run(
        [sys.executable, "-m", "litellm_rust", "soak", "--minutes", "0.05", "--deployments", "3", "--interval", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = completed.stderr
    assert "mode rust" in report and "mode shadow" in report, report
    assert all(f"{name} rust=" in report for name in COMPONENT_NAMES), report
    reports = [line for line in report.splitlines() if " rss " in line]
    assert reports and all("errors 0 " in line for line in reports), report
