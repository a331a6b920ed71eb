"""The shape every accelerated litellm hot path takes.

A component names the litellm functions it replaces (its binding sites) and builds a plain
function for each; says how to compare a Rust result with Python's and how to describe a call's
inputs for a mismatch record; and keeps its call accounting in native atomics. Routing, shadow
comparison, fallback, timing and the breaker are the generic `Control`'s. The instrumentor and the
control plane walk the components and know nothing about any one of them.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from litellm_rust import _native
from litellm_rust.config import ComponentSettings

if TYPE_CHECKING:
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

    @abstractmethod
    def replacements(self) -> Mapping[object, object]:
        """litellm's original function objects mapped to the plain functions that replace them."""

    def check_settings(self, settings: ComponentSettings) -> None:
        """Raise `ConfigError` for a combination of settings this component cannot honour (checked
        before any source's settings are applied)."""

    def instruments(self) -> Iterable["Observable"]:
        """The observable instruments this component contributes beyond the generic ones, created
        once per meter provider and read when a reader collects."""
        return ()

    def compare(self, python_result: object, rust_result: object) -> bool:
        """Whether the Rust result is the one Python gave (shadow mode)."""
        return python_result == rust_result

    def status(self) -> dict:
        return {"instrumented": self.instrumented, **self.control.status()}
