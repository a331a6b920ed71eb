"""The exporter configuration: Prometheus and Alertmanager configs accepted by their own tools, the
degrade route reaching the package's webhook, the Collector config wired and on loopback. The rules
and the Alertmanager config are the package's data (`litellm-rust export ...` writes them out)."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from servers import require_tool

from dashboards import ASSETS, alerts

ROOT = Path(__file__).resolve().parent.parent
EXPORTERS = ROOT / "exporters"
PROMETHEUS = EXPORTERS / "prometheus" / "prometheus.yml"
RULES = alerts.DEFAULT_OUT
ALERTMANAGER = ASSETS / "alertmanager" / "alertmanager.yml"
COLLECTOR = EXPORTERS / "otel-collector" / "config.yaml"
WEBHOOK_URL = "http://127.0.0.1:9465/alerts"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d)", duration))


# -- Prometheus ------------------------------------------------------------------------------------


def test_promtool_accepts_the_prometheus_config_and_its_rules():
    result = run(require_tool("promtool"), "check", "config", str(PROMETHEUS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout and "litellm-rust-alerts.yaml" in result.stdout


def test_prometheus_scrapes_the_package_and_alerts_alertmanager():
    config = load(PROMETHEUS)
    assert [(PROMETHEUS.parent / path).resolve() for path in config["rule_files"]] == [RULES.resolve()]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "litellm-rust"]
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:9464"]
    (alertmanager,) = config["alerting"]["alertmanagers"]
    assert alertmanager["static_configs"][0]["targets"] == ["127.0.0.1:9093"]


# -- Alertmanager ----------------------------------------------------------------------------------


def test_amtool_accepts_the_alertmanager_config():
    result = run(require_tool("amtool"), "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


DEGRADE = ["action=degrade", "component=token_counter", "severity=critical"]


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=LiteLLMRustErrorRatioHigh", *DEGRADE], "litellm-rust-degrade"),
        (["alertname=LiteLLMRustShadowMismatches", *DEGRADE], "litellm-rust-degrade"),
        (["alertname=LiteLLMRustBreakerOpen", "component=token_counter", "severity=warning"], "null"),
        (["alertname=LiteLLMRustConfigReloadErrors", "component=control_plane", "severity=warning"], "null"),
    ],
)
def test_only_degrade_alerts_reach_the_webhook(labels, receiver):
    result = run(require_tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_degrade_receiver_calls_the_package_webhook_with_a_token():
    config = load(ALERTMANAGER)
    (route,) = [route for route in config["route"]["routes"] if route["receiver"] == "litellm-rust-degrade"]
    assert route["matchers"] == ['action="degrade"']
    assert route["group_by"] == ["alertname", "component"]
    assert seconds(route["group_wait"]) <= 10
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    (webhook,) = receivers["litellm-rust-degrade"]["webhook_configs"]
    assert webhook["url"] == WEBHOOK_URL and webhook["send_resolved"] is True
    authorization = webhook["http_config"]["authorization"]
    assert authorization.get("type", "Bearer") == "Bearer" and authorization["credentials_file"]
    assert "credentials" not in authorization  # never an inline secret


def test_other_alerts_go_to_a_receiver_that_does_nothing():
    config = load(ALERTMANAGER)
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    default = receivers[config["route"]["receiver"]]
    assert [key for key in default if key.endswith("_configs")] == []
    assert {"alertname", "component"} <= set(config["route"]["group_by"])


# -- OpenTelemetry Collector (no binary here: checked structurally) --------------------------------


def collector_endpoints(node, path=()):
    """Every `endpoint` (and `host`) value in the config, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("endpoint", "host") and isinstance(value, str):
                yield ".".join(path + (key,)), value
            else:
                yield from collector_endpoints(value, path + (str(key),))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from collector_endpoints(value, path + (str(index),))


def test_collector_pipelines_use_only_defined_components():
    config = load(COLLECTOR)
    pipelines = config["service"]["pipelines"]
    assert pipelines
    for name, pipeline in pipelines.items():
        assert pipeline.get("receivers") and pipeline.get("exporters"), name
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in (config.get(kind) or {}), f"{name}: {kind[:-1]} {component} is not defined"


def test_collector_receives_otlp_and_serves_prometheus_on_9464():
    config = load(COLLECTOR)
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "127.0.0.1:4317"
    assert protocols["http"]["endpoint"] == "127.0.0.1:4318"
    assert config["exporters"]["prometheus"]["endpoint"] == "127.0.0.1:9464"
    metrics = config["service"]["pipelines"]["metrics"]
    assert "otlp" in metrics["receivers"] and {"prometheus", "debug"} <= set(metrics["exporters"])


def test_collector_listens_only_on_loopback():
    endpoints = list(collector_endpoints(load(COLLECTOR)))
    assert len(endpoints) >= 4
    for where, endpoint in endpoints:
        assert endpoint.split(":")[0] == "127.0.0.1", f"{where} = {endpoint}"


def test_readme_describes_every_exporter_file():
    readme = (EXPORTERS / "README.md").read_text(encoding="utf-8")
    for path in (PROMETHEUS, RULES, ALERTMANAGER, COLLECTOR):
        assert f"`{path.relative_to(ROOT)}`" in readme
