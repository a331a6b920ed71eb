"""The Alertmanager webhook receiver that degrades components.

Alertmanager POSTs its webhook JSON here. Every alert labelled `action: degrade` names a
`component`: while any such alert fires for a component, its breaker is held open (Python serves,
through `force_open`); when the last one resolves, the breaker is released to half-open probing
(`release`), not straight back to full Rust. Other alerts are acknowledged and ignored.

The receiver binds to 127.0.0.1 by default; binding anywhere else requires a bearer token.
A malformed payload, an unknown component or a missing or wrong token is a 4xx with a reason,
logged, and changes nothing. Every decision is counted (`litellm_rust.webhook.decisions`) and
becomes a span or span event.
"""

import hmac
import ipaddress
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from litellm_rust.control_plane import PLANE

_logger = logging.getLogger("litellm_rust")

ALERTS_PATH = "/alerts"
_MAX_BODY_BYTES = 1 << 20


class _Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class AlertWebhook:
    """A running receiver; `url` is what Alertmanager's `webhook_configs` should call."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> None:
        if token is None and not _is_loopback(host):
            raise ValueError(f"binding the alert webhook to {host} requires a bearer token")
        self._token = token
        self._lock = threading.Lock()
        # component -> the degrade alerts currently firing for it (by alertname + fingerprint)
        self._firing: dict[str, set[str]] = {}
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="litellm-rust-webhook", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}{ALERTS_PATH}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- handling -----------------------------------------------------------------------------

    def _handler_class(self):
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                try:
                    status, body = 200, webhook.handle(self.path, self.headers.get("Authorization"), self._body())
                except _Rejected as rejected:
                    status, body = rejected.status, {"error": rejected.reason}
                    PLANE.record_webhook_decision("reject", rejected.reason)
                    _logger.warning("litellm_rust webhook rejected a request: %s", rejected.reason)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                if length > _MAX_BODY_BYTES:
                    raise _Rejected(413, "payload too large")
                return self.rfile.read(length)

            def log_message(self, format: str, *args) -> None:  # requests are logged as decisions
                pass

        return Handler

    def handle(self, path: str, authorization: str | None, body: bytes) -> dict:
        """Apply one webhook request; raises `_Rejected` with the 4xx to send."""
        if path.split("?", 1)[0] != ALERTS_PATH:
            raise _Rejected(404, f"unknown path {path}")
        if self._token is not None and not hmac.compare_digest(authorization or "", f"Bearer {self._token}"):
            raise _Rejected(401, "missing or wrong bearer token")
        decisions = self._decisions(_parse(body))
        with self._lock:
            applied = [self._apply(*decision) for decision in decisions]
        return {"applied": [entry for entry in applied if entry]}

    def _decisions(self, payload: dict) -> list[tuple[str, str, str, str]]:
        """(component, alert key, alertname, firing|resolved) for every degrade alert; the whole
        request is rejected before anything changes if one of them is invalid."""
        controls = PLANE.controls
        decisions, ignored = [], 0
        for alert in payload["alerts"]:
            labels = alert.get("labels") if isinstance(alert, dict) else None
            if not isinstance(labels, dict):
                raise _Rejected(400, "every alert needs a labels object")
            if labels.get("action") != "degrade":
                ignored += 1
                continue
            component = labels.get("component")
            if component not in controls:
                raise _Rejected(422, f"unknown component {component!r}")
            status = alert.get("status", payload.get("status"))
            if status not in ("firing", "resolved"):
                raise _Rejected(400, f"alert status must be firing or resolved, got {status!r}")
            alertname = str(labels.get("alertname", "unnamed"))
            decisions.append((component, f"{alertname}/{alert.get('fingerprint', '')}", alertname, status))
        for _ in range(ignored):  # counted only once the whole request is known to be valid
            PLANE.record_webhook_decision("ignore", "no degrade action")
        return decisions

    def _apply(self, component: str, key: str, alertname: str, status: str) -> dict | None:
        firing = self._firing.setdefault(component, set())
        if status == "firing":
            firing.add(key)
            PLANE.force_open(component, f"alert {alertname} firing")
            PLANE.record_webhook_decision("degrade", alertname, component)
            _logger.warning("litellm_rust webhook: %s degraded to Python (%s firing)", component, alertname)
            return {"component": component, "alert": alertname, "decision": "degrade"}
        if key not in firing:
            return None  # a resolution for an alert we never acted on
        firing.discard(key)
        if firing:
            return {"component": component, "alert": alertname, "decision": "held", "still_firing": sorted(firing)}
        PLANE.release(component, f"alert {alertname} resolved")
        PLANE.record_webhook_decision("release", alertname, component)
        _logger.warning("litellm_rust webhook: %s released to probing (%s resolved)", component, alertname)
        return {"component": component, "alert": alertname, "decision": "release"}


def _parse(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _Rejected(400, "malformed JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise _Rejected(400, "expected Alertmanager's webhook payload with an alerts list")
    return payload


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start_alert_webhook(port: int = 0, host: str = "127.0.0.1", token: str | None = None) -> AlertWebhook:
    """Start the Alertmanager webhook receiver (see the module docstring); `.stop()` ends it."""
    return AlertWebhook(host, port, token)
