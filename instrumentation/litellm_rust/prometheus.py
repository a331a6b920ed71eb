"""A one-call Prometheus endpoint for litellm-rust's metrics (the embedded default).

Apps that already export OpenTelemetry metrics (OTLP, or `OTEL_METRICS_EXPORTER=prometheus` under
`opentelemetry-instrument`) need none of this: the instruments go to the configured
MeterProvider. Needs the `prometheus` extra (`opentelemetry-sdk`, `opentelemetry-exporter-prometheus`).
"""

from dataclasses import dataclass

from litellm_rust.control_plane import PLANE


@dataclass
class MetricsServer:
    """A running endpoint: scrape `http://{host}:{port}/metrics`; `stop()` ends it."""

    host: str
    port: int
    _server: object
    _meter_provider: object

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._meter_provider.shutdown()


def start_metrics_server(port: int = 9464, host: str = "127.0.0.1") -> MetricsServer:
    """Serve litellm-rust's metrics for Prometheus on `host:port` (port 0 picks a free one).

    From now on the package's instruments report to this endpoint's own registry (nothing is
    added to prometheus_client's global registry)."""
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError as error:
        raise ImportError("start_metrics_server needs `pip install 'litellm-rust[prometheus]'`") from error
    registry = CollectorRegistry()
    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    server, _ = start_http_server(port, addr=host, registry=registry)
    PLANE.use_telemetry(meter_provider, PLANE.tracer_provider)
    return MetricsServer(host, server.server_address[1], server, meter_provider)
