"""The shape every accelerated litellm hot path takes.

A component names the litellm functions it replaces (its binding sites), builds a plain-function
replacement for each, and keeps its call accounting in native atomics. The instrumentor walks the
components; it knows nothing about any one of them.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping

from litellm_rust import _native

MODES = ("python", "rust")


def validate_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    return mode


class Component(ABC):
    """One litellm hot path served by Rust, with litellm's Python as reference and fallback."""

    name: str

    def __init__(self) -> None:
        self.mode = "rust"
        self.instrumented = False
        self.stats = _native.CallStats()

    @abstractmethod
    def replacements(self) -> Mapping[object, object]:
        """litellm's original function objects mapped to the plain functions that replace them."""

    def status(self) -> dict:
        stats = self.stats
        return {
            "instrumented": self.instrumented,
            "mode": self.mode,
            "rust_calls": stats.rust_calls,
            "python_calls": stats.python_calls,
            "fallbacks": stats.fallbacks,
            "fallback_reasons": dict(sorted(stats.fallback_reasons.items())),
        }
