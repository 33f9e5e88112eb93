"""Local HTTPS endpoints on 127.0.0.1 (trusted through SSL_CERT_FILE), events and helpers."""

from __future__ import annotations

import copy
import io
import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from demo.fakes import LocalHttpsServer
from tests.conftest import load_event

SECRET_TOKEN = "s3cr3t-header-value-9f8e7d"
# The continuation-token key the stack would generate (64 characters, as its secret's generator makes them).
TOKEN_KEY = b"k3y-0f-th3-c0nt1nuat10n-t0k3ns-" + b"x" * 33


def token_key_secret() -> str:
    """Create the token key's secret (inside mock_aws) and return its ARN."""
    import boto3

    return str(boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="opsauto-post-deploy-checks-token-key", SecretString=TOKEN_KEY.decode())["ARN"])


class Endpoints:
    """An HTTPS server with the endpoints the tests need; ``url(path)`` gives a full URL."""

    def __init__(self, base: str, ca_path: Path, hits: dict[str, int]) -> None:
        self.base = base
        self.ca_path = ca_path
        self.hits = hits

    def url(self, path: str) -> str:
        return self.base + path


def _slow(count: int) -> tuple[int, str, str]:
    time.sleep(0.3)
    return 200, json.dumps({"status": "ok"}), "application/json"


_Route = Callable[[int], tuple[int, str, str]]
# path -> (request count of that exact URL, or 1/0 authorized for /private) -> status, body, content type
_ROUTES: dict[str, _Route] = {
    "/healthy": lambda _: (200, json.dumps({"status": "ok", "checks": [{"state": "green"}]}), "application/json"),
    "/unavailable": lambda _: (503, "service unavailable", "text/plain"),
    "/slow": _slow,
    "/wrong-body": lambda _: (200, "<html>maintenance page</html>", "text/html"),
    "/moved": lambda _: (301, "moved", "text/plain"),
    "/degraded": lambda _: (200, json.dumps({"status": "degraded"}), "application/json"),
    # fails the first request of each distinct query string, then passes
    "/flapping": lambda count: (503, "warming up", "text/plain") if count == 1
    else (200, json.dumps({"status": "ok"}), "application/json"),
    "/private": lambda authorized: (200, json.dumps({"status": "ok"}), "application/json") if authorized
    else (401, "unauthorized", "text/plain"),
}


def _make_handler(hits: dict[str, int], lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: str, content_type: str = "application/json") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if 300 <= status < 400:
                self.send_header("Location", "/healthy")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            with lock:
                hits[self.path] = hits.get(self.path, 0) + 1
                count = hits[self.path]
            route = _ROUTES.get(self.path.split("?", 1)[0])
            if route is None:
                self._send(404, "not found", "text/plain")
                return
            if self.path.startswith("/private"):
                authorized = self.headers.get("Authorization") == f"Bearer {SECRET_TOKEN}"
                status, body, content_type = route(1 if authorized else 0)
            else:
                status, body, content_type = route(count)
            self._send(status, body, content_type)

        do_HEAD = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture(scope="session")
def _https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    hits: dict[str, int] = {}
    handler = _make_handler(hits, threading.Lock())
    with LocalHttpsServer(handler, tmp_path_factory.mktemp("ca") / "ca.pem") as server:
        yield Endpoints(server.url, server.ca_path, hits)


_unique = itertools.count()


@pytest.fixture
def endpoints(_https_server: Endpoints, monkeypatch: pytest.MonkeyPatch) -> Endpoints:
    """The local HTTPS endpoints, trusted through the standard CA-bundle variable."""
    monkeypatch.setenv("SSL_CERT_FILE", str(_https_server.ca_path))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    return _https_server


@pytest.fixture
def flapping_url(endpoints: Endpoints) -> str:
    """A URL that fails its first request and passes afterwards (fresh for every test)."""
    return endpoints.url(f"/flapping?n={next(_unique)}")


@pytest.fixture
def closed_port_url() -> str:
    """An https URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"https://127.0.0.1:{port}/health"


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    """Waits between attempts are recorded instead of slept."""
    from post_deploy_checks import runner

    sleeps = Sleeps()
    monkeypatch.setattr(runner, "SLEEP", sleeps)
    return sleeps


@pytest.fixture
def fixed_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request appears to take exactly 12 ms, so messages are exact."""
    from post_deploy_checks import http_checks

    ticks = itertools.count()
    monkeypatch.setattr(http_checks, "CLOCK", lambda: next(ticks) * 0.012)


def job_event(user_parameters: Any, *, continuation_token: str | None = None,
              fixture: str = "post_deploy_checks/codepipeline_job.json") -> dict[str, Any]:
    """The CodePipeline job event fixture with these UserParameters (dict -> JSON, str kept as is)."""
    event = copy.deepcopy(load_event(fixture))
    data = event["CodePipeline.job"]["data"]
    data["actionConfiguration"]["configuration"]["UserParameters"] = (
        user_parameters if isinstance(user_parameters, str) else json.dumps(user_parameters)
    )
    if continuation_token is not None:
        data["continuationToken"] = continuation_token
    return event


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Everything the function's Powertools logger writes (its JSON lines, extras included)."""
    from shared.observability import logger

    buffer = io.StringIO()
    stream = logging.StreamHandler(buffer)
    stream.setFormatter(logger.registered_formatter)
    logger.addHandler(stream)
    try:
        yield buffer
    finally:
        logger.removeHandler(stream)
