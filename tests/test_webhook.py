"""The Alertmanager webhook receiver and the Prometheus endpoint, over real HTTP on 127.0.0.1."""

import json
import logging
import socket
import urllib.error
import urllib.request

import litellm
import litellm_rust
import pytest
from corpus import CHAT
from litellm_rust.control_plane import PLANE
from litellm_rust.webhook import LOG_LINES_PER_MINUTE, MAX_ALERTS_PER_COMPONENT, MAX_BODY_BYTES
from servers import wait_until


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


def post(
    port: int, body: bytes, token: str | None = None, path: str = "/alerts", timeout: float = 5
) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
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


def test_binding_beyond_loopback_must_be_asked_for():
    with pytest.raises(ValueError, match="allow_remote=True"):
        litellm_rust.start_alert_webhook(port=0, host="0.0.0.0", token="s3cret")


def test_binding_beyond_loopback_needs_a_token_even_when_asked_for():
    with pytest.raises(ValueError, match="requires a bearer token"):
        litellm_rust.start_alert_webhook(port=0, host="0.0.0.0", allow_remote=True)


def test_the_metrics_endpoint_beyond_loopback_must_be_asked_for():
    with pytest.raises(ValueError, match="allow_remote=True"):
        litellm_rust.start_metrics_server(port=0, host="0.0.0.0")


# -- requests as an attacker would send them ---------------------------------------------------


def exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def status_code(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def raw_post(headers: dict[str, bytes], body: bytes = b"") -> bytes:
    lines = [b"POST /alerts HTTP/1.1", b"Host: 127.0.0.1"] + [
        name.encode() + b": " + value for name, value in headers.items()
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest.fixture
def guarded_webhook():
    receiver = litellm_rust.start_alert_webhook(port=0, token="s3cret")
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.mark.parametrize("length", [b"1000000", b"-1"], ids=["large", "negative"])
def test_the_token_is_checked_before_any_body_is_read(guarded_webhook, length):
    # No body is sent: an answer at all shows the server did not wait to read one.
    assert status_code(exchange(guarded_webhook.port, raw_post({"Content-Length": length}))) == 401


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 411),
        ({"Transfer-Encoding": b"chunked"}, 411),
        ({"Content-Length": b"-1"}, 400),
        ({"Content-Length": b"abc"}, 400),
        ({"Content-Length": b"+12"}, 400),
        ({"Content-Length": str(MAX_BODY_BYTES + 1).encode()}, 413),
    ],
    ids=["missing", "chunked", "negative", "not-a-number", "signed", "over-the-cap"],
)
def test_a_body_length_that_is_missing_invalid_or_too_large_is_refused_unread(guarded_webhook, headers, status):
    request = raw_post({"Authorization": b"Bearer s3cret", **headers})
    assert status_code(exchange(guarded_webhook.port, request)) == status


def test_a_non_ascii_token_is_compared_as_the_bytes_sent(instrumented):
    receiver = litellm_rust.start_alert_webhook(port=0, token="s\u00e9cret")
    try:
        body = payload(alert())
        length = str(len(body)).encode()
        accepted = raw_post({"Authorization": "Bearer s\u00e9cret".encode(), "Content-Length": length}, body)
        assert status_code(exchange(receiver.port, accepted)) == 200
    finally:
        receiver.stop()


def deeply_nested() -> bytes:
    return b'{"alerts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize(
    "authorization, body, status",
    [
        ("Bearer caf\u00e9".encode(), payload(alert()), 401),
        (b"Bearer \xff\xfe", payload(alert()), 401),
        (b"Bearer s3cret", payload(alert(component=["token_counter"])), 422),
        (b"Bearer s3cret", payload(alert(component={"name": "token_counter"})), 422),
        (b"Bearer s3cret", payload(dict(alert(), fingerprint={"f": 1})), 400),
        (b"Bearer s3cret", deeply_nested(), 400),
    ],
    ids=["utf8-token", "latin1-token", "component-list", "component-dict", "fingerprint-dict", "deep-nesting"],
)
def test_hostile_requests_get_a_4xx_and_no_traceback(instrumented, guarded_webhook, capfd, authorization, body, status):
    request = raw_post({"Authorization": authorization, "Content-Length": str(len(body)).encode()}, body)
    assert status_code(exchange(guarded_webhook.port, request)) == status
    assert breaker()["state"] == "closed"
    assert "Traceback" not in capfd.readouterr().err


@pytest.fixture
def impatient_webhook():
    """A receiver that gives a request half a second and serves two connections at once."""
    receiver = litellm_rust.start_alert_webhook(port=0, request_timeout=0.5, max_connections=2)
    try:
        yield receiver
    finally:
        receiver.stop()


def test_an_idle_connection_is_closed(impatient_webhook):
    with socket.create_connection(("127.0.0.1", impatient_webhook.port), timeout=30) as idle:
        assert read_until_closed(idle) == b""


def test_a_body_that_never_arrives_is_a_408(impatient_webhook):
    request = raw_post({"Content-Length": b"1000"}, b"0123456789")
    with socket.create_connection(("127.0.0.1", impatient_webhook.port), timeout=30) as slow:
        slow.sendall(request)  # and never the other 990 bytes
        assert status_code(read_until_closed(slow)) == 408


def test_slow_clients_holding_every_connection_do_not_lock_others_out(instrumented, impatient_webhook):
    idle = [socket.create_connection(("127.0.0.1", impatient_webhook.port), timeout=30) for _ in range(2)]
    try:
        assert post(impatient_webhook.port, payload(alert()), timeout=30)[0] == 200
        assert [read_until_closed(connection) for connection in idle] == [b"", b""]
    finally:
        for connection in idle:
            connection.close()


def test_a_slow_scraper_does_not_lock_out_prometheus(instrumented):
    server = litellm_rust.start_metrics_server(port=0, request_timeout=0.5, max_connections=1)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as idle:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=30) as response:
                assert response.status == 200 and b"litellm_rust_breaker_state" in response.read()
            assert read_until_closed(idle) == b""
    finally:
        server.stop()
        PLANE.use_telemetry()


# -- who holds a component open ----------------------------------------------------------------


def test_an_alert_resolution_leaves_an_operators_hold_in_place(instrumented, webhook):
    litellm_rust.force_open("token_counter", "operator investigating")
    post(webhook.port, payload(alert()))
    status, body = post(webhook.port, payload(alert(status="resolved"), status="resolved"))
    assert body["applied"][0] == {
        "component": "token_counter",
        "alert": "LiteLLMRustErrorRatioHigh",
        "decision": "release",
        "still_held_by": ["operator"],
    }
    assert breaker()["state"] == "open" and breaker()["forced"] is True
    litellm_rust.release("token_counter", "operator done")
    assert breaker()["state"] == "half_open" and breaker()["forced"] is False


def test_an_operators_release_leaves_a_firing_alerts_hold_in_place(instrumented, webhook):
    post(webhook.port, payload(alert()))
    litellm_rust.force_open("token_counter", "operator investigating")
    litellm_rust.release("token_counter", "operator done")
    assert breaker()["state"] == "open" and breaker()["forced"] is True
    post(webhook.port, payload(alert(status="resolved"), status="resolved"))
    assert breaker()["state"] == "half_open"


# -- bounded memory and logs -------------------------------------------------------------------


def test_firing_alerts_remembered_per_component_are_capped(instrumented, webhook):
    flood = payload(*[alert(fingerprint=f"f{number}") for number in range(MAX_ALERTS_PER_COMPONENT + 100)])
    assert post(webhook.port, flood)[0] == 200
    assert len(webhook._firing["token_counter"]) == MAX_ALERTS_PER_COMPONENT
    assert breaker()["state"] == "open"


def test_webhook_warnings_are_rate_limited(instrumented, webhook, caplog):
    with caplog.at_level(logging.WARNING, logger="litellm_rust"):
        post(webhook.port, payload(*[alert(fingerprint=f"f{number}") for number in range(500)]))
        for _ in range(50):
            post(webhook.port, b"{not json")
    assert len([record for record in caplog.records if record.module == "webhook"]) == LOG_LINES_PER_MINUTE


def test_an_alert_never_resolved_expires_and_releases_its_hold(instrumented):
    receiver = litellm_rust.start_alert_webhook(port=0, alert_ttl_seconds=0.5)
    try:
        post(receiver.port, payload(alert()))
        assert breaker()["forced"] is True
        wait_until(lambda: not breaker()["forced"], 30, "the unresolved alert to expire")
        assert breaker()["state"] == "half_open"
        assert receiver._firing["token_counter"] == {}
    finally:
        receiver.stop()


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
