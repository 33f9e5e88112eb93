"""Fixtures of the alerts tests: a real HTTPS receiver on 127.0.0.1 with a trustme CA, and events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from demo.fakes import LocalHttpsServer

EVENTS = Path(__file__).resolve().parents[2] / "events" / "alerts"
EVENT_NAMES = sorted(path.stem for path in EVENTS.glob("*.json"))


def load(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text())


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0  # the status the receiver answered with


class Receiver:
    """Answers POSTs from a per-path script of replies (200 "ok" once the script runs out)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: dict[str, list[Reply]] = {}
        self.lock = threading.Lock()
        self.url = ""
        # When set, decides every reply (path, parsed body) -> Reply; the script is not used.
        self.responder: Callable[[str, Any], Reply] | None = None

    def plan(self, path: str, *replies: Reply) -> None:
        with self.lock:
            self.script[path] = list(replies)

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.script.clear()
            self.responder = None

    def next_reply(self, path: str) -> Reply:
        with self.lock:
            queue = self.script.get(path)
            return queue.pop(0) if queue else Reply()

    def bodies(self, path: str) -> list[Any]:
        return [item.body for item in self.received if item.path == path]


def _handler_class(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as webhook services answer

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            responder = receiver.responder
            reply = responder(self.path, body) if responder is not None else receiver.next_reply(self.path)
            with receiver.lock:
                receiver.received.append(Received(self.path, dict(self.headers), body, reply.status))
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def https_receiver(folder: Path) -> Iterator[tuple[Receiver, str]]:
    """A :class:`Receiver` on https://127.0.0.1:<port> and the path of the CA bundle that trusts it."""
    receiver = Receiver()
    with LocalHttpsServer(_handler_class(receiver), folder / "ca.pem") as server:
        receiver.url = server.url
        yield receiver, str(server.ca_path)


@pytest.fixture(scope="session")
def _https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Receiver, str]]:
    with https_receiver(tmp_path_factory.mktemp("ca")) as served:
        yield served


@pytest.fixture
def receiver(_https: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """The local HTTPS receiver, trusted through REQUESTS_CA_BUNDLE for this test."""
    server, bundle = _https
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    server.reset()
    yield server
    server.reset()


@pytest.fixture(autouse=True)
def _fresh_secret_cache() -> Iterator[None]:
    from alerts import aws

    aws.clear_cache()
    yield
    aws.clear_cache()
