"""The accelerated components, by name. Adding one means adding its module here."""

from functools import cache

from litellm_rust._component import Component


@cache
def components() -> dict[str, Component]:
    """Built on first use: each component imports litellm, which `import litellm_rust` must not."""
    from litellm_rust.components.token_counter import TokenCounterComponent

    return {component.name: component for component in (TokenCounterComponent(),)}
