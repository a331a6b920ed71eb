"""Where litellm binds a function, and swapping every binding at once.

litellm reaches the same function under many names: the defining module, `litellm.utils`,
the lazily cached `litellm.<name>`, and every module that did `from ... import name`. Rather
than list those sites (and let the list drift between litellm versions), `rebind` scans every
loaded module for the exact object. `instrument()` rebinds originals to replacements and
`uninstrument()` rebinds the other way, so a module imported while instrumented (which copied
the replacement) is restored too. A method is a binding on the class that defines it: replacing it
there changes what every instance calls without touching any instance or the class's type.
"""

import sys
from collections.abc import Mapping
from types import ModuleType


def _defining_class(function: object) -> type | None:
    """The class a method was defined on, found from its qualified name."""
    owner = sys.modules.get(getattr(function, "__module__", None) or "")
    path = getattr(function, "__qualname__", "").split(".")[:-1]
    if not path or "<locals>" in path:
        return None
    for part in path:
        owner = getattr(owner, part, None)
    return owner if isinstance(owner, type) else None


def binding_sites(
    targets: Mapping[int, object], classes: frozenset[type] = frozenset()
) -> list[tuple[ModuleType | type, str]]:
    """Every module attribute, and every attribute of `classes`, whose value is one of `targets`
    (keyed by `id`)."""
    sites: list[tuple[ModuleType | type, str]] = [
        (owner, attribute)
        for owner in classes
        for attribute, member in list(vars(owner).items())
        if id(member) in targets and targets[id(member)] is member
    ]
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            if id(value) in targets and targets[id(value)] is value:
                sites.append((module, name))
    return sites


def rebind(replacements: Mapping[object, object]) -> list[tuple[ModuleType | type, str]]:
    """Point every binding of each key at its value; returns the sites changed."""
    originals = {id(original): original for original in replacements}
    by_id = {id(original): replacement for original, replacement in replacements.items()}
    # Methods: the classes that define the originals (instrument) or the restored ones (uninstrument).
    classes = frozenset(filter(None, map(_defining_class, [*replacements, *replacements.values()])))
    sites = binding_sites(originals, classes)
    for owner, name in sites:
        setattr(owner, name, by_id[id(vars(owner)[name])])
    return sites
