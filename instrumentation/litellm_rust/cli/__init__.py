"""The `litellm-rust` command line's tools: the benchmarks (`bench tokens|ratelimit|routing`) and the demo.

They measure and show the runtime; the runtime never imports them. Only `litellm_rust.__main__` does,
one module per subcommand when that subcommand runs (`tests/test_cli.py` checks both).
"""
