"""The HTTP server under the alert webhook and the metrics endpoint, bounded so that its clients can
neither pin the app's threads nor hold its connections open.

Each connection has one deadline for its whole request (a client that sends slowly, or nothing, is
closed when it passes, however it spaces its bytes), at most `max_connections` are served at once
(the next ones wait in the listen backlog until a slot frees), and listening beyond loopback is a
choice the caller states (`allow_remote=True`).
"""

import io
import ipaddress
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_logger = logging.getLogger("litellm_rust")

REQUEST_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 16
LISTEN_BACKLOG = 64


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, allow_remote: bool, what: str) -> None:
    """Refuse an address beyond loopback unless the caller asked for it."""
    if not allow_remote and not is_loopback(host):
        raise ValueError(
            f"{what} would listen on {host}, beyond loopback: pass allow_remote=True to expose it deliberately"
        )


class _DeadlineReader(io.RawIOBase):
    """Socket reads that share one deadline: a client sending a byte at a time cannot stretch it."""

    def __init__(self, connection: socket.socket, deadline: float, write_timeout: float) -> None:
        self._connection = connection
        self._deadline = deadline
        self._write_timeout = write_timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request not received before its deadline")
        self._connection.settimeout(remaining)
        try:
            return self._connection.recv_into(buffer)
        finally:
            self._connection.settimeout(self._write_timeout)  # the answer gets its own bound


class BoundedRequestHandler(BaseHTTPRequestHandler):
    """A request handler whose reads end at the server's per-request deadline (`TimeoutError`,
    which `http.server` answers by closing the connection)."""

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # an open makefile() would keep the socket from closing
        timeout = self.server.request_timeout
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, time.monotonic() + timeout, timeout))

    def log_message(self, format: str, *args) -> None:  # callers log what they decide
        pass


class BoundedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BoundedRequestHandler],
        *,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
        housekeeping=None,
    ) -> None:
        if request_timeout <= 0 or max_connections < 1:
            raise ValueError("request_timeout must be positive and max_connections at least 1")
        self.request_timeout = request_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._housekeeping = housekeeping
        self.address_family = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)[0][0]
        super().__init__(address, handler)
        self._thread: threading.Thread | None = None

    def start(self, name: str) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def process_request(self, request, client_address) -> None:
        # Waiting here, in the accept loop, leaves further connections in the listen backlog; every
        # slot is freed within its request's deadline.
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def service_actions(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping()

    def handle_error(self, request, client_address) -> None:
        # A client that vanished mid-answer is not the app's fault: no traceback on stderr.
        _logger.debug("litellm_rust: connection from %s ended with an error", client_address, exc_info=True)
