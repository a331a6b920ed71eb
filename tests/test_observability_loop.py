"""The loop, end to end: an instrumented litellm workload scraped by a real Prometheus, alert rules
evaluated with short windows, a real Alertmanager calling the package's webhook, the component
degraded to Python and recovered. Every dashboard panel's query must return data from it."""

import os
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import litellm
import litellm_rust
import pytest
from corpus import CHAT
from litellm_rust import LiteLLMRustInstrumentor, _native
from litellm_rust.control_plane import PLANE
from servers import alertmanager, prometheus, wait_until

from dashboards.alerts import rule_groups
from dashboards.grafana import build_dashboards
from dashboards.render import panel_queries, render_overview_png

WINDOW = "5s"
RATE_INTERVAL = "60s"
# The component's own breaker is made lenient so that it is the alert that degrades it here.
SETTINGS = {
    "timing_sample_rate": 1.0,
    "breaker": {"max_error_rate": 1.0, "probe_rate": 1.0, "probes_to_close": 5},
}


def token_counter_status() -> dict:
    return litellm_rust.status()["token_counter"]


@pytest.fixture
def workload(own_strategy_callbacks):
    """litellm counting tokens continuously in the background, instrumented; the routers'
    handlers leave litellm's callback lists with the test (own_strategy_callbacks restores them)."""
    instrumentor = LiteLLMRustInstrumentor()
    instrumentor.instrument(**SETTINGS)
    stop = threading.Event()

    def run():
        while not stop.is_set():
            litellm.token_counter(model="gpt-4o", messages=CHAT)
            time.sleep(0.005)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    routers = routers_with_health()
    try:
        yield routers
    finally:
        stop.set()
        thread.join()
        instrumentor.uninstrument()


def routers_with_health() -> list:
    """A least-busy and a latency-based Router, each picked through the routing component, the
    latter with a latency sample: the routing health panels have data."""
    routers = []
    for strategy in ("least-busy", "latency-based-routing"):
        model_list = [
            {
                "model_name": f"loop-{strategy}",
                "litellm_params": {"model": "openai/gpt-4o", "api_key": "x"},
                "model_info": {"id": f"loop-{strategy}-{i}"},
            }
            for i in range(2)
        ]
        router = litellm.Router(model_list=model_list, routing_strategy=strategy)
        router.get_available_deployment(f"loop-{strategy}", messages=CHAT)
        routers.append(router)
    end = datetime.now()
    success = {
        "litellm_params": {
            "metadata": {"model_group": "loop-latency-based-routing"},
            "model_info": {"id": "loop-latency-based-routing-0"},
        }
    }
    routers[1]._core._selectors.default.log_success_event(success, None, end - timedelta(seconds=0.2), end)
    return routers


@pytest.fixture
def endpoints():
    metrics = litellm_rust.start_metrics_server(port=0)
    webhook = litellm_rust.start_alert_webhook(port=0)
    try:
        yield metrics, webhook
    finally:
        webhook.stop()
        metrics.stop()
        PLANE.use_telemetry()


def calls_by_implementation(server) -> dict[str, float]:
    result = server.query(
        f'sum by (litellm_rust_implementation) (rate(litellm_rust_operation_calls_total{{litellm_rust_operation="token_counter"}}[{WINDOW}]))'
    )
    return {sample["metric"]["litellm_rust_implementation"]: float(sample["value"][1]) for sample in result}


def test_a_rust_fault_fires_an_alert_that_degrades_the_component_until_it_resolves(workload, endpoints, tmp_path):
    metrics, webhook = endpoints
    with (
        alertmanager(tmp_path, webhook.url) as alertmanager_address,
        prometheus(
            tmp_path, f"127.0.0.1:{metrics.port}", rule_groups(window=WINDOW, for_="0s"), alertmanager_address
        ) as server,
    ):
        wait_until(lambda: calls_by_implementation(server).get("rust", 0) > 0, 30, "Rust calls in Prometheus")

        _native.inject_fault("error")
        wait_until(lambda: token_counter_status()["breaker"]["forced"], 45, "the webhook to force token_counter open")
        transition = token_counter_status()["breaker"]["transitions"][-1]
        assert transition["reason"] == "forced: alert LiteLLMRustErrorRatioHigh firing"
        wait_until(
            lambda: (lambda calls: calls.get("python", 0) > 0 and calls.get("rust", 0) == 0)(
                calls_by_implementation(server)
            ),
            30,
            "calls by implementation to show Python serving",
        )

        # While both implementations have recent samples and an alert fires, every panel shows data.
        variables = {
            "job": "litellm-rust",
            "instance": ".*",
            "component": "token_counter",
            "__rate_interval": RATE_INTERVAL,
        }
        queries = [query for dashboard in build_dashboards().values() for query in panel_queries(dashboard, variables)]
        assert queries and [title for title, query in queries if not server.query(query)] == []
        # A picture for review (LITELLM_RUST_ARTIFACTS keeps it), not a check.
        artifacts = Path(os.environ.get("LITELLM_RUST_ARTIFACTS", tmp_path))
        artifacts.mkdir(parents=True, exist_ok=True)
        now = time.time()
        render_overview_png(
            server.url, artifacts / "overview.png", start=now - 60, end=now, step="2s", variables=variables
        )

        _native.inject_fault(None)
        wait_until(
            lambda: token_counter_status()["breaker"]["state"] == "closed",
            60,
            "the alert to resolve and probes to close the breaker",
        )
        states = [(t["from"], t["to"]) for t in token_counter_status()["breaker"]["transitions"]]
        assert states[-2:] == [("open", "half_open"), ("half_open", "closed")]
        assert (
            token_counter_status()["breaker"]["transitions"][-2]["reason"]
            == "released: alert LiteLLMRustErrorRatioHigh resolved"
        )
        assert PLANE.webhook_decisions["degrade"] >= 1 and PLANE.webhook_decisions["release"] >= 1
