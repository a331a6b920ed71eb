"""`_native.pyi` declares exactly what the extension module exports, member by member."""

import ast
import inspect
from pathlib import Path

from litellm_rust import _native

STUB = Path(_native.__file__).with_name("_native.pyi")


def declared() -> dict[str, set[str]]:
    """Top-level names, and for each class the members it declares."""
    names: dict[str, set[str]] = {}
    for node in ast.parse(STUB.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {
                item.name if isinstance(item, ast.FunctionDef) else item.target.id
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AnnAssign)
            }
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = set()
    return names


def exported() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for name, value in vars(_native).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(value) and not issubclass(value, Exception):
            names[name] = (
                {member for member in vars(value) if not member.startswith("_")}
                | ({"__init__"} if "__new__" in vars(value) else set())
                | ({"__bool__", "__enter__", "__exit__"} & set(vars(value)))
            )
        else:
            names[name] = set()
    return names


def test_the_stub_declares_every_export_and_nothing_else():
    assert declared() == exported()
