"""The package's import graph, read from the source: every import, function-level ones included
(imports made only for type checking are left out). Shared by the tests of the package's shape."""

import ast
from pathlib import Path

import litellm_rust

PACKAGE = Path(litellm_rust.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
# Compiled modules (their stubs name them): they import nothing of the package.
COMPILED = {module_name(path) for path in PACKAGE.rglob("*.pyi")} - set(MODULES)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            yield from (imported for child in node.orelse for imported in _imports(child))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def imported_modules(name: str) -> set[str]:
    """The package's modules `name` imports: a module named by `import`, or by `from ... import`
    (its submodules where the names imported are submodules)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            found.add(submodule if submodule in MODULES or submodule in COMPILED else base)
    return {module for module in found if module in MODULES and module != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting, done = [], set()

    def visit(module: str) -> list[str] | None:
        if module in visiting:
            return [*visiting[visiting.index(module) :], module]
        if module in done:
            return None
        visiting.append(module)
        for imported in sorted(graph[module]):
            cycle = visit(imported)
            if cycle:
                return cycle
        visiting.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module)
        if cycle:
            return cycle
    return None


def import_closure(module: str) -> set[str]:
    """Every package module `module` imports, directly or through the modules it imports."""
    seen, pending = set(), [module]
    while pending:
        for imported in imported_modules(pending.pop()) - seen:
            seen.add(imported)
            pending.append(imported)
    return seen
