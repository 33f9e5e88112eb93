"""The HTTP checks against real local HTTPS endpoints on 127.0.0.1 (self-signed CA via SSL_CERT_FILE)."""

from __future__ import annotations

from typing import Any

import pytest

from post_deploy_checks import http_checks
from post_deploy_checks.evaluate import CheckResult
from post_deploy_checks.spec import CheckSpec, JsonExpectation
from tests.functions.post_deploy_checks.conftest import SECRET_TOKEN, Endpoints, Sleeps


def run(spec: CheckSpec, attempts: int = 1, interval: float = 2.0, sleep: Sleeps | None = None,
        headers: dict[str, str] | None = None, timeout: float = 5.0) -> CheckResult:
    return http_checks.run_check(spec, headers or {}, attempts=attempts, interval_seconds=interval,
                            timeout_seconds=timeout, sleep=sleep or Sleeps())


def test_healthy_endpoint_passes_first_time(endpoints: Endpoints) -> None:
    spec = CheckSpec("api", endpoints.url("/healthy"), body_contains='"ok"',
                     json=JsonExpectation("checks.0.state", "green"), max_latency_ms=5000)
    sleeps = Sleeps()
    result = run(spec, attempts=3, sleep=sleeps)
    assert result.passed and result.status == 200 and result.attempts == 1 and result.reason == ""
    assert result.latency_ms is not None and result.latency_ms > 0
    assert sleeps.calls == []


def test_503_fails_after_every_attempt(endpoints: Endpoints) -> None:
    sleeps = Sleeps()
    result = run(CheckSpec("api", endpoints.url("/unavailable")), attempts=3, interval=7, sleep=sleeps)
    assert not result.passed
    assert (result.status, result.attempts, result.reason) == (503, 3, "status 503, expected 200")
    assert sleeps.calls == [7, 7]


def test_503_can_be_expected(endpoints: Endpoints) -> None:
    assert run(CheckSpec("maint", endpoints.url("/unavailable"), expect_status=(503,))).passed


def test_slow_endpoint_over_max_latency(endpoints: Endpoints) -> None:
    result = run(CheckSpec("api", endpoints.url("/slow"), max_latency_ms=100))
    assert not result.passed and result.status == 200
    assert result.latency_ms is not None and result.latency_ms >= 250
    assert result.reason.startswith("latency ") and result.reason.endswith(" ms over max_latency_ms 100")


def test_slow_endpoint_over_timeout(endpoints: Endpoints) -> None:
    result = run(CheckSpec("api", endpoints.url("/slow")), timeout=0.1)
    assert not result.passed and result.status is None
    assert result.reason == "no complete response within timeout_seconds 0.1"


def test_a_redirect_can_be_expected_without_following_it(endpoints: Endpoints) -> None:
    before = endpoints.hits.get("/healthy", 0)
    moved = run(CheckSpec("moved", endpoints.url("/moved"), expect_status=(301,)))
    assert moved.passed and moved.status == 301
    assert endpoints.hits.get("/healthy", 0) == before  # the Location was not followed
    followed = run(CheckSpec("followed", endpoints.url("/moved"), json=JsonExpectation("status", "ok")))
    assert followed.passed and followed.status == 200 and endpoints.hits["/healthy"] == before + 1


def test_wrong_body(endpoints: Endpoints) -> None:
    result = run(CheckSpec("web", endpoints.url("/wrong-body"), body_contains="Welcome"))
    assert not result.passed and result.reason == "body does not contain 'Welcome'"


def test_json_path_mismatch(endpoints: Endpoints) -> None:
    result = run(CheckSpec("api", endpoints.url("/degraded"), json=JsonExpectation("status", "ok")))
    assert not result.passed
    assert result.reason == "json path 'status' is \"degraded\", expected \"ok\""


def test_flapping_endpoint_passes_on_second_attempt(endpoints: Endpoints, flapping_url: str) -> None:
    sleeps = Sleeps()
    result = run(CheckSpec("api", flapping_url), attempts=3, interval=4, sleep=sleeps)
    assert result.passed and result.attempts == 2 and result.status == 200
    assert sleeps.calls == [4]


def test_flapping_endpoint_fails_with_one_attempt(endpoints: Endpoints, flapping_url: str) -> None:
    result = run(CheckSpec("api", flapping_url), attempts=1)
    assert not result.passed and result.reason == "status 503, expected 200"


def test_connection_refused(endpoints: Endpoints, closed_port_url: str) -> None:
    result = run(CheckSpec("api", closed_port_url), attempts=2, interval=0)
    assert not result.passed and result.status is None and result.attempts == 2
    assert result.reason == "connection failed: Connection refused"


def test_untrusted_certificate_fails(endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    result = run(CheckSpec("api", endpoints.url("/healthy")))
    assert not result.passed and result.reason == "TLS error: certificate verify failed"


def test_headers_are_sent(endpoints: Endpoints) -> None:
    spec = CheckSpec("private", endpoints.url("/private"))
    assert not run(spec).passed
    assert run(spec, headers={"Authorization": f"Bearer {SECRET_TOKEN}"}).passed


def test_checks_run_concurrently_and_keep_their_order(endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    in_flight = 0
    most = 0
    real = http_checks._attempt

    async def spy(*args: Any, **kwargs: Any) -> Any:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            return await real(*args, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(http_checks, "_attempt", spy)
    specs = [CheckSpec(f"slow-{i}", endpoints.url(f"/slow?c={i}")) for i in range(4)]
    specs.append(CheckSpec("down", endpoints.url("/unavailable")))
    results = http_checks.run_checks(specs, {}, attempts=1, interval_seconds=0, timeout_seconds=5)
    assert [r.name for r in results] == [s.name for s in specs]
    assert [r.passed for r in results] == [True, True, True, True, False]
    assert most == 5  # all five requests were in flight together, in one event loop


def test_no_checks_no_threads() -> None:
    assert http_checks.run_checks([], {}, attempts=1, interval_seconds=0, timeout_seconds=1) == []
