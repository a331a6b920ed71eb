"""Every litellm name the components rely on resolves on the installed litellm, and the private
instance attributes and cache layout they read are there."""

import ast
import inspect
import textwrap
from importlib.metadata import version

import pytest
from litellm.caching.in_memory_cache import InMemoryCache
from litellm_rust import _litellm
from litellm_rust.components import COMPONENT_NAMES


def test_the_installed_litellm_is_one_every_component_is_verified_on():
    assert version("litellm") in _litellm.FULLY_VERIFIED


@pytest.mark.parametrize("component", sorted(_litellm.SURFACES))
def test_every_name_resolves(component):
    assert _litellm.SURFACES[component].missing(optional=True) == {}


def test_every_component_has_a_surface():
    assert set(_litellm.SURFACES) == set(COMPONENT_NAMES)


def _assigned_attributes(cls: type) -> set[str]:
    """`self.<name>` assignments in the methods of `cls` and its bases (instance attributes)."""
    names = set()
    for klass in cls.__mro__:
        if klass is object or klass.__module__ == "builtins":
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    names.add(target.attr)
    return names


@pytest.mark.parametrize(
    "owner, attribute",
    [
        (owner, attribute)
        for surface in _litellm.SURFACES.values()
        for owner, attributes in surface.instance_attributes.items()
        for attribute in attributes
    ],
)
def test_every_private_attribute_read_is_there(owner, attribute):
    cls = _litellm.resolve(owner)
    assert hasattr(cls, attribute) or attribute in _assigned_attributes(cls), f"{owner} has no {attribute}"


def test_the_in_memory_cache_layout_the_rust_glue_reads():
    cache = InMemoryCache()
    for attribute in _litellm.IN_MEMORY_CACHE_LAYOUT:
        assert hasattr(cache, attribute), attribute
    assert isinstance(cache.cache_dict, dict) and isinstance(cache.ttl_dict, dict)


def test_a_missing_name_is_reported_with_its_path():
    surface = _litellm.Surface({"gone": "litellm.utils:no_such_function_anywhere"})
    assert "litellm.utils:no_such_function_anywhere" in surface.missing()["gone"]
    with pytest.raises(AttributeError):
        _ = surface.gone
