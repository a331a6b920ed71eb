"""Everything the README and the docs/ pages tell a user to run, open or look for exists.

What a page mentions is read from its code: inline `code` spans and ```sh blocks (other blocks are
program output or Python), and, for environment variables, anywhere in the page:
  * repository paths (`instrumentation/...`, `tests/...`, `rust/...`, `dashboards/...`, `exporters/...`,
    `docs/...`, `Makefile`) exist; a glob matches something;
  * `make <target>` names a target of the Makefile;
  * `litellm-rust <command ...>` is accepted by the command's own argument parser (placeholders such
    as `DIR` filled in);
  * `litellm_rust.<name>` is a telemetry name (metric, attribute, span or event) the package spells as
    a string, or else something importable from the package (`litellm_rust.status`); the Prometheus
    form `litellm_rust_<name>` is a telemetry name with its dots as underscores and Prometheus's suffixes;
  * `OTEL_PYTHON_LITELLM_RUST_*` variables and `--litellm_rust_*` flags are in the generated list of
    `litellm_rust.environment_variables`.
Every link between the pages and into the repository resolves, an anchor to a heading of its page.
"""

import argparse
import ast
import contextlib
import importlib
import io
import re
from collections import defaultdict
from pathlib import Path
from unittest import mock

import litellm_rust
import pytest
from litellm_rust import environment_variables
from litellm_rust.__main__ import main
from test_alert_rules import github_anchors

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "instrumentation" / "litellm_rust"
README = ROOT / "README.md"
DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOC_PAGES]

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SHELL = {"sh", "bash", "shell", "console"}
_REPO_PATH = re.compile(r"(?:instrumentation|tests|rust|dashboards|exporters|docs)/[\w./*-]*|Makefile")
_PLACEHOLDER = re.compile(r"[A-Z][A-Z_]*|<[^>]+>")
_PROMETHEUS_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_seconds")


class Page:
    """One markdown page, split into what the checks read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path.relative_to(ROOT))
        self.text = path.read_text(encoding="utf-8")
        fences = _FENCE.findall(self.text)
        self.prose = _FENCE.sub("", self.text)
        spans = [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", self.prose)]
        shell = [line.split(" #")[0] for language, body in fences if language in _SHELL for line in body.splitlines()]
        self.commands = spans + shell  # where a command, path or flag is written
        self.code = spans + [body for _, body in fences]  # where a Python or telemetry name is written


def _pages() -> list[Page]:
    return [Page(path) for path in PAGES]


def _missing(found: dict[str, set[str]], exists) -> dict[str, list[str]]:
    """The names that do not exist -> the pages that mention them."""
    return {name: sorted(pages) for name, pages in sorted(found.items()) if not exists(name)}


def _collect(pattern: re.Pattern, where: str, group: int = 0) -> dict[str, set[str]]:
    found = defaultdict(set)
    for page in _pages():
        for text in getattr(page, where):
            for match in pattern.finditer(text):
                found[" ".join(match[group].split())].add(page.name)
    return found


def test_the_docs_pages_exist_and_the_readme_links_every_one():
    assert {page.stem for page in DOC_PAGES} >= {
        "components",
        "configuration",
        "telemetry",
        "runbooks",
        "benchmarks",
        "known-limits",
        "architecture",
    }
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)", README.read_text(encoding="utf-8")))
    assert sorted(str(page.relative_to(ROOT)) for page in DOC_PAGES if str(page.relative_to(ROOT)) not in linked) == []


def test_the_readme_reads_in_five_minutes():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 220


# -- paths and links ----------------------------------------------------------------------------------------


def _repo_paths() -> dict[str, set[str]]:
    found = defaultdict(set)
    for page in _pages():
        for text in page.commands:
            for token in re.split(r"[\s=(),'\"]+", text):
                token = token.rstrip(".,:;")
                if _REPO_PATH.fullmatch(token):
                    found[token].add(page.name)
    return found


def test_every_repository_path_the_docs_mention_exists():
    found = _repo_paths()
    assert {
        "exporters/README.md",
        "tests/test_reasons.py",
        "instrumentation/litellm_rust/assets/grafana/*.json",
    } <= found.keys()
    assert _missing(found, lambda path: any(ROOT.glob(path))) == {}


def _links() -> dict[str, set[str]]:
    found = defaultdict(set)
    for page in _pages():
        for target in re.findall(r"\]\(([^)\s]+)\)", page.prose):
            if not re.match(r"[a-z]+:", target):
                found[f"{page.name} -> {target}"].add(page.name)
    return found


def _link_resolves(link: str) -> bool:
    page, target = link.split(" -> ")
    file, _, anchor = target.partition("#")
    path = (ROOT / page).parent / file if file else ROOT / page
    if not path.resolve().is_relative_to(ROOT) or not path.exists():
        return False
    return not anchor or (path.suffix == ".md" and anchor in github_anchors(path.read_text(encoding="utf-8")))


def test_every_link_resolves_to_a_file_and_heading():
    found = _links()
    assert "README.md -> docs/telemetry.md" in found and any("#" in link for link in found)
    assert _missing(found, _link_resolves) == {}


# -- commands -----------------------------------------------------------------------------------------------


def _make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", makefile, flags=re.MULTILINE))


def test_every_make_target_the_docs_mention_exists():
    found = _collect(re.compile(r"(?<![\w-])make\s+([a-z][\w-]*)"), "commands", group=1)
    assert {"demo", "test", "wheel"} <= found.keys()
    assert _missing(found, _make_targets().__contains__) == {}


def _cli_parser() -> argparse.ArgumentParser:
    """The `litellm-rust` parser as `main` builds it, taken at its `parse_args` before any command runs."""

    class Built(Exception):
        pass

    def stop(parser, *args, **kwargs):
        raise Built(parser)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", stop):
        with pytest.raises(Built) as built:
            main([])
    return built.value.args[0]


def _accepted(command: str) -> bool:
    arguments = ["placeholder" if _PLACEHOLDER.fullmatch(word) else word for word in command.split()]
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            _cli_parser().parse_args(arguments)
        except SystemExit:
            return False
    return True


def test_every_litellm_rust_command_the_docs_mention_is_accepted_by_its_parser():
    found = _collect(re.compile(r"(?<![\w./-])litellm-rust\s+([^|;&#)`]+)"), "commands", group=1)
    assert {"doctor", "export grafana DIR", "export prometheus-rules DIR", "export alertmanager DIR"} <= found.keys()
    assert _missing(found, _accepted) == {}


# -- names: telemetry, Python, environment ------------------------------------------------------------------


def _telemetry_names() -> set[str]:
    """Every `litellm_rust.*` string the package spells: metric, attribute, span and event names."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith("litellm_rust.")
            ):
                names.add(node.value)
    return names


def _importable(dotted: str) -> bool:
    """`litellm_rust.a.b`: an attribute chain from the package, submodules imported on the way."""
    target = litellm_rust
    for part in dotted.split(".")[1:]:
        if hasattr(target, part):
            target = getattr(target, part)
            continue
        try:
            target = importlib.import_module(f"{target.__name__}.{part}")
        except (AttributeError, ImportError):
            return False
    return True


def test_every_litellm_rust_name_the_docs_mention_exists():
    found = _collect(re.compile(r"(?<![\w/])litellm_rust(?:\.\w+)+"), "code")
    assert {"litellm_rust.fallbacks", "litellm_rust.routing.deployments", "litellm_rust.status"} <= found.keys()
    telemetry = _telemetry_names()
    assert _missing(found, lambda name: name in telemetry or _importable(name)) == {}


def _prometheus_name_exists(name: str, telemetry: set[str]) -> bool:
    exported = {telemetry_name.replace(".", "_") for telemetry_name in telemetry}
    while name not in exported and name.endswith(_PROMETHEUS_SUFFIXES):
        name = name.rsplit("_", 1)[0]
    return name in exported


def test_every_prometheus_name_the_docs_mention_exists():
    found = _collect(re.compile(r"(?<![\w-])litellm_rust_\w+"), "code")
    telemetry = _telemetry_names()
    assert _missing(found, lambda name: _prometheus_name_exists(name, telemetry)) == {}


def _environment_variables() -> set[str]:
    return {name for name in vars(environment_variables) if name.startswith("OTEL_PYTHON_LITELLM_RUST_")}


def test_every_environment_variable_the_docs_mention_exists():
    found = defaultdict(set)
    for page in _pages():
        for match in re.finditer(r"OTEL_PYTHON_LITELLM_RUST_[A-Z0-9_]*(?![<A-Z0-9_])", page.text):
            if not match[0].endswith("_"):  # `OTEL_PYTHON_LITELLM_RUST_<SETTING>`: a placeholder
                found[match[0]].add(page.name)
    assert {"OTEL_PYTHON_LITELLM_RUST_MODE", "OTEL_PYTHON_LITELLM_RUST_CONFIG"} <= found.keys()
    assert _missing(found, _environment_variables().__contains__) == {}


def test_every_opentelemetry_instrument_flag_the_docs_mention_exists():
    found = _collect(re.compile(r"--(litellm_rust_\w+)"), "commands", group=1)
    assert "litellm_rust_mode" in found
    variables = _environment_variables()
    assert _missing(found, lambda flag: f"OTEL_PYTHON_{flag.upper()}" in variables) == {}
