"""The fallback-reason registry (`litellm_rust.reasons`) against the sources and the documentation.

Sources: every reason the Python package or the Rust crates hand a call back to litellm for is
registered, and every registered reason is raised somewhere. The scan reads the sources as they are
written, wherever the files live:
  * Python (by its syntax tree): the first argument of `decline(...)`, `_decline(...)` and
    `Unsupported(...)`; a string returned by a function whose docstring says it returns a reason
    (its caller raises it); a key of a `reasons[...]` count, or of the dict a `*_reasons` function
    returns (the routing mirrors' read-in-place counts); a string assigned to `reason` (the kernel's
    `rust_error` / `rust_panic`).
  * Rust (comments left out): `decline("x")`, `unsupported("x")`, `Unsupported::new_err("x")`, and
    the labels of the token counter crate's `Unsupported` enum (`Unsupported::Image => "x"`).

Documentation: the table of reasons in docs/telemetry.md is generated from the registry
(`python tests/test_reasons.py` rewrites it) and must be up to date; and wherever the README's or a
docs/ page's prose names a reason, in parentheses in a sentence about a call that falls back, the
reason is a registered one.
"""

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from litellm_rust.reasons import REASONS

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "instrumentation" / "litellm_rust"
CRATES = ROOT / "rust" / "crates"
TELEMETRY_DOC = ROOT / "docs" / "telemetry.md"
PROSE = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

TABLE_BEGIN = "<!-- fallback reasons: generated from instrumentation/litellm_rust/reasons.py by `python tests/test_reasons.py` -->"
TABLE_END = "<!-- end of fallback reasons -->"

_DECLINES = {"decline", "_decline", "Unsupported"}
_RUST_REASON = re.compile(
    r'\b(?:decline|unsupported|Unsupported::new_err)\(\s*"(?P<raised>[^"]+)"|Unsupported::\w+\s*=>\s*"(?P<label>[^"]+)"'
)


def _registered() -> set[str]:
    return {name for reasons in REASONS.values() for name in reasons.meanings}


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _text(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _literal_choices(node: ast.AST) -> list[str]:
    """The strings a value made only of string literals can be (`"a" if x else "b"`); none for any
    other value (a message built at run time is not a reason)."""
    if isinstance(node, ast.IfExp):
        body, orelse = _literal_choices(node.body), _literal_choices(node.orelse)
        return body + orelse if body and orelse else []
    text = _text(node)
    return [] if text is None else [text]


def _python_reasons(tree: ast.AST):
    """(reason, line) for every reason the module raises or counts."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in _DECLINES and node.args:
            if (reason := _text(node.args[0])) is not None:
                yield reason, node.lineno
        elif isinstance(node, ast.Subscript) and _name(node.value) == "reasons":
            if (reason := _text(node.slice)) is not None:
                yield reason, node.lineno
        elif isinstance(node, ast.Assign) and any(_name(target) == "reason" for target in node.targets):
            for reason in _literal_choices(node.value):
                yield reason, node.lineno
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            returns_reason = re.search(r"\breason\b", ast.get_docstring(node) or "") is not None
            for returned in ast.walk(node):
                if not isinstance(returned, ast.Return):
                    continue
                if returns_reason and (reason := _text(returned.value)) is not None:
                    yield reason, returned.lineno
                if node.name.endswith("_reasons") and isinstance(returned.value, ast.Dict):
                    for key in returned.value.keys:
                        if (reason := _text(key)) is not None:
                            yield reason, returned.lineno


def _rust_reasons(source: str):
    for number, line in enumerate(source.splitlines(), 1):
        for match in _RUST_REASON.finditer(line.split("//")[0]):
            yield match["raised"] or match["label"], number


def _raised() -> dict[str, list[str]]:
    """Every reason in the sources -> where (file:line)."""
    sites = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        for reason, line in _python_reasons(ast.parse(path.read_text(), str(path))):
            sites[reason].append(f"{path.relative_to(ROOT)}:{line}")
    for path in sorted(CRATES.rglob("*.rs")):
        for reason, line in _rust_reasons(path.read_text()):
            sites[reason].append(f"{path.relative_to(ROOT)}:{line}")
    return sites


def test_every_reason_the_sources_raise_is_registered():
    unregistered = {reason: where for reason, where in _raised().items() if reason not in _registered()}
    assert unregistered == {}, "register these in instrumentation/litellm_rust/reasons.py"


def test_every_registered_reason_is_raised_somewhere():
    assert sorted(_registered() - _raised().keys()) == []


def test_every_meaning_is_one_line():
    for part, reasons in REASONS.items():
        assert reasons.counted_in and reasons.meanings, part
        for name, meaning in reasons.meanings.items():
            assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
            assert meaning.strip() and "\n" not in meaning and "|" not in meaning, name


def test_the_registry_imports_nothing_of_the_package_or_litellm():
    tree = ast.parse((PACKAGE / "reasons.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"dataclasses"}
    blocked = "import sys; sys.modules['litellm'] = None; from litellm_rust.reasons import REASONS; print(len(REASONS))"
    assert int(subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, check=True).stdout) > 0


# -- the documentation ---------------------------------------------------------------------------------------------


def _table() -> str:
    """The reason table, as the registry gives it."""
    lines = []
    for part, reasons in REASONS.items():
        lines += ["", f"**{part}**, counted in `{reasons.counted_in}`:", "", "| reason | meaning |", "|---|---|"]
        lines += [f"| `{name}` | {meaning} |" for name, meaning in reasons.meanings.items()]
    return "\n".join(lines) + "\n\n"


def _table_parts(text: str) -> tuple[str, str, str]:
    """A page before its generated table, the table, and the page after it."""
    before, found, rest = text.partition(TABLE_BEGIN + "\n")
    assert found, f"no line {TABLE_BEGIN!r}"
    table, found, after = rest.partition(TABLE_END)
    assert found, f"no line {TABLE_END!r} after the table"
    return before, table, after


def _without_table(text: str) -> str:
    if TABLE_BEGIN not in text:
        return text
    before, _, after = _table_parts(text)
    return before + after


def test_the_reason_table_is_generated_from_the_registry():
    assert _table_parts(TELEMETRY_DOC.read_text())[1] == _table(), "run `python tests/test_reasons.py` to regenerate it"


def test_only_docs_telemetry_holds_the_reason_table():
    assert [path.name for path in PROSE if TABLE_BEGIN in path.read_text()] == ["telemetry.md"]


# A sentence about a call handed to litellm, and a parenthesised name (list) in it: "(`a`)", "(`a`: why)",
# "(`a`, `b`)".
_FALLBACK_SENTENCE = re.compile(
    r"counted by reason|counted:|falls? back|stays litellm's|left to litellm|declines", re.IGNORECASE
)
_NAMED = re.compile(r"\((`[a-z][a-z0-9_]*`(?:, `[a-z][a-z0-9_]*`)*)[):;]")


def _prose_reasons(text: str) -> set[str]:
    names = set()
    for paragraph in re.split(r"\n\s*\n", text):
        for sentence in re.split(r"(?<=[.;])\s+(?=[A-Z])", " ".join(paragraph.split())):
            if _FALLBACK_SENTENCE.search(sentence):
                for group in _NAMED.finditer(sentence):
                    names.update(re.findall(r"`([a-z0-9_]+)`", group[1]))
    return names


def test_the_reasons_the_documentations_prose_names_are_registered():
    named = {path.name: _prose_reasons(_without_table(path.read_text())) for path in PROSE}
    assert {"redis_cache", "unusual_value", "first_use", "no_registry_handle"} <= named["components.md"]  # read
    assert {name: sorted(reasons - _registered()) for name, reasons in named.items() if reasons - _registered()} == {}


if __name__ == "__main__":  # rewrite docs/telemetry.md's table from the registry
    before, _, after = _table_parts(TELEMETRY_DOC.read_text())
    TELEMETRY_DOC.write_text(before + TABLE_BEGIN + "\n" + _table() + TABLE_END + after)
