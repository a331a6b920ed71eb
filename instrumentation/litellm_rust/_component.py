"""The shape every accelerated litellm hot path takes.

A component declares the litellm functions it serves (`sites()`: the original, the Rust answer,
how to key and describe a call), says how to compare a Rust result with Python's, and keeps its call
accounting in native atomics. The functions that replace litellm's, and their routing, shadow
comparison, fallback, timing and breaker, are the generic `Control`'s. The instrumentor and the
control plane walk the components and know nothing about any one of them.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from litellm_rust import _native
from litellm_rust.config import ComponentSettings

if TYPE_CHECKING:
    from litellm_rust._control import Site
    from litellm_rust.telemetry import Observable


class Component(ABC):
    """One litellm hot path served by Rust, with litellm's Python as reference and fallback."""

    name: str
    # Whether the Rust path keeps state of its own (counters, windows) that every call must
    # update: shadow mode then runs it on every call, whatever the shadow sample rate.
    stateful = False
    # The settings this component has: `ComponentSettings`, or a frozen subclass adding its own
    # (the config layer validates them and makes their environment variables from the declaration).
    settings_class: type[ComponentSettings] = ComponentSettings

    def __init__(self) -> None:
        from litellm_rust._control import Control

        self.instrumented = False
        self.stats = _native.CallStats()
        self.control = Control(self)
        self._replacements: Mapping[object, object] | None = None

    @abstractmethod
    def sites(self) -> Iterable["Site"]:
        """The litellm functions this component serves."""

    def wrappers(self) -> Mapping[object, object]:
        """litellm functions wrapped without being served (bookkeeping around litellm's own call,
        built with `standing_in_for`), mapped from the original."""
        return {}

    def replacements(self) -> Mapping[object, object]:
        """litellm's original function objects mapped to the functions that replace them (built
        once: `uninstrument()` finds a replacement by identity)."""
        if self._replacements is None:
            replacement = self.control.replacement
            self._replacements = {site.original: replacement(site) for site in self.sites()} | dict(self.wrappers())
        return self._replacements

    def check_settings(self, settings: ComponentSettings) -> None:
        """Raise `ConfigError` for a combination of settings this component cannot honour (checked
        before any source's settings are applied)."""

    def instruments(self) -> Iterable["Observable"]:
        """The observable instruments this component contributes beyond the generic ones, created
        once per meter provider and read when a reader collects."""
        return ()

    def compare(self, python_result: object, rust_result: object) -> bool | None:
        """Whether the Rust result is the one Python gave (shadow mode); `None` when the two read
        different states (another thread changed what the Rust answer read before litellm's call
        read it): nothing to compare, counted as `shadow_uncompared`."""
        return python_result == rust_result

    def status(self) -> dict:
        return {
            "instrumented": self.instrumented,
            "supported": True,
            "serving": self.control.serving() if self.instrumented else "python",
            **self.control.status(),
        }
