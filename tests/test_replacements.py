"""The kernel builds every replacement from a component's declared sites: the fast path, the
fallback, answers that are exceptions, shadow answers taken first, and litellm's function's look."""

import asyncio
import inspect

import pytest
from litellm_rust._component import Component
from litellm_rust._control import LITELLM_SERVES, Site, decline
from litellm_rust.components import COMPONENT_NAMES, components
from litellm_rust.config import ComponentSettings


class Refused(Exception):
    """An exception that is an answer (like litellm's RateLimitError)."""


def litellm_lookup(key, /, scale=1, *extra, strict=False, **options):
    """litellm's lookup (a stand-in with every kind of parameter)."""
    if key == "refused":
        raise Refused(key)
    if key.startswith("rejected"):
        raise TypeError("litellm's own error")
    return ("python", key, scale, extra, strict, options)


async def litellm_async_lookup(key, scale=1):
    """litellm's async lookup."""
    if key == "refused":
        raise Refused(key)
    if key.startswith("rejected"):
        raise TypeError("litellm's own error")
    return ("python", key, scale)


def rust_lookup(key, scale=1, *extra, strict=False, **options):
    if key == "declined":
        decline("unsupported_input")
    if key == "broken":
        raise RuntimeError("a Rust bug")
    if key == "rejected":
        raise TypeError("Rust's error for the input")
    if key == "rejected otherwise":
        raise ValueError("Rust's error of another kind")
    if key == "litellm's":
        return LITELLM_SERVES
    if key == "refused":
        return Refused(key)
    return ("python", key, scale, extra, strict, options)


def rust_async_lookup(key, scale=1):
    answer = rust_lookup(key, scale)
    return answer[:3] if isinstance(answer, tuple) else answer


class Toy(Component):
    name = "toy"

    def __init__(self, **site) -> None:
        super().__init__()
        self.site = site
        self.shadowed = []

    def compare(self, python_result, rust_result) -> bool:
        if isinstance(python_result, Refused):
            return isinstance(rust_result, Refused) and python_result.args == rust_result.args
        return python_result == rust_result

    def sites(self):
        yield Site(litellm_lookup, rust_lookup, answers=(Refused,), **self.site)
        yield Site(litellm_async_lookup, rust_async_lookup, answers=(Refused,))


def replaced(component: Toy, mode: str = "rust", **settings):
    component.control.apply(ComponentSettings(mode=mode, timing_sample_rate=0.0, **settings))
    replacements = component.replacements()
    return replacements[litellm_lookup], replacements[litellm_async_lookup]


def test_a_replacement_looks_like_litellms_function():
    lookup, async_lookup = replaced(Toy())
    for original, replacement in ((litellm_lookup, lookup), (litellm_async_lookup, async_lookup)):
        assert replacement.__wrapped__ is original
        assert (replacement.__name__, replacement.__qualname__, replacement.__doc__, replacement.__module__) == (
            original.__name__,
            original.__qualname__,
            original.__doc__,
            original.__module__,
        )
        assert inspect.signature(replacement, follow_wrapped=False) == inspect.signature(original)
    assert inspect.iscoroutinefunction(async_lookup)


def test_every_kind_of_argument_reaches_rust_as_given():
    lookup, _ = replaced(Toy())
    assert lookup("k", 2, "x", "y", strict=True, colour="red") == (
        "python",
        "k",
        2,
        ("x", "y"),
        True,
        {"colour": "red"},
    )


@pytest.mark.parametrize("mode", ["rust", "python", "shadow"])
def test_the_answer_is_the_same_in_every_mode(mode):
    lookup, async_lookup = replaced(Toy(), mode)
    assert lookup("k", scale=3) == ("python", "k", 3, (), False, {})
    assert asyncio.run(async_lookup("k", 3)) == ("python", "k", 3)


@pytest.mark.parametrize("mode", ["rust", "shadow"])
def test_an_exception_that_is_an_answer_is_raised_not_counted(mode):
    component = Toy()
    lookup, async_lookup = replaced(component, mode)
    with pytest.raises(Refused):
        lookup("refused")
    with pytest.raises(Refused):
        asyncio.run(async_lookup("refused"))
    assert component.stats.fallbacks == 0
    assert component.stats.mismatches == 0


def test_a_decline_and_a_failure_fall_back_and_are_counted_by_reason():
    component = Toy()
    lookup, async_lookup = replaced(component)
    assert lookup("declined") == litellm_lookup("declined")
    assert lookup("broken") == litellm_lookup("broken")
    assert asyncio.run(async_lookup("broken")) == ("python", "broken", 1)
    assert component.stats.fallback_reasons == {"unsupported_input": 1, "rust_error": 2}


@pytest.mark.parametrize("timing_sample_rate", [0.0, 1.0], ids=["fast path", "timed"])
def test_an_input_litellm_rejects_the_same_way_is_the_callers_error_not_rusts(timing_sample_rate):
    component = Toy()
    component.control.apply(ComponentSettings(mode="rust", timing_sample_rate=timing_sample_rate))
    replacements = component.replacements()
    lookup, async_lookup = replacements[litellm_lookup], replacements[litellm_async_lookup]
    for call in (lambda: lookup("rejected"), lambda: asyncio.run(async_lookup("rejected"))):
        with pytest.raises(TypeError, match="litellm's own error"):
            call()
    with pytest.raises(TypeError, match="litellm's own error"):
        lookup("rejected otherwise")  # Rust raised another exception type: its own fault
    assert component.stats.fallback_reasons == {"caller_error": 2, "rust_error": 1}
    assert component.control.evidence_since_mode_change()["rust_errors"] == 1


def test_litellm_serves_hands_the_call_over_without_a_fallback():
    component = Toy()
    lookup, _ = replaced(component)
    assert lookup("litellm's") == litellm_lookup("litellm's")
    assert component.stats.fallbacks == 0
    # In shadow mode there is nothing to compare.
    lookup, _ = replaced(component, "shadow")
    lookup("litellm's")
    assert (component.stats.comparisons, component.stats.fallbacks) == (0, 0)


def test_a_timing_sample_goes_through_serve_and_is_timed():
    component = Toy()
    component.control.apply(ComponentSettings(mode="rust", timing_sample_rate=1.0))
    lookup = component.replacements()[litellm_lookup]
    lookup("k")
    assert len(component.control.timings["rust"]) == 1


def test_shadow_takes_the_side_effect_free_answer_before_litellms_call():
    order = []

    def peek(key, *args, **kwargs):
        order.append("rust")
        return ("python", key, 1, (), False, {})

    def python(key, *args, **kwargs):
        order.append("python")
        return litellm_lookup(key, *args, **kwargs)

    component = Toy(shadow=peek, python=python)
    lookup, _ = replaced(component, "shadow")
    lookup("k")
    assert order == ["rust", "python"]
    assert (component.stats.comparisons, component.stats.mismatches) == (1, 0)


def test_a_shadow_mismatch_is_recorded_with_the_described_inputs():
    component = Toy(
        shadow=lambda key, *args, **kwargs: "another answer",
        describe=lambda capture_content, key, *args, **kwargs: {"key": key},
    )
    lookup, _ = replaced(component, "shadow")
    assert lookup("k") == litellm_lookup("k")
    assert component.stats.mismatches == 1
    assert component.control.mismatch_details[-1]["inputs"] == {"key": "k"}


def test_the_request_key_decides_the_rollout():
    seen = []
    component = Toy(request_key=lambda key, *args, **kwargs: seen.append(key) or key)
    lookup, _ = replaced(component, rollout_percent=50)
    lookup("a")
    assert seen == ["a"]


class Staged(Component):
    """A component whose sites use `serves`, `prepare`, `shadow_first` and a coroutine Rust answer."""

    name = "staged"

    def __init__(self) -> None:
        super().__init__()
        self.events = []

    def sites(self):
        events = self.events

        def prepare(key, scale=1, *extra, **options):
            events.append("prepare")
            return {"key": key, "scale": scale}

        async def read_then_prepare(key, scale=1):
            events.append("read")  # a read the synchronous Rust answer needs, awaited first
            return {"key": key, "scale": scale, "read": True}

        def rust(call):
            return ("python", call["key"], call["scale"])

        def rust_with_an_await(call):
            async def answer():
                events.append("awaited")
                return rust(call)

            return answer() if call.get("read") else rust(call)

        def python(call):
            events.append("python")
            return litellm_lookup(call["key"], call["scale"])[:3]

        async def python_async(call):
            events.append("python")
            return await litellm_async_lookup(call["key"], call["scale"])

        def shadow_after(call):
            events.append("shadow")
            return rust(call)

        yield Site(
            litellm_lookup,
            rust,
            python=python,
            serves=lambda key, *args, **kwargs: key != "another kind",
            prepare=prepare,
            shadow=shadow_after,
            shadow_first=False,
        )
        yield Site(
            litellm_async_lookup,
            rust_with_an_await,
            python=python_async,
            prepare=lambda key, scale=1: read_then_prepare(key, scale) if key == "read" else prepare(key, scale),
            shadow=rust,
        )


def staged(mode: str = "rust"):
    component = Staged()
    component.control.apply(ComponentSettings(mode=mode, timing_sample_rate=0.0))
    replacements = component.replacements()
    return component, replacements[litellm_lookup], replacements[litellm_async_lookup]


@pytest.mark.parametrize("mode", ["rust", "python", "shadow"])
def test_a_call_the_component_does_not_serve_is_litellms_and_uncounted(mode):
    component, lookup, _ = staged(mode)
    assert lookup("another kind") == litellm_lookup("another kind")
    assert component.events == []
    assert (component.stats.python_calls, component.stats.comparisons) == (0, 0)


def test_every_implementation_receives_the_call_prepared_once():
    component, lookup, _ = staged("python")
    assert lookup("k", 2) == ("python", "k", 2)
    assert component.events == ["prepare", "python"]
    component, lookup, _ = staged("rust")
    assert lookup("k", 2) == ("python", "k", 2)
    assert component.events == ["prepare"]


def test_an_async_preparation_is_awaited_before_the_call_is_routed():
    component, _, async_lookup = staged("rust")
    assert asyncio.run(async_lookup("read", 3)) == ("python", "read", 3)
    assert component.events == ["read", "awaited"]  # Rust's answer awaited what it needed too


@pytest.mark.parametrize("timing_sample_rate", [0.0, 1.0])
def test_a_coroutine_rust_answers_with_is_awaited_for_the_answer(timing_sample_rate):
    component, _, async_lookup = staged("rust")
    component.control.apply(ComponentSettings(mode="rust", timing_sample_rate=timing_sample_rate))
    assert asyncio.run(async_lookup("read")) == ("python", "read", 1)
    assert component.events == ["read", "awaited"]
    assert component.stats.fallbacks == 0


def test_a_shadow_answer_can_be_taken_after_litellms_call():
    component, lookup, _ = staged("shadow")
    assert lookup("k") == ("python", "k", 1)
    assert component.events == ["prepare", "python", "shadow"]
    assert (component.stats.comparisons, component.stats.mismatches) == (1, 0)


def test_a_prepared_site_names_its_python():
    class Unnamed(Component):
        name = "unnamed"

        def sites(self):
            yield Site(litellm_lookup, rust_lookup, prepare=lambda *args, **kwargs: args)

    with pytest.raises(TypeError, match="python"):
        Unnamed().replacements()


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_every_components_replacements_look_like_litellms_functions(name):
    for original, replacement in components()[name].replacements().items():
        assert replacement.__wrapped__ is original
        for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
            assert getattr(replacement, attribute) == getattr(original, attribute), (original, attribute)
