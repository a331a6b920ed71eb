import os

# Nothing may download during tests: litellm's cost map and HuggingFace tokenizers stay local.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import collections  # noqa: E402

import litellm  # noqa: E402
import litellm_rust  # noqa: E402
import pytest  # noqa: E402
from litellm_rust import LiteLLMRustInstrumentor, _native  # noqa: E402
from litellm_rust.components import components, unsupported  # noqa: E402
from litellm_rust.control_plane import PLANE  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from servers import RedisServer  # noqa: E402

litellm.suppress_debug_info = True

# Each component's exactness tests, by file -> the components the file needs (`make test-compat` runs
# these, with `--exactness-only`, on every litellm release of its matrix). A file runs only where every
# component it needs is supported, and is skipped where one is not, saying why: there its litellm
# imports may not even resolve.
EXACTNESS_TESTS = {
    "test_compat.py": (),
    "test_token_counter_parity.py": ("token_counter",),
    "test_token_counter_properties.py": ("token_counter",),
    "test_token_counter_fallback.py": ("token_counter",),
    "test_router.py": ("token_counter",),
    "test_rate_limits.py": ("rate_limits",),
    "test_rate_limits_gcra.py": ("rate_limits",),
    "test_proxy_limits.py": ("proxy_limits",),
    "test_parallel_slots.py": ("parallel_slots",),
    # a Router workload per strategy in shadow mode, and rust mode against python mode: routing's picks,
    # the router cache's reads and the group usage answers it serves along the way
    "test_routing_workload.py": ("routing", "router_cache", "group_usage"),
    "test_precall_facts.py": ("precall_facts",),
}


def pytest_addoption(parser):
    parser.addoption(
        "--exactness-only", action="store_true", help="run only the components' exactness tests (EXACTNESS_TESTS)"
    )


def pytest_ignore_collect(collection_path, config):
    if config.getoption("exactness_only") and collection_path.is_file():
        return collection_path.name not in EXACTNESS_TESTS
    return None


class UnsupportedHere(pytest.File):
    """A test file whose components are not all supported on the installed litellm: one skip, with why."""

    def collect(self):
        pytest.skip("; ".join(f"{name} is not supported here: {why}" for name, why in self.why.items()))


def pytest_pycollect_makemodule(module_path, parent):
    needs = EXACTNESS_TESTS.get(module_path.name, ())
    why = {name: reason for name, reason in unsupported().items() if name in needs}
    if why:
        skipped = UnsupportedHere.from_parent(parent, path=module_path)
        skipped.why = why
        return skipped
    return None


@pytest.fixture
def instrumented():
    """litellm instrumented in the default (rust) mode for one test."""
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def no_earlier_routers():
    """litellm runs every router's checks registered in `litellm.callbacks` (and skips a new one
    equal to an old one): routers from earlier tests must not take part."""
    saved = list(litellm.callbacks)
    litellm.callbacks.clear()
    yield
    litellm.callbacks[:] = saved


@pytest.fixture
def token_component():
    return components()["token_counter"]


@pytest.fixture(autouse=True)
def fresh_control_state():
    """Each test starts from default settings and a closed breaker, with no fault injected."""
    yield
    _native.inject_fault(None)
    PLANE._runtime_layer = {"components": {}}
    PLANE._kwargs_layer = {}
    PLANE._file_layer = {}
    PLANE.config_path = None
    PLANE._apply()
    for component in components().values():
        component.control.reset()


@pytest.fixture
def otel():
    """In-memory metric reader and span exporter, and litellm instrumented against them."""
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = LiteLLMRustInstrumentor()

    def instrument(**settings):
        instrumentor.instrument(
            meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=tracer_provider, **settings
        )

    otel = collections.namedtuple("otel", "instrument reader exporter tracer_provider")(
        instrument, reader, exporter, tracer_provider
    )
    try:
        yield otel
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def own_strategy_callbacks():
    """litellm keys the latency, usage (v1, v2) and cost handlers by class name alone when it dedupes
    `litellm.callbacks`, so only the first Router of each of those strategies in a process gets its
    handler registered (later ones' outcomes reach the first one's, even once that router is
    gone). Calling the returned function drops those handlers, so the next Router registers its
    own; the list is restored after the test."""
    from litellm.router_strategy.lowest_cost import LowestCostLoggingHandler
    from litellm.router_strategy.lowest_latency import LowestLatencyLoggingHandler
    from litellm.router_strategy.lowest_tpm_rpm import LowestTPMLoggingHandler
    from litellm.router_strategy.lowest_tpm_rpm_v2 import LowestTPMLoggingHandler_v2

    deduped = (
        LowestLatencyLoggingHandler,
        LowestTPMLoggingHandler,
        LowestTPMLoggingHandler_v2,
        LowestCostLoggingHandler,
    )
    # litellm promotes a CustomLogger from `callbacks` into the success/failure lists on first use.
    lists = (
        "callbacks",
        "input_callback",
        "success_callback",
        "failure_callback",
        "service_callback",
        "_async_success_callback",
        "_async_failure_callback",
    )
    saved = {name: list(getattr(litellm, name)) for name in lists}

    def forget() -> None:
        manager = litellm.logging_callback_manager
        manager.drop_callbacks([c for c in manager.get_all_callbacks() if isinstance(c, deduped)])

    yield forget
    for name, callbacks in saved.items():
        setattr(litellm, name, callbacks)


@pytest.fixture
def routing():
    return components()["routing"]


@pytest.fixture
def instrumented_as():
    instrumentor = LiteLLMRustInstrumentor()

    def instrument(mode: str):
        instrumentor.instrument(mode=mode)
        return instrumentor

    yield instrument
    instrumentor.uninstrument()


@pytest.fixture
def counted_since_start():
    """A component's counts since the test began (components are process-wide); the routing
    component's unless named."""
    counters = ("rust_calls", "fallbacks", "shadow_comparisons", "shadow_mismatches", "shadow_uncompared")
    before = litellm_rust.status()

    def counted(component: str = "routing") -> dict:
        now, then = litellm_rust.status()[component], before[component]
        reasons = {reason: n - then["fallback_reasons"].get(reason, 0) for reason, n in now["fallback_reasons"].items()}
        return {
            **{counter: now[counter] - then[counter] for counter in counters},
            "fallback_reasons": {reason: n for reason, n in reasons.items() if n},
            "mismatch_details": now["mismatch_details"],
        }

    return counted


@pytest.fixture
def assert_no_mismatch(counted_since_start):
    """Checks that no shadow comparison of a component (the routing component's unless named) has
    failed since the test began, and that some were made."""

    def check(component: str = "routing") -> None:
        status = counted_since_start(component)
        assert status["shadow_mismatches"] == 0, status["mismatch_details"]
        assert status["shadow_comparisons"] > 0

    return check


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def metric_points(reader) -> dict[str, list]:
    points = collections.defaultdict(list)
    for resource_metrics in reader.get_metrics_data().resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points[metric.name].extend((metric, point) for point in metric.data.data_points)
    return points
