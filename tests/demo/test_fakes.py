"""The shared stand-ins: the Lambda context object and the local HTTPS server with its own CA."""

from __future__ import annotations

import ssl
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from demo.fakes import FakeContext, LocalHttpsServer
from tests.lifetime.kit import FakeContext as KitFakeContext
from tests.lifetime.kit import LambdaRuntime


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_https_server_is_verified_through_its_own_ca(tmp_path: Path) -> None:
    with LocalHttpsServer(_Hello, tmp_path / "ca.pem") as server:
        assert server.url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(server.ca_path))
        with urllib.request.urlopen(server.url + "/x", context=trusted, timeout=5) as response:
            assert response.read() == b"hello /x"
        with pytest.raises(urllib.request.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(server.url + "/x", context=ssl.create_default_context(), timeout=5)


def test_fake_context_defaults_and_overrides() -> None:
    default = FakeContext()
    assert default.aws_request_id == FakeContext.aws_request_id
    assert default.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:opsauto-test-function"
    assert default.get_remaining_time_in_millis() == 300_000
    custom = FakeContext("opsauto-x", region="eu-central-1", remaining_ms=5, memory_mb=512, request_id="r-1")
    assert (custom.aws_request_id, custom.memory_limit_in_mb, custom.get_remaining_time_in_millis()) == ("r-1", 512, 5)
    assert custom.invoked_function_arn.startswith("arn:aws:lambda:eu-central-1:")
    assert KitFakeContext is FakeContext


def test_lambda_runtime_gives_each_invocation_its_own_request_id() -> None:
    seen: list[tuple[str, str]] = []
    runtime = LambdaRuntime(lambda event, context: seen.append((context.function_name, context.aws_request_id)))
    runtime.invoke({})
    runtime.invoke({})
    assert [name for name, _ in seen] == ["opsauto-lifetime", "opsauto-lifetime"]
    assert seen[0][1] != seen[1][1]
