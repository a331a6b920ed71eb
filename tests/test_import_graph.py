"""The package's modules import one another without a circle: every import, function-level ones
included, read from the source (imports made only for type checking are left out)."""

from imports import MODULES, find_cycle, imported_modules


def test_no_module_imports_itself_back():
    graph = {name: imported_modules(name) for name in MODULES}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_function_level_and_submodule_imports():
    picks = imported_modules("litellm_rust.components.routing.strategies")
    assert {"litellm_rust.components.routing.health", "litellm_rust.components.routing.router_cache"} <= picks
    assert "litellm_rust._control" in imported_modules("litellm_rust._component")  # a function-level import
