"""A component's call accounting, read before and after a test's calls."""


def counted(component) -> dict:
    """The component's counters so far (they accumulate across tests)."""
    status = component.control.status()
    return {
        "rust_calls": status["rust_calls"],
        "comparisons": status["shadow_comparisons"],
        "mismatches": status["shadow_mismatches"],
        **{f"fallback:{reason}": count for reason, count in status["fallback_reasons"].items()},
    }


def counted_since(component, before: dict) -> dict:
    """What changed since `before` (a `counted` snapshot)."""
    after = counted(component)
    return {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
