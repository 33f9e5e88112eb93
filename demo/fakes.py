"""Stand-ins shared by the demo, the preview and the tests: a Lambda context object, and a local HTTPS
server on 127.0.0.1 with a CA of its own (trustme), so clients verify TLS as they would against the
real endpoint (trust it through ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` set to ``ca_path``)."""

from __future__ import annotations

import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

ACCOUNT = "123456789012"


class FakeContext:
    """The parts of the Lambda context object Powertools and the functions read.

    ``aws_request_id`` is fixed unless ``request_id`` is given, so tests can compare against
    ``FakeContext.aws_request_id``; a Lambda stand-in gives each invocation its own. With
    ``countdown=True`` the remaining time falls with wall time from the context's creation, as in Lambda
    (the invocation's deadline is ``deadline`` on ``time.monotonic()``); otherwise it stays ``remaining_ms``.
    """

    aws_request_id = "3f0b4e36-9d1d-4d8a-a3a4-6f1e0e5b8c11"
    function_version = "$LATEST"

    def __init__(
        self,
        function_name: str = "opsauto-test-function",
        *,
        region: str = "us-east-1",
        account: str = ACCOUNT,
        remaining_ms: int = 300_000,
        memory_mb: int = 256,
        request_id: str | None = None,
        countdown: bool = False,
    ) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        if request_id is not None:
            self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/01/01/[$LATEST]fake"
        self._remaining_ms = remaining_ms
        self._countdown = countdown
        self.deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        if not self._countdown:
            return self._remaining_ms
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up (a test of timeouts) is expected; anything else is shown.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class LocalHttpsServer:
    """``handler`` served over HTTPS on 127.0.0.1 (a free port) from a daemon thread.

    The CA's certificate is written to ``ca_path``; ``url`` is ``https://127.0.0.1:<port>``.
    Use as a context manager, or call ``close()``.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], ca_path: Path) -> None:
        import trustme  # a test/demo dependency only

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_path = ca_path
        ca.cert_pem.write_to_path(str(ca_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalHttpsServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
