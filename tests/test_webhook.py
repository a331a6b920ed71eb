"""The Alertmanager webhook receiver and the Prometheus endpoint, over real HTTP on 127.0.0.1."""

import json
import urllib.error
import urllib.request

import litellm
import litellm_rust
import pytest
from corpus import CHAT
from litellm_rust.control_plane import PLANE


def alert(
    status="firing",
    alertname="LiteLLMRustErrorRatioHigh",
    component="token_counter",
    action="degrade",
    fingerprint="f1",
):
    labels = {"alertname": alertname, "component": component, "severity": "critical"}
    if action:
        labels["action"] = action
    return {"status": status, "labels": labels, "annotations": {}, "fingerprint": fingerprint}


def payload(*alerts, status="firing") -> bytes:
    return json.dumps({"version": "4", "status": status, "receiver": "litellm-rust", "alerts": list(alerts)}).encode()


def post(port: int, body: bytes, token: str | None = None, path: str = "/alerts") -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def webhook():
    receiver = litellm_rust.start_alert_webhook(port=0)
    try:
        yield receiver
    finally:
        receiver.stop()


def breaker() -> dict:
    return litellm_rust.status()["token_counter"]["breaker"]


def test_a_firing_degrade_alert_moves_the_component_to_python(instrumented, webhook):
    status, body = post(webhook.port, payload(alert()))
    assert status == 200 and body["applied"][0]["decision"] == "degrade"
    assert breaker()["state"] == "open" and breaker()["forced"] is True
    rust_before = litellm_rust.status()["token_counter"]["rust_calls"]
    litellm.token_counter(model="gpt-4o", messages=CHAT)
    assert litellm_rust.status()["token_counter"]["rust_calls"] == rust_before


def test_resolution_releases_to_probing_not_straight_to_rust(instrumented, webhook):
    post(webhook.port, payload(alert()))
    status, body = post(webhook.port, payload(alert(status="resolved"), status="resolved"))
    assert status == 200 and body["applied"][0]["decision"] == "release"
    assert breaker()["state"] == "half_open" and breaker()["forced"] is False


def test_the_component_stays_degraded_while_another_alert_still_fires(instrumented, webhook):
    post(webhook.port, payload(alert(), alert(alertname="LiteLLMRustShadowMismatches", fingerprint="f2")))
    status, body = post(webhook.port, payload(alert(status="resolved")))
    assert body["applied"][0]["decision"] == "held"
    assert breaker()["state"] == "open"
    post(webhook.port, payload(alert(status="resolved", alertname="LiteLLMRustShadowMismatches", fingerprint="f2")))
    assert breaker()["state"] == "half_open"


def test_alerts_without_the_degrade_action_are_ignored(instrumented, webhook):
    status, body = post(webhook.port, payload(alert(action=None, alertname="LiteLLMRustSlowerThanPython")))
    assert (status, body) == (200, {"applied": []})
    assert breaker()["state"] == "closed"


@pytest.mark.parametrize(
    "body, status, reason",
    [
        (b"{not json", 400, "malformed JSON"),
        (b'{"alerts": "nope"}', 400, "alerts list"),
        (payload(alert(component="router_of_doom")), 422, "unknown component"),
        (payload(alert(), alert(component="router_of_doom")), 422, "unknown component"),
        (payload(dict(alert(), status="pending"), status="pending"), 400, "firing or resolved"),
    ],
    ids=["malformed", "no-alerts-list", "unknown-component", "one-bad-alert-rejects-all", "bad-status"],
)
def test_bad_requests_are_4xx_and_change_nothing(instrumented, webhook, body, status, reason):
    rejected_before = PLANE.webhook_decisions["reject"]
    answer, response = post(webhook.port, body)
    assert answer == status and reason in response["error"]
    assert breaker()["state"] == "closed"
    assert PLANE.webhook_decisions["reject"] == rejected_before + 1


def test_unknown_paths_are_404(webhook):
    assert post(webhook.port, payload(alert()), path="/elsewhere")[0] == 404


def test_a_bearer_token_is_required_when_configured(instrumented):
    receiver = litellm_rust.start_alert_webhook(port=0, token="s3cret")
    try:
        assert post(receiver.port, payload(alert()))[0] == 401
        assert post(receiver.port, payload(alert()), token="wrong")[0] == 401
        assert breaker()["state"] == "closed"
        assert post(receiver.port, payload(alert()), token="s3cret")[0] == 200
        assert breaker()["state"] == "open"
    finally:
        receiver.stop()


def test_binding_beyond_loopback_needs_a_token():
    with pytest.raises(ValueError, match="requires a bearer token"):
        litellm_rust.start_alert_webhook(port=0, host="0.0.0.0")


def test_the_metrics_endpoint_serves_every_series_from_start_up(instrumented):
    server = litellm_rust.start_metrics_server(port=0)
    try:
        litellm.token_counter(model="gpt-4o", messages=CHAT)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            exposition = response.read().decode()
    finally:
        server.stop()
        PLANE.use_telemetry()
    for series in (
        'litellm_rust_operation_calls_total{litellm_rust_implementation="rust",litellm_rust_mode="rust",litellm_rust_operation="token_counter"',
        'litellm_rust_fallbacks_total{error_type="rust_error",litellm_rust_operation="token_counter"',
        "litellm_rust_shadow_mismatches_total{",
        "litellm_rust_breaker_state{",
        "litellm_rust_config_reload_errors_total{",
        'litellm_rust_webhook_decisions_total{litellm_rust_webhook_decision="degrade"',
    ):
        assert series in exposition


def test_the_webhook_runs_while_instrumented_when_configured_by_environment(monkeypatch, tmp_path):
    from servers import free_port

    port = free_port()
    (tmp_path / "token").write_text("from-a-file\n")
    monkeypatch.setenv("OTEL_PYTHON_LITELLM_RUST_WEBHOOK_ADDRESS", f"127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_PYTHON_LITELLM_RUST_WEBHOOK_TOKEN_FILE", str(tmp_path / "token"))
    instrumentor = litellm_rust.LiteLLMRustInstrumentor()
    instrumentor.instrument()
    try:
        assert post(port, payload(alert()))[0] == 401
        assert post(port, payload(alert()), token="from-a-file")[0] == 200
        assert breaker()["state"] == "open"
    finally:
        instrumentor.uninstrument()
    with pytest.raises(OSError):
        post(port, payload(alert()))


def test_a_webhook_that_cannot_start_leaves_litellm_uninstrumented(monkeypatch):
    occupied = litellm_rust.start_alert_webhook(port=0)
    try:
        monkeypatch.setenv("OTEL_PYTHON_LITELLM_RUST_WEBHOOK_ADDRESS", f"127.0.0.1:{occupied.port}")
        with pytest.raises(OSError):
            litellm_rust.LiteLLMRustInstrumentor().instrument()
        assert litellm_rust.status()["token_counter"]["instrumented"] is False
        assert PLANE._reloader is None
    finally:
        occupied.stop()
