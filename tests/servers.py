"""Real Prometheus, Alertmanager and redis-server processes on free 127.0.0.1 ports, for the end-to-end tests."""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml


def require_tool(*names: str) -> str:
    """The first of `names` on PATH; a missing tool fails under CI=true and skips elsewhere."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    message = f"{' or '.join(names)} not installed (make test installs it with apt-get)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.25):
    """Poll `predicate` until it returns a truthy value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@contextmanager
def process(command: list[str], log: Path, ready_url: str):
    with open(log, "wb") as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until(
            lambda: urllib.request.urlopen(ready_url, timeout=2).status == 200 or child.poll() is not None,
            30,
            ready_url,
        )
        if child.poll() is not None:
            raise AssertionError(f"{command[0]} exited: {log.read_text()[-2000:]}")
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expression: str) -> list[dict]:
        answer = get_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expression})}")
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def alerts(self) -> list[dict]:
        return get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]


@contextmanager
def alertmanager(directory: Path, webhook_url: str):
    port = free_port()
    config = {
        "route": {
            "receiver": "null",
            "group_by": ["alertname", "component"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
            "routes": [{"receiver": "litellm-rust", "matchers": ['action="degrade"']}],
        },
        "receivers": [
            {"name": "null"},
            {"name": "litellm-rust", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]},
        ],
    }
    (directory / "alertmanager.yml").write_text(yaml.safe_dump(config))
    command = [
        require_tool("prometheus-alertmanager", "alertmanager"),
        f"--config.file={directory / 'alertmanager.yml'}",
        f"--storage.path={directory / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port on every interface
    ]
    with process(command, directory / "alertmanager.log", f"http://127.0.0.1:{port}/-/ready"):
        yield f"127.0.0.1:{port}"


@contextmanager
def prometheus(directory: Path, scrape_target: str, rule_groups: dict, alertmanager_address: str | None):
    port = free_port()
    (directory / "rules.yml").write_text(yaml.safe_dump(rule_groups))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(directory / "rules.yml")],
        "scrape_configs": [{"job_name": "litellm-rust", "static_configs": [{"targets": [scrape_target]}]}],
    }
    if alertmanager_address:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_address]}]}]}
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    command = [
        require_tool("prometheus"),
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with process(command, directory / "prometheus.log", f"http://127.0.0.1:{port}/-/ready"):
        yield Prometheus(f"http://127.0.0.1:{port}")


class RedisServer:
    def __init__(self, tmp_path) -> None:
        self.port = free_port()
        self.directory = tmp_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            require_tool("redis-server"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--enable-debug-command",
            "yes",
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, "redis-server to accept connections", interval=0.05)

    def _answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")

    def command(self, *words: str) -> bytes:
        """Send one command without waiting for the answer (used for DEBUG SLEEP)."""
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        connection.sendall((" ".join(words) + "\r\n").encode())
        return connection

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
