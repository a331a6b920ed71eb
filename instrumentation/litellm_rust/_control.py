"""The run-time side of a component: which implementation serves a call, shadow comparison,
fallback, timing samples and the circuit breaker.

Components declare the litellm functions they serve as `Site`s; `Control.replacement(site)` builds
the function that stands in for litellm's, so the fast path (mode `rust`, full rollout, breaker
closed, not a timing sample: call Rust, fall back on error) is written once, here. Every other
call goes through `Control.serve` with two thunks, one per implementation.
"""

import functools
import inspect
import itertools
import logging
import random
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import CoroutineType
from typing import TYPE_CHECKING, NoReturn

from litellm_rust import _native
from litellm_rust.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, Transition, percentile
from litellm_rust.config import ComponentSettings

if TYPE_CHECKING:
    from litellm_rust._component import Component
    from litellm_rust.telemetry import Telemetry

_logger = logging.getLogger("litellm_rust")

_TIMINGS_KEPT = 10_000
_MISMATCH_DETAILS_KEPT = 20
_ROLLOUT_BUCKETS = 10_000
_NEVER = 1 << 62


def rollout_bucket(request_key: str) -> int:
    """A stable bucket in [0, 10000) for a request key, the same in every process."""
    return zlib.crc32(request_key.encode("utf-8", "surrogatepass")) % _ROLLOUT_BUCKETS


class _LitellmServes:
    __slots__ = ()

    def __repr__(self) -> str:
        return "LITELLM_SERVES"


# A Rust function's answer meaning "litellm's own function answers this call" without a fallback
# being counted: the call is litellm's by design (its own error to raise, a case it owns).
LITELLM_SERVES = _LitellmServes()


def decline(reason: str) -> NoReturn:
    """Hand this call to litellm, counted under `reason` (a name in `litellm_rust.reasons`)."""
    raise _native.Unsupported(reason)


def nothing_to_compare(*args, **kwargs) -> object:
    """A `Site.shadow` for a call whose answer is not compared (a write, a context manager, a step
    that hands litellm's answer on): in shadow mode it is litellm's alone."""
    return LITELLM_SERVES


def standing_in_for(original: Callable, replacement: Callable) -> Callable:
    """`replacement` made to look like `original` (name, qualified name, module, docstring,
    `__wrapped__`): tracebacks and `inspect` show litellm's function, and `uninstrument()` finds the
    class a replaced method belongs to from its qualified name."""
    return functools.update_wrapper(replacement, original)


@dataclass(frozen=True, slots=True)
class Site:
    """One litellm function a component serves, and how.

    Every callable takes the original's arguments (`self` first for a method), or the prepared call
    when the site has `prepare`."""

    original: Callable
    """litellm's function, as found at its binding sites (for a method: the class attribute)."""
    rust: Callable
    """Rust's answer; raises (`decline`, or an error) or returns `LITELLM_SERVES` to hand the call
    to Python. Synchronous, also for an async original; there it may return a coroutine, awaited for
    the answer (an await litellm's coroutine makes that Rust's answer keeps, e.g. a read the next
    step uses; its exceptions are the call's). Such a site's shadow answer comes from `shadow`."""
    python: Callable | None = None
    """What serves the call on Python (default: `original`; required with `prepare`)."""
    request_key: Callable | None = None
    """The rollout key: a call with the same key is served by the same implementation."""
    describe: Callable | None = None
    """`describe(capture_content, *args, **kwargs)`: the call's inputs for a mismatch record."""
    answers: tuple[type[BaseException], ...] = ()
    """Exceptions that are an answer, not a failure: litellm raises them, Rust returns them (so
    shadow mode compares them), and the replacement raises them."""
    shadow: Callable | None = None
    """In shadow mode, Rust's answer taken without side effects before litellm's call runs (which
    changes the state Rust reads); default: `rust`, run after litellm's."""
    shadow_first: bool = True
    """False: `shadow` runs after litellm's call instead (an answer litellm's call itself marks the
    moment to take, e.g. at a step inside it)."""
    serves: Callable | None = None
    """Whether the component serves this call at all; when false, litellm's `original` answers,
    uncounted, in every mode (a call of a kind the component does not serve, e.g. another step)."""
    prepare: Callable | None = None
    """Per-call work every implementation shares, done once before the call is routed: its result
    is what `rust`, `python`, `shadow`, `request_key` and `describe` receive instead of the
    arguments. For an async original it may return a coroutine, awaited first (a read the
    synchronous Rust answer needs)."""


class _Failed:
    """An implementation's exception, held so shadow mode can re-raise Python's after comparing."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Control:
    def __init__(self, component: "Component") -> None:
        self.component = component
        self.name = component.name
        self.stats = component.stats
        self.telemetry: Telemetry | None = None
        self.settings = component.settings_class()
        self.breaker = CircuitBreaker(self.settings.breaker, on_transition=self._transitioned)
        self.ticks = itertools.count(1)
        self.timings: dict[str, deque[float]] = {
            "rust": deque(maxlen=_TIMINGS_KEPT),
            "python": deque(maxlen=_TIMINGS_KEPT),
        }
        self.mismatch_details: deque[dict] = deque(maxlen=_MISMATCH_DETAILS_KEPT)
        self.uncompared = 0  # shadowed calls whose two implementations read different states
        self._since_mode_change = self._evidence()
        self.apply(self.settings)

    # -- configuration ------------------------------------------------------------------------

    def apply(self, settings: ComponentSettings) -> None:
        if settings.mode != self.settings.mode:
            self._since_mode_change = self._evidence()
        self.settings = settings
        self.breaker.settings = settings.breaker
        self.stats.set_mode(settings.mode)
        rate = settings.timing_sample_rate
        # A rate so small that 1 / rate overflows is never, too.
        self.timing_every = max(1, round(1 / rate)) if rate > 1 / _NEVER else _NEVER
        self._refresh()

    def _refresh(self) -> None:
        """`rust_fast`: the replacement may call Rust directly (see the module docstring)."""
        settings = self.settings
        self.rust_fast = settings.mode == "rust" and settings.rollout_percent >= 100 and self.breaker.state == CLOSED

    @property
    def shadowing(self) -> bool:
        """Mode `shadow`: litellm serves every call and Rust is compared."""
        return self.settings.mode == "shadow"

    def _transitioned(self, transition: Transition) -> None:
        self._refresh()
        _logger.warning(
            "litellm_rust %s breaker %s -> %s: %s",
            self.name,
            transition.from_state,
            transition.to_state,
            transition.reason,
        )
        self._event(
            "litellm_rust.breaker.transition",
            {
                "litellm_rust.breaker.from": transition.from_state,
                "litellm_rust.breaker.to": transition.to_state,
                "litellm_rust.breaker.reason": transition.reason,
            },
        )

    # -- replacements -------------------------------------------------------------------------

    def replacement(self, site: Site) -> Callable:
        """The function that stands in for `site.original` wherever litellm binds it."""
        return standing_in_for(site.original, _build_replacement(self, site))

    def _routed(self, site: Site, args: tuple, kwargs: dict) -> dict:
        """`serve`'s routing arguments for one call of `site`."""
        request_key = site.request_key(*args, **kwargs) if site.request_key is not None else None
        describe = site.describe
        return {
            "request_key": request_key,
            "describe": None
            if describe is None
            else (lambda capture_content: describe(capture_content, *args, **kwargs)),
        }

    def _shadow_answer(self, site: Site, args: tuple, kwargs: dict) -> Callable[[], object] | None:
        """In shadow mode, Rust's side-effect-free answer: taken now, before litellm's call, or
        (`shadow_first` false) a thunk run after it."""
        if site.shadow is None or not self.shadowing:
            return None
        if not site.shadow_first:
            return lambda: site.shadow(*args, **kwargs)
        try:
            answer = site.shadow(*args, **kwargs)
        except Exception as error:
            return functools.partial(_reraise, error)
        return lambda: answer

    # -- serving ------------------------------------------------------------------------------

    def serve(
        self,
        run_rust: Callable[[], object],
        run_python: Callable[[], object],
        request_key: str | None = None,
        describe: Callable[[bool], dict] | None = None,
        timed: bool | None = None,
    ) -> object:
        """One call, routed by mode, rollout and breaker. `describe(capture_content)` gives the
        call's inputs for a mismatch record. `timed` forces the timing-sample decision."""
        if timed is None:
            timed = next(self.ticks) % self.timing_every == 0
        route = self._route(request_key)
        if route == "rust":
            result = self._serve_rust(run_rust, timed)
            if result.__class__ is _Failed:
                return self.after_rust_error(result.error, run_python)
            return run_python() if result is LITELLM_SERVES else result
        try:
            python = self._run("python", run_python, timed)
        except Exception as error:
            python = _Failed(error)
        return self._python_served(route, python, run_rust, describe, timed)

    async def serve_async(
        self,
        run_rust: Callable[[], object],
        run_python: Callable[[], Awaitable[object]],
        request_key: str | None = None,
        describe: Callable[[bool], dict] | None = None,
        timed: bool | None = None,
    ) -> object:
        """`serve` for a litellm coroutine: `run_python()` returns an awaitable; Rust stays synchronous."""
        if timed is None:
            timed = next(self.ticks) % self.timing_every == 0
        route = self._route(request_key)
        if route == "rust":
            result = self._serve_rust(run_rust, timed)
            if result.__class__ is _Failed:
                return await self.after_rust_error_async(result.error, run_python)
            if result is LITELLM_SERVES:
                return await run_python()
            return await result if result.__class__ is CoroutineType else result
        start = time.perf_counter() if timed else 0.0
        try:
            python = await run_python()
        except Exception as error:
            python = _Failed(error)
        if timed:
            self._timing("python", time.perf_counter() - start)
        return self._python_served(route, python, run_rust, describe, timed)

    def _python_served(self, route: str, python, run_rust, describe, timed: bool) -> object:
        """Python's outcome (a result or `_Failed`) as the call's answer; in shadow mode Rust runs
        second on the same inputs and is compared first."""
        if route == "shadow":
            self._shadow_compare(python, run_rust, describe, timed)
        if isinstance(python, _Failed):
            raise python.error
        return python

    def _route(self, request_key: str | None) -> str:
        """`python`, `shadow` or `rust`; Python's share of the calls is counted here."""
        mode = self.settings.mode
        if mode == "shadow" or (mode == "rust" and self._in_rollout(request_key) and self.breaker.route_to_rust()):
            return mode
        self.stats.python_call()
        return "python"

    def _serve_rust(self, run_rust: Callable[[], object], timed: bool) -> object:
        """Rust's result, `LITELLM_SERVES` when Python must serve the call instead, or `_Failed`
        (Python serves it through `after_rust_error`)."""
        probing = self.breaker.state == HALF_OPEN
        try:
            result = self._run("rust", run_rust, timed)
        except Exception as error:
            return _Failed(error)
        if probing:
            self.breaker.probe_succeeded()
        return result

    def after_rust_error(self, error: Exception, python: Callable, /, *args, **kwargs) -> object:
        """`python(*args)` serving a call whose Rust path raised `error`. When litellm rejects
        the call with the same exception type, the input was the caller's error, not Rust's: it
        is counted as `caller_error`, not against Rust."""
        if isinstance(error, _native.Unsupported):
            self.rust_failed(error)
            return python(*args, **kwargs)
        try:
            result = python(*args, **kwargs)
        except Exception as python_error:
            self._failed_both(error, python_error)
            raise
        self.rust_failed(error)
        return result

    async def after_rust_error_async(self, error: Exception, python: Callable, /, *args, **kwargs) -> object:
        """`after_rust_error` for a litellm coroutine."""
        if isinstance(error, _native.Unsupported):
            self.rust_failed(error)
            return await python(*args, **kwargs)
        try:
            result = await python(*args, **kwargs)
        except Exception as python_error:
            self._failed_both(error, python_error)
            raise
        self.rust_failed(error)
        return result

    def _failed_both(self, rust_error: Exception, python_error: Exception) -> None:
        if type(python_error) is not type(rust_error):
            self.rust_failed(rust_error)
            return
        reason = "caller_error"  # litellm rejects the input the same way
        self.stats.python_call()
        self.stats.fallback(reason)

    def rust_failed(self, error: Exception, python_serves: bool = True) -> None:
        """The Rust path declined or failed this call; Python serves it (or, in shadow mode,
        already did)."""
        if python_serves:
            self.stats.python_call()
        if isinstance(error, _native.Unsupported):
            self.stats.fallback(error.args[0])
            return
        reason = "rust_panic" if isinstance(error, _native.RustPanic) else "rust_error"
        self.stats.fallback(reason)
        _logger.debug("litellm_rust %s fell back to Python after %s", self.name, reason, exc_info=error)
        self._event("litellm_rust.fallback", {"error.type": reason})
        self.breaker.rust_error(self.stats.rust_calls, reason)

    def _in_rollout(self, request_key: str | None) -> bool:
        percent = self.settings.rollout_percent
        if percent >= 100:
            return True
        bucket = rollout_bucket(request_key) if request_key else random.randrange(_ROLLOUT_BUCKETS)
        return bucket < percent * (_ROLLOUT_BUCKETS // 100)

    def _run(self, implementation: str, run: Callable[[], object], timed: bool) -> object:
        if not timed:
            return run()
        start = time.perf_counter()
        try:
            return run()
        finally:
            self._timing(implementation, time.perf_counter() - start)

    def _timing(self, implementation: str, seconds: float) -> None:
        self.timings[implementation].append(seconds)
        settings = self.settings
        if self.telemetry is not None:
            self.telemetry.record_duration(seconds, self.name, implementation, settings.mode)
            # Spans are drawn from the timed calls: span_sample_rate of all calls.
            if random.random() * settings.timing_sample_rate < settings.span_sample_rate:
                self._event(
                    "litellm_rust.call",
                    {"litellm_rust.implementation": implementation, "litellm_rust.duration_s": seconds},
                )
        self.breaker.timing(implementation, seconds, self.stats.rust_calls)

    def _shadow_compare(self, python, run_rust, describe, timed) -> None:
        """Compare Rust with the Python outcome of a shadowed call. A component whose Rust path
        keeps its own state runs it on every call."""
        self.stats.python_call()
        sampled = self.component.stateful or random.random() < self.settings.shadow_sample_rate
        if sampled and self.breaker.route_to_rust():
            self._compare(python, run_rust, describe, timed)

    def _compare(self, python, run_rust, describe, timed) -> None:
        try:
            rust = self._run("rust", run_rust, timed)
        except Exception as error:  # declined (nothing to compare) or failed
            if isinstance(python, _Failed) and type(python.error) is type(error):
                return  # litellm rejects this input the same way: the caller's error, not Rust's
            self.rust_failed(error, python_serves=False)
            return
        if rust is LITELLM_SERVES:  # litellm's by design: nothing to compare
            return
        matched = not isinstance(python, _Failed) and self.component.compare(python, rust)
        if matched is None:  # the two read different states
            self.uncompared += 1
            return
        self.record_comparison(python, rust, matched, describe)

    def record_comparison(self, python, rust, matched: bool, describe) -> None:
        """One shadow comparison's outcome, also for a step a component compares itself: counted,
        fed to the breaker and, when it mismatched, kept with the call's inputs."""
        self.stats.comparison(matched)
        self.breaker.comparison(self.stats.rust_calls, matched)
        if matched:
            return
        python_shown = f"raised {type(python.error).__name__}" if isinstance(python, _Failed) else repr(python)
        detail = {
            "at": time.time(),
            "inputs": describe(self.settings.capture_content) if describe else {},
            "python": python_shown[:200],
            "rust": repr(rust)[:200],
        }
        self.mismatch_details.append(detail)
        self._event(
            "litellm_rust.shadow.mismatch",
            {"litellm_rust.python_result": detail["python"], "litellm_rust.rust_result": detail["rust"]},
        )

    def _event(self, name: str, attributes: dict) -> None:
        if self.telemetry is not None:
            self.telemetry.event(
                name, {"litellm_rust.operation": self.name, "litellm_rust.mode": self.settings.mode, **attributes}
            )

    def reset(self) -> None:
        """Forget the breaker's window and state, the timings and the mismatch details."""
        self.breaker.reset()
        for samples in self.timings.values():
            samples.clear()
        self.mismatch_details.clear()
        self._since_mode_change = self._evidence()
        self._refresh()

    def _evidence(self) -> dict[str, int]:
        reasons = self.stats.fallback_reasons
        return {
            "comparisons": self.stats.comparisons,
            "mismatches": self.stats.mismatches,
            "rust_errors": reasons.get("rust_error", 0) + reasons.get("rust_panic", 0),
        }

    def evidence_since_mode_change(self) -> dict[str, int]:
        """Shadow comparisons, mismatches and Rust errors since the mode last changed."""
        now = self._evidence()
        return {key: now[key] - self._since_mode_change[key] for key in now}

    # -- reporting ----------------------------------------------------------------------------

    def percentiles(self) -> dict:
        result = {}
        for implementation, samples in self.timings.items():
            values = list(samples)
            result[implementation] = (
                {"samples": len(values), **{f"p{p}": percentile(values, p / 100) for p in (50, 95, 99)}}
                if values
                else {"samples": 0}
            )
        return result

    def serving(self) -> str:
        """Which implementation serves this component's calls now: `python`, `shadow` (Python, Rust
        compared) or `rust` (some calls on Python below full rollout or while the breaker probes)."""
        if self.breaker.state == OPEN:
            return "python"
        return self.settings.mode

    def status(self) -> dict:
        stats = self.stats
        return {
            "mode": self.settings.mode,
            "rollout_percent": self.settings.rollout_percent,
            "rust_calls": stats.rust_calls,
            "python_calls": stats.python_calls,
            "calls": {
                f"{mode}/{implementation}": count for (mode, implementation), count in sorted(stats.calls().items())
            },
            "fallbacks": stats.fallbacks,
            "fallback_reasons": dict(sorted(stats.fallback_reasons.items())),
            "shadow_comparisons": stats.comparisons,
            "shadow_mismatches": stats.mismatches,
            "shadow_uncompared": self.uncompared,
            "mismatch_details": list(self.mismatch_details),
            "breaker": self.breaker.status(),
        }


def _reraise(error: BaseException) -> NoReturn:
    raise error


# The replacement's fast path, generated with the original's own parameters: a call binds its
# arguments once, as litellm's function would, with no `*args, **kwargs` packing on the hot path.
_REPLACEMENT = """
{async_}def {name}({parameters}):
{preamble}    _fast = _control.rust_fast
    if _fast and next(_ticks) % _control.timing_every:
        try:
            _answer = _rust({call})
        except Exception as _error:
            return {await_}_after_rust_error(_error, _python, {call})
        if _answer is _LITELLM_SERVES:
            return {await_}_python({call})
{awaited_answer}        return _answered(_answer)
    return {await_}_routed(_fast, {call})
"""
# `Site.serves`, `Site.prepare` and an async Rust answer's coroutine, where the site has them.
_SERVES = """    if not _serves({arguments}):
        return {await_}_original({arguments})
"""
_PREPARE = "    _call = _prepare({arguments})\n"
_AWAIT_PREPARED = "    if _call.__class__ is _Coroutine:\n        _call = await _call\n"
_AWAIT_ANSWER = "        if _answer.__class__ is _Coroutine:\n            _answer = await _answer\n"
# The names the generated function uses besides its parameters (an original with a parameter of
# one of these names gets the `*args, **kwargs` form).
_RESERVED = frozenset(
    {
        "_fast",
        "_control",
        "_ticks",
        "_answer",
        "_rust",
        "_error",
        "_after_rust_error",
        "_python",
        "_LITELLM_SERVES",
        "_answered",
        "_routed",
        "_serves",
        "_original",
        "_prepare",
        "_call",
        "_Coroutine",
    }
)


def _parameters(original: Callable) -> tuple[str, str, dict[str, object]] | None:
    """`original`'s parameter list and the matching call's argument list as source text, with the
    defaults they refer to; None when its signature cannot be read."""
    try:
        signature = inspect.signature(original, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    parameters, arguments, defaults = [], [], {}
    slash = star = False
    if _RESERVED.intersection(signature.parameters):
        return None
    for parameter in signature.parameters.values():
        name, kind = parameter.name, parameter.kind
        if slash and kind is not parameter.POSITIONAL_ONLY:
            parameters.append("/")
            slash = False
        if kind is parameter.KEYWORD_ONLY and not star:
            parameters.append("*")
            star = True
        text = {parameter.VAR_POSITIONAL: f"*{name}", parameter.VAR_KEYWORD: f"**{name}"}.get(kind, name)
        if parameter.default is not parameter.empty:
            defaults[f"_default_{name}"] = parameter.default
            text += f"=_default_{name}"
        parameters.append(text)
        star = star or kind is parameter.VAR_POSITIONAL
        slash = kind is parameter.POSITIONAL_ONLY
        arguments.append(f"{name}={name}" if kind is parameter.KEYWORD_ONLY else text.partition("=")[0])
    if slash:
        parameters.append("/")
    return ", ".join(parameters), ", ".join(arguments), defaults


def _build_replacement(control: Control, site: Site) -> Callable:
    if site.prepare is not None and site.python is None:
        raise TypeError(f"{site.original.__qualname__}: a site with `prepare` names its `python` (it takes the call)")
    is_async = inspect.iscoroutinefunction(site.original)
    python = site.python or site.original
    answers = site.answers

    def answered(answer):
        if answers and isinstance(answer, answers):
            raise answer
        return answer

    def python_answer(*args, **kwargs):
        try:
            return python(*args, **kwargs)
        except answers as error:
            return error

    async def python_answer_async(*args, **kwargs):
        try:
            return await python(*args, **kwargs)
        except answers as error:
            return error

    serve = control.serve_async if is_async else control.serve
    run_python = python if not answers else python_answer_async if is_async else python_answer

    def routed(fast: bool, *args, **kwargs):
        """Every call the fast path does not finish: `serve` decides (a rust-mode call here is a
        timing sample)."""
        run_rust = control._shadow_answer(site, args, kwargs) or (lambda: site.rust(*args, **kwargs))
        return serve(
            run_rust,
            lambda: run_python(*args, **kwargs),
            timed=True if fast else None,
            **control._routed(site, args, kwargs),
        )

    async def routed_async(fast: bool, *args, **kwargs):
        return answered(await routed(fast, *args, **kwargs))

    def routed_sync(fast: bool, *args, **kwargs):
        return answered(routed(fast, *args, **kwargs))

    parameters, arguments, defaults = _parameters(site.original) or ("*args, **kwargs", "*args, **kwargs", {})
    namespace = {
        "_control": control,
        "_ticks": control.ticks,
        "_after_rust_error": control.after_rust_error_async if is_async else control.after_rust_error,
        "_rust": site.rust,
        "_python": python,
        "_answered": answered if answers else _same,
        "_routed": routed_async if is_async else (routed_sync if answers else routed),
        "_LITELLM_SERVES": LITELLM_SERVES,
        "_serves": site.serves,
        "_original": site.original,
        "_prepare": site.prepare,
        "_Coroutine": CoroutineType,
        **defaults,
    }
    name = site.original.__name__
    await_ = "await " if is_async else ""
    preamble = _SERVES.format(arguments=arguments, await_=await_) if site.serves is not None else ""
    if site.prepare is not None:
        preamble += _PREPARE.format(arguments=arguments) + (_AWAIT_PREPARED if is_async else "")
    source = _REPLACEMENT.format(
        async_="async " if is_async else "",
        await_=await_,
        name=name,
        parameters=parameters,
        preamble=preamble,
        call="_call" if site.prepare is not None else arguments,
        awaited_answer=_AWAIT_ANSWER if is_async else "",
    )
    exec(compile(source, f"<litellm_rust replacement of {site.original.__qualname__}>", "exec"), namespace)
    return namespace[name]


def _same(answer):
    return answer
