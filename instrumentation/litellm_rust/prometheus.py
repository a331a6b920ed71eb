"""A one-call Prometheus endpoint for litellm-rust's metrics (the embedded default).

Apps that already export OpenTelemetry metrics (OTLP, or `OTEL_METRICS_EXPORTER=prometheus` under
`opentelemetry-instrument`) need none of this: the instruments go to the configured
MeterProvider. Needs the `prometheus` extra (`opentelemetry-sdk`, `opentelemetry-exporter-prometheus`).
The endpoint is served by the same bounded server as the alert webhook (`_http_server`), not by
prometheus_client's, which gives every connection a thread for as long as the client likes.
"""

from dataclasses import dataclass

from litellm_rust._http_server import (
    MAX_CONNECTIONS,
    REQUEST_TIMEOUT_SECONDS,
    BoundedHTTPServer,
    BoundedRequestHandler,
    check_bind,
)
from litellm_rust.control_plane import PLANE


@dataclass
class MetricsServer:
    """A running endpoint: scrape `http://{host}:{port}/metrics`; `stop()` ends it."""

    host: str
    port: int
    _server: BoundedHTTPServer
    _meter_provider: object

    def stop(self) -> None:
        self._server.stop()
        self._meter_provider.shutdown()


def start_metrics_server(
    port: int = 9464,
    host: str = "127.0.0.1",
    *,
    allow_remote: bool = False,
    request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    max_connections: int = MAX_CONNECTIONS,
) -> MetricsServer:
    """Serve litellm-rust's metrics for Prometheus on `host:port` (port 0 picks a free one).

    A `host` beyond loopback needs `allow_remote=True`. Each request must arrive within
    `request_timeout` seconds; at most `max_connections` are served at once. From now on the
    package's instruments report to this endpoint's own registry (nothing is added to
    prometheus_client's global registry)."""
    check_bind(host, allow_remote, "the metrics endpoint")
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from prometheus_client import CollectorRegistry, MetricsHandler
    except ImportError as error:
        raise ImportError("start_metrics_server needs `pip install 'litellm-rust[prometheus]'`") from error
    registry = CollectorRegistry()
    handler = type("MetricsEndpointHandler", (BoundedRequestHandler, MetricsHandler), {"registry": registry})
    server = BoundedHTTPServer((host, port), handler, request_timeout=request_timeout, max_connections=max_connections)
    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    server.start("litellm-rust-metrics")
    PLANE.use_telemetry(meter_provider, PLANE.tracer_provider)
    return MetricsServer(host, server.server_address[1], server, meter_provider)
