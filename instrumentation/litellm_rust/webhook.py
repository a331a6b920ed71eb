"""The Alertmanager webhook receiver that degrades components.

Alertmanager POSTs its webhook JSON here. Every alert labelled `action: degrade` names a
`component`: while any such alert fires for a component, the receiver holds its breaker open
(Python serves, through `force_open`); when the last one resolves, or has not been re-sent for
`alert_ttl_seconds`, the receiver drops its hold and the breaker goes to half-open probing
(`release`), not straight back to full Rust. An operator's own `force_open()` is a separate hold that
only the operator's `release()` ends. Other alerts are acknowledged and ignored.

The receiver binds to 127.0.0.1 by default; binding anywhere else takes `allow_remote=True` and a
bearer token. The token is checked before a body is read, and a body must declare its length, within
`MAX_BODY_BYTES`. A malformed payload, an unknown component or a missing or wrong token is a 4xx with
a reason, logged (at most `LOG_LINES_PER_MINUTE` lines a minute), and changes nothing. Every decision
is counted (`litellm_rust.webhook.decisions`) and becomes a span or span event.
"""

import hmac
import json
import logging
import threading
import time

from litellm_rust._http_server import (
    MAX_CONNECTIONS,
    REQUEST_TIMEOUT_SECONDS,
    BoundedHTTPServer,
    BoundedRequestHandler,
    check_bind,
    is_loopback,
)
from litellm_rust.control_plane import PLANE

_logger = logging.getLogger("litellm_rust")

ALERTS_PATH = "/alerts"
MAX_BODY_BYTES = 1 << 20
# Longer than the degrade route's repeat_interval (10m in the shipped alertmanager.yml): a firing
# alert is re-sent well within it, so only an alert whose resolution was lost expires.
ALERT_TTL_SECONDS = 3600.0
# A component has a handful of degrade alerts; beyond this many, further ones are acknowledged (the
# component is already held) but not remembered.
MAX_ALERTS_PER_COMPONENT = 256
LOG_LINES_PER_MINUTE = 20


class _Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _LogBudget:
    """At most `per_minute` warning lines a minute; the rest are counted and summed up in one line."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._lock = threading.Lock()
        self._minute_started = float("-inf")
        self._logged = self._suppressed = 0

    def warning(self, message: str, *args) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._minute_started >= 60:
                if self._suppressed:
                    _logger.warning("litellm_rust webhook: %d more messages suppressed", self._suppressed)
                self._minute_started, self._logged, self._suppressed = now, 0, 0
            if self._logged >= self._per_minute:
                self._suppressed += 1
                return
            self._logged += 1
        _logger.warning(message, *args)


class AlertWebhook:
    """A running receiver; `url` is what Alertmanager's `webhook_configs` should call."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        *,
        allow_remote: bool = False,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
        alert_ttl_seconds: float = ALERT_TTL_SECONDS,
    ) -> None:
        check_bind(host, allow_remote, "the alert webhook")
        if not token and not is_loopback(host):
            raise ValueError(f"binding the alert webhook to {host} requires a bearer token")
        # Compared as bytes: a str comparison refuses non-ASCII headers with a TypeError.
        self._expected_authorization = f"Bearer {token}".encode() if token else None
        self._alert_ttl_seconds = alert_ttl_seconds
        self._log = _LogBudget(LOG_LINES_PER_MINUTE)
        self._lock = threading.Lock()
        # component -> {alertname/fingerprint: when last notified firing} for its firing degrade alerts
        self._firing: dict[str, dict[str, float]] = {}
        self._server = BoundedHTTPServer(
            (host, port),
            self._handler_class(),
            request_timeout=request_timeout,
            max_connections=max_connections,
            housekeeping=self.expire_alerts,
        )
        self._holder = f"alert webhook {self.url}"
        self._server.start("litellm-rust-webhook")

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}{ALERTS_PATH}"

    def stop(self) -> None:
        """Stop serving and drop this receiver's holds: no resolution could reach it any more."""
        self._server.stop()
        with self._lock:
            for component, firing in self._firing.items():
                if firing:
                    firing.clear()
                    self._release(component, "the alert webhook stopped")

    # -- handling -----------------------------------------------------------------------------

    def _handler_class(self):
        webhook = self

        class Handler(BoundedRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                try:
                    webhook.authorize(self.path, self.headers.get("Authorization"))
                    status, body = 200, webhook.apply(self._body())
                except _Rejected as rejected:
                    status, body = rejected.status, {"error": rejected.reason}
                    PLANE.record_webhook_decision("reject", rejected.reason)
                    webhook._log.warning("litellm_rust webhook rejected a request: %s", rejected.reason)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _body(self) -> bytes:
                """The declared body, refused (unread) when its length is missing, invalid or too large."""
                lengths = self.headers.get_all("Content-Length") or []
                if not lengths or "Transfer-Encoding" in self.headers:
                    raise _Rejected(411, "a Content-Length is required")
                declared = lengths[0].strip()
                if len(lengths) > 1 or not (declared.isascii() and declared.isdigit()):
                    raise _Rejected(400, "Content-Length must be one non-negative integer")
                length = int(declared)
                if length > MAX_BODY_BYTES:
                    raise _Rejected(413, f"payload too large (at most {MAX_BODY_BYTES} bytes)")
                try:
                    body = self.rfile.read(length)
                except TimeoutError:
                    raise _Rejected(408, "the body did not arrive in time") from None
                if len(body) < length:
                    raise _Rejected(400, "the body is shorter than its Content-Length")
                return body

        return Handler

    def authorize(self, path: str, authorization: str | None) -> None:
        """Raise `_Rejected` for a wrong path or token, before any body is read."""
        if path.split("?", 1)[0] != ALERTS_PATH:
            raise _Rejected(404, f"unknown path {_shown(path)}")
        if self._expected_authorization is None:
            return
        # http.client decodes header bytes as latin-1: encoding back gives the bytes the client sent.
        presented = (authorization or "").encode("latin-1", "replace")
        if not hmac.compare_digest(presented, self._expected_authorization):
            raise _Rejected(401, "missing or wrong bearer token")

    def apply(self, body: bytes) -> dict:
        """Apply one authorized webhook payload; raises `_Rejected` with the 4xx to send."""
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
            if not isinstance(component, str) or component not in controls:
                raise _Rejected(422, f"unknown component {_shown(component)}")
            status = alert.get("status", payload.get("status"))
            if status not in ("firing", "resolved"):
                raise _Rejected(400, f"alert status must be firing or resolved, got {_shown(status)}")
            alertname, fingerprint = labels.get("alertname", "unnamed"), alert.get("fingerprint", "")
            if not isinstance(alertname, str) or not isinstance(fingerprint, str):
                raise _Rejected(400, "alertname and fingerprint must be strings")
            decisions.append((component, f"{alertname}/{fingerprint}", alertname, status))
        for _ in range(ignored):  # counted only once the whole request is known to be valid
            PLANE.record_webhook_decision("ignore", "no degrade action")
        return decisions

    def _apply(self, component: str, key: str, alertname: str, status: str) -> dict | None:
        firing = self._firing.setdefault(component, {})
        if status == "firing":
            if key in firing or len(firing) < MAX_ALERTS_PER_COMPONENT:
                firing[key] = time.monotonic()
            PLANE.force_open(component, f"alert {alertname} firing", holder=self._holder)
            PLANE.record_webhook_decision("degrade", alertname, component)
            self._log.warning("litellm_rust webhook: %s degraded to Python (%s firing)", component, alertname)
            return {"component": component, "alert": alertname, "decision": "degrade"}
        if firing.pop(key, None) is None:
            return None  # a resolution for an alert we never acted on
        if firing:
            return {"component": component, "alert": alertname, "decision": "held", "still_firing": sorted(firing)}
        still_held_by = self._release(component, f"alert {alertname} resolved", alertname)
        decision = {"component": component, "alert": alertname, "decision": "release"}
        return decision | {"still_held_by": sorted(still_held_by)} if still_held_by else decision

    def _release(self, component: str, reason: str, alertname: str = "") -> set[str]:
        """Drop this receiver's hold (lock held); returns who still holds the component open."""
        still_held_by = PLANE.release(component, reason, holder=self._holder)
        PLANE.record_webhook_decision("release", alertname or reason, component)
        self._log.warning("litellm_rust webhook: %s released (%s)", component, reason)
        return still_held_by

    def expire_alerts(self) -> None:
        """Forget firing alerts not re-sent within the TTL, releasing a component none still holds."""
        horizon = time.monotonic() - self._alert_ttl_seconds
        with self._lock:
            for component, firing in self._firing.items():
                expired = [key for key, notified in firing.items() if notified < horizon]
                for key in expired:
                    del firing[key]
                if expired and not firing:
                    self._release(component, f"no firing notification for {self._alert_ttl_seconds:g}s")


def _shown(value: object) -> str:
    """A short repr for a rejection reason: a request cannot make the log line long."""
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _parse(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _Rejected(400, "malformed JSON") from None
    except RecursionError:
        raise _Rejected(400, "JSON nested too deeply") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise _Rejected(400, "expected Alertmanager's webhook payload with an alerts list")
    return payload


def start_alert_webhook(
    port: int = 0,
    host: str = "127.0.0.1",
    token: str | None = None,
    *,
    allow_remote: bool = False,
    request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    max_connections: int = MAX_CONNECTIONS,
    alert_ttl_seconds: float = ALERT_TTL_SECONDS,
) -> AlertWebhook:
    """Start the Alertmanager webhook receiver (see the module docstring); `.stop()` ends it.

    Beyond loopback it needs `allow_remote=True` and a `token`. Each request must arrive within
    `request_timeout` seconds; at most `max_connections` are served at once."""
    return AlertWebhook(
        host,
        port,
        token,
        allow_remote=allow_remote,
        request_timeout=request_timeout,
        max_connections=max_connections,
        alert_ttl_seconds=alert_ttl_seconds,
    )
