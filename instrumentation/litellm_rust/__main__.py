"""`litellm-rust` command line: `bench tokens`, `bench ratelimit`, `bench routing`, `bench proxy`, `demo`, `status`,
`export grafana|prometheus-rules|alertmanager DIR`, `doctor`, `soak`."""

import argparse
import json
import os
import sys
from pathlib import Path


def _offline() -> None:
    # Nothing may download at run time: litellm's cost map and HF tokenizers stay local.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return number


def _proxy_rows(text: str) -> list[str]:
    from litellm_rust.cli.bench_proxy import ROWS

    names, known = [name.strip() for name in text.split(",") if name.strip()], [row.name for row in ROWS]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown rows {unknown}; the rows are {', '.join(known)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="litellm-rust", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("bench", help="measure Rust against litellm's own functions, side by side")
    bench.add_argument("component", choices=["tokens", "ratelimit", "routing", "proxy"])
    bench.add_argument("--quick", action="store_true", help="fewer repetitions (noisier ratios)")
    proxy_only = bench.add_argument_group("proxy", "options of `bench proxy` only")
    proxy_only.add_argument("--rows", type=_proxy_rows, help="comma-separated rows (default: all; --quick: two)")
    proxy_only.add_argument("--requests", type=_positive, help="requests per round and mode")
    proxy_only.add_argument("--rounds", type=_positive, help="measured rounds per mode")
    proxy_only.add_argument("--concurrency", type=_positive, help="concurrent clients (default 32)")
    proxy_only.add_argument("--profile", action="store_true", help="py-spy's top functions per mode, per row")
    proxy_only.add_argument("--profile-dir", type=Path, metavar="DIR", help="--profile, keeping py-spy's stacks in DIR")
    commands.add_parser("demo", help="a litellm Router workload on a loopback server, Rust vs Python")
    commands.add_parser("status", help="print status() after instrumenting")
    export = commands.add_parser(
        "export", help="write the packaged Grafana dashboards, Prometheus alert rules or Alertmanager config into DIR"
    )
    # The names of the package's assets folders (litellm_rust/assets/<what>).
    export.add_argument("what", choices=["grafana", "prometheus-rules", "alertmanager"])
    export.add_argument("directory", metavar="DIR", type=Path, help="created if missing")
    export.add_argument("--force", action="store_true", help="overwrite files that exist with other content")
    soak = commands.add_parser("soak", help="a long Router workload in rust then shadow mode; RSS, errors, mismatches")
    soak.add_argument("--minutes", type=float, default=10.0, help="how long (half in each mode)")
    soak.add_argument("--deployments", type=int, default=20, help="deployments per router")
    soak.add_argument("--interval", type=float, default=30.0, help="seconds between report lines")
    doctor = commands.add_parser("doctor", help="check the installation and configuration (exit 1 on a problem)")
    doctor.add_argument("--json", action="store_true", help="the findings as JSON")
    args = parser.parse_args(argv)
    _offline()
    proxy_options = ("rows", "requests", "rounds", "concurrency", "profile", "profile_dir")
    if args.command == "bench" and args.component != "proxy" and any(getattr(args, o) for o in proxy_options):
        parser.error("--rows, --requests, --rounds, --concurrency and --profile(-dir) are options of `bench proxy`")

    if args.command == "bench" and args.component == "tokens":
        from litellm_rust.cli.bench_tokens import run_token_benchmark

        run_token_benchmark(quick=args.quick)
    elif args.command == "bench" and args.component == "ratelimit":
        from litellm_rust.cli.bench_ratelimit import run_ratelimit_benchmark

        run_ratelimit_benchmark(quick=args.quick)
    elif args.command == "bench" and args.component == "proxy":
        from litellm_rust.cli.bench_proxy import run_proxy_benchmark

        return run_proxy_benchmark(
            quick=args.quick,
            rows=args.rows,
            requests=args.requests,
            rounds=args.rounds,
            concurrency=args.concurrency or 32,
            profile=args.profile,
            profile_dir=args.profile_dir,
        )
    elif args.command == "bench":
        from litellm_rust.cli.bench_routing import run_routing_benchmark

        run_routing_benchmark(quick=args.quick)
    elif args.command == "demo":
        from litellm_rust.cli.demo import run_demo

        run_demo()
    elif args.command == "export":
        from litellm_rust.cli.export import run_export

        return run_export(args.what, args.directory, force=args.force)
    elif args.command == "soak":
        from litellm_rust.cli.soak import run_soak

        return run_soak(args.minutes, args.deployments, args.interval)
    elif args.command == "doctor":
        from litellm_rust.cli.doctor import run_doctor

        return run_doctor(as_json=args.json)
    else:
        from litellm_rust import LiteLLMRustInstrumentor, status

        LiteLLMRustInstrumentor().instrument()
        json.dump(status(), sys.stdout, indent=2)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
