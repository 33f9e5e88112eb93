"""Hostile HTTP endpoints on 127.0.0.1: real sockets that misbehave the way broken services do.

``HostileServer`` speaks HTTP/1.1 by hand (so every byte and every delay is ours) and serves one behaviour
per path:

- ``/ok``                 200 with a JSON body at once
- ``/late-headers``       accepts the request, then waits ``stall`` seconds before the status line
- ``/late-body``          headers at once, the body only after ``stall`` seconds
- ``/trickle``            headers at once, then the body one byte every ``trickle_gap`` seconds
- ``/trickle-headers``    the status line and headers one byte every ``trickle_gap`` seconds
- ``/redirect-loop``      302 back to itself, forever
- ``/reset``              reads the request and resets the connection (RST, no response)
- ``/reset-mid-body``     headers and half the body, then a reset
- ``/short-body``         Content-Length larger than the body sent, then a clean close
- ``/bad-gzip``           ``Content-Encoding: gzip`` over bytes that are not gzip
- ``/bad-charset``        ``Content-Type: text/plain; charset=x-no-such-charset``
- ``/bad-chunked``        ``Transfer-Encoding: chunked`` with a chunk size that is not hex

Hosts ending in ``.slow-dns.test`` resolve to 127.0.0.1 after ``resolve_delay`` seconds through
:func:`slow_resolver` (a patched ``socket.getaddrinfo``: the only resolver a test on this machine can slow).
Every stall ends when the client goes away or after ``max_stall`` seconds, so no server thread outlives
its test for long.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

OK_BODY = json.dumps({"status": "ok", "checks": [{"state": "green"}]}).encode()
BEHAVIOURS = ("ok", "late-headers", "late-body", "trickle", "trickle-headers", "redirect-loop", "reset",
              "reset-mid-body", "short-body", "bad-gzip", "bad-charset", "bad-chunked")
SLOW_DNS_SUFFIX = ".slow-dns.test"


class HostileServer:
    """A threaded TCP server on 127.0.0.1; ``url(behaviour)`` gives the URL of one behaviour."""

    def __init__(self, *, stall: float = 30.0, trickle_gap: float = 0.05, max_stall: float = 30.0) -> None:
        self.stall = stall
        self.trickle_gap = trickle_gap
        self.max_stall = max_stall
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server._serve(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        self._server.server_bind()
        self._server.server_activate()
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="hostile-http")

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, behaviour: str, *, host: str = "127.0.0.1", query: str = "") -> str:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        return f"http://{host}:{self.port}/{behaviour}" + (f"?{query}" if query else "")

    def count(self, behaviour: str) -> int:
        with self._lock:
            return self.requests.get(behaviour, 0)

    # -- one connection
    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(self.max_stall)
        with contextlib.suppress(OSError):
            while True:
                path = _read_request(sock)
                if path is None:
                    return
                behaviour = path.split("?", 1)[0].lstrip("/")
                with self._lock:
                    self.requests[behaviour] = self.requests.get(behaviour, 0) + 1
                if not self._respond(sock, behaviour, path):
                    return

    def _respond(self, sock: socket.socket, behaviour: str, path: str) -> bool:
        """Answer one request; False when the connection is done."""
        return bool(getattr(self, "_" + behaviour.replace("-", "_"))(sock, path))

    # One method per behaviour: True keeps the connection open for the next request.
    def _ok(self, sock: socket.socket, path: str) -> bool:
        sock.sendall(_head(200, {"Content-Type": "application/json", "Content-Length": len(OK_BODY)}) + OK_BODY)
        return True

    def _late_headers(self, sock: socket.socket, path: str) -> bool:
        self._wait(sock, self.stall)
        sock.sendall(_head(200, {"Content-Length": len(OK_BODY)}) + OK_BODY)
        return False

    def _late_body(self, sock: socket.socket, path: str) -> bool:
        sock.sendall(_head(200, {"Content-Type": "application/json", "Content-Length": len(OK_BODY)}))
        self._wait(sock, self.stall)
        sock.sendall(OK_BODY)
        return False

    def _trickle(self, sock: socket.socket, path: str) -> bool:
        body = b'{"status": "ok", "padding": "' + b"x" * 2000 + b'"}'
        sock.sendall(_head(200, {"Content-Type": "application/json", "Content-Length": len(body)}))
        self._dribble(sock, body)
        return False

    def _trickle_headers(self, sock: socket.socket, path: str) -> bool:
        self._dribble(sock, _head(200, {"Content-Length": len(OK_BODY), "X-Padding": "p" * 2000}) + OK_BODY)
        return False

    def _redirect_loop(self, sock: socket.socket, path: str) -> bool:
        sock.sendall(_head(302, {"Location": path, "Content-Length": 0}))
        return True

    def _reset(self, sock: socket.socket, path: str) -> bool:
        _send_rst(sock)
        return False

    def _reset_mid_body(self, sock: socket.socket, path: str) -> bool:
        sock.sendall(_head(200, {"Content-Length": len(OK_BODY)}) + OK_BODY[: len(OK_BODY) // 2])
        time.sleep(0.05)
        _send_rst(sock)
        return False

    def _short_body(self, sock: socket.socket, path: str) -> bool:
        sock.sendall(_head(200, {"Content-Length": len(OK_BODY) + 500}) + OK_BODY)
        return False

    def _bad_gzip(self, sock: socket.socket, path: str) -> bool:
        junk = b"this is not gzip at all" * 4
        sock.sendall(_head(200, {"Content-Encoding": "gzip", "Content-Length": len(junk)}) + junk)
        return False

    def _bad_charset(self, sock: socket.socket, path: str) -> bool:
        body = b'{"status": "ok"}'
        sock.sendall(_head(200, {"Content-Type": "text/plain; charset=x-no-such-charset",
                                 "Content-Length": len(body)}) + body)
        return True

    def _bad_chunked(self, sock: socket.socket, path: str) -> bool:
        sock.sendall(_head(200, {"Transfer-Encoding": "chunked"}) + b"zz\r\nhello\r\n0\r\n\r\n")
        return False

    def _wait(self, sock: socket.socket, seconds: float) -> None:
        """Wait ``seconds`` (at most ``max_stall``), returning early when the client closes."""
        deadline = time.monotonic() + min(seconds, self.max_stall)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(min(left, 0.1))
            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    raise ConnectionAbortedError("client went away")
            except TimeoutError:
                continue
        sock.settimeout(self.max_stall)

    def _dribble(self, sock: socket.socket, data: bytes) -> None:
        deadline = time.monotonic() + self.max_stall
        for index in range(len(data)):
            if time.monotonic() > deadline:
                return
            sock.sendall(data[index : index + 1])
            time.sleep(self.trickle_gap)


def _read_request(sock: socket.socket) -> str | None:
    """The request target of the next request on ``sock`` (headers read, no body expected); None at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        data += chunk
        if len(data) > 65536:
            return None
    request_line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request_line.split(" ")
    return parts[1] if len(parts) >= 2 else "/"


def _head(status: int, headers: dict[str, Any]) -> bytes:
    reason = {200: "OK", 302: "Found"}.get(status, "Status")
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{name}: {value}" for name, value in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _send_rst(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer sees a TCP RST (connection reset by peer)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def slow_resolver(monkeypatch: pytest.MonkeyPatch, resolve_delay: float) -> None:
    """Hosts ending in ``.slow-dns.test`` resolve to 127.0.0.1 after ``resolve_delay`` seconds."""
    real: Callable[..., Any] = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.endswith(SLOW_DNS_SUFFIX):
            time.sleep(resolve_delay)
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@contextlib.contextmanager
def hostile_server(**kwargs: Any) -> Iterator[HostileServer]:
    with HostileServer(**kwargs) as server:
        yield server
