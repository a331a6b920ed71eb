"""Where litellm binds a function, and swapping every binding at once.

litellm reaches the same function under many names: the defining module, `litellm.utils`,
the lazily cached `litellm.<name>`, and every module that did `from ... import name`. Rather
than list those sites (and let the list drift between litellm versions), `rebind` scans every
loaded module for the exact object. `instrument()` rebinds originals to replacements and
`uninstrument()` rebinds the other way, so a module imported while instrumented (which copied
the replacement) is restored too.
"""

import sys
from collections.abc import Mapping
from types import ModuleType


def binding_sites(targets: Mapping[int, object]) -> list[tuple[ModuleType, str]]:
    """Every `(module, attribute)` whose value is one of `targets` (keyed by `id`)."""
    sites = []
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            if id(value) in targets and targets[id(value)] is value:
                sites.append((module, name))
    return sites


def rebind(replacements: Mapping[object, object]) -> list[tuple[ModuleType, str]]:
    """Point every module-level binding of each key at its value; returns the sites changed."""
    originals = {id(original): original for original in replacements}
    by_id = {id(original): replacement for original, replacement in replacements.items()}
    sites = binding_sites(originals)
    for module, name in sites:
        setattr(module, name, by_id[id(getattr(module, name))])
    return sites
