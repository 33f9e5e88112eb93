"""Checks against hostile endpoints on 127.0.0.1: every failure to read a response is a failed check with a
reason (never an exception that loses the other checks), every attempt is bounded by wall time, and the
job is answered before the invocation's deadline (the fake context's remaining time counts down).

The wall-time figures below are correctness bounds against the deadline the test gives the function,
not performance claims."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from demo.fakes import FakeContext
from post_deploy_checks import handler, http_checks
from post_deploy_checks.evaluate import CheckResult
from post_deploy_checks.spec import CheckSpec
from shared.clients import client
from tests.functions.post_deploy_checks.conftest import job_event, token_key_secret
from tests.functions.post_deploy_checks.hostile import SLOW_DNS_SUFFIX, HostileServer, slow_resolver

JOB_ID = "11111111-abcd-1111-abcd-111111abcdef"
# Generous slack over timeout_seconds for a loaded machine: what matters is that the bound is the
# timeout (a trickling body would otherwise take the server's 30 s).
SLACK = 2.0


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with HostileServer(stall=30, trickle_gap=0.05, max_stall=30) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def run(spec: CheckSpec, timeout: float = 0.5, attempts: int = 1) -> tuple[CheckResult, float]:
    started = time.monotonic()
    result = http_checks.run_check(spec, {}, attempts=attempts, interval_seconds=0, timeout_seconds=timeout)
    return result, time.monotonic() - started


@pytest.mark.parametrize(("behaviour", "reason"), [
    ("short-body", "body read failed"),
    ("reset-mid-body", "body read failed"),
    ("bad-gzip", "body read failed"),
    ("bad-chunked", "body read failed"),
    ("late-body", "no complete response within timeout_seconds 0.5"),
])
def test_errors_while_reading_the_body_are_failed_checks(hostile: HostileServer, behaviour: str,
                                                         reason: str) -> None:
    result, _ = run(CheckSpec(behaviour, hostile.url(behaviour)))
    assert not result.passed
    assert result.reason.startswith(reason), result.reason


def test_unknown_charset_fails_only_a_body_check(hostile: HostileServer) -> None:
    plain, _ = run(CheckSpec("status-only", hostile.url("bad-charset")))
    assert plain.passed and plain.status == 200
    body, _ = run(CheckSpec("body", hostile.url("bad-charset"), body_contains="ok"))
    assert not body.passed
    assert body.reason == "body has an unknown charset 'x-no-such-charset', so body_contains cannot be checked"


@pytest.mark.parametrize(("behaviour", "reason"), [
    ("trickle", "no complete response within timeout_seconds 0.5"),
    ("trickle-headers", "no complete response within timeout_seconds 0.5"),
    ("late-headers", "no complete response within timeout_seconds 0.5"),
    ("redirect-loop", "too many redirects"),
    ("reset", "connection failed: Connection reset"),
])
def test_every_attempt_is_bounded_by_wall_time(hostile: HostileServer, behaviour: str, reason: str) -> None:
    result, elapsed = run(CheckSpec(behaviour, hostile.url(behaviour)), timeout=0.5)
    assert not result.passed and result.reason.startswith(reason), result.reason
    assert elapsed < 0.5 + SLACK


def test_slow_name_resolution_is_bounded_too(hostile: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    slow_resolver(monkeypatch, resolve_delay=3.0)
    spec = CheckSpec("slow-dns", hostile.url("ok", host="api" + SLOW_DNS_SUFFIX))
    result, elapsed = run(spec, timeout=0.5, attempts=2)
    assert not result.passed and result.reason == "no complete response within timeout_seconds 0.5"
    assert elapsed < 2 * 0.5 + SLACK


# --------------------------------------------------------------------------- through the handler


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    with mock_aws():
        monkeypatch.setenv("TOKEN_KEY_SECRET_ARN", token_key_secret())
        stubber = Stubber(client("codepipeline"))
        with stubber:
            yield stubber
            stubber.assert_no_pending_responses()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"CHECKS": "", "HEADER_SECRETS": "", "SECRETS_MAX_AGE_SECONDS": "300",
                        "NOTIFY_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:opsauto-ops"}.items():
        monkeypatch.setenv(name, value)


def test_one_late_body_does_not_lose_the_other_results(hostile: HostileServer, pipeline: Stubber,
                                                       env: None) -> None:
    pipeline.add_response("put_job_failure_result", {}, {"jobId": JOB_ID, "failureDetails": ANY})
    event = job_event({"checks": [
        {"name": "healthy", "url": hostile.url("ok")},
        {"name": "late", "url": hostile.url("late-body")},
        {"name": "trickle", "url": hostile.url("trickle")},
        {"name": "gzip", "url": hostile.url("bad-gzip")},
    ], "attempts": 2, "interval_seconds": 0.2, "timeout_seconds": 0.5})
    context = FakeContext(remaining_ms=6_000, countdown=True)
    result = handler.handler(event, context)  # type: ignore[arg-type]
    assert context.get_remaining_time_in_millis() > 0, "answered after the invocation's deadline"
    assert result["type"] == "JobFailed"
    message = result["message"]
    assert message.startswith("3 of 4 check(s) failed: ")
    assert "late (200, -, 2 attempt(s)): FAILED: no complete response within timeout_seconds 0.5" in message
    assert "trickle (200, -, 2 attempt(s)): FAILED: no complete response" in message
    assert "gzip (200, " in message and "body read failed" in message


def test_the_job_is_answered_before_the_deadline_even_when_checks_outlast_it(
        hostile: HostileServer, pipeline: Stubber, env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # The checks' worst case fits the deadline on paper, but name resolution is not covered by any
    # socket timeout: the job must still be answered in time.
    slow_resolver(monkeypatch, resolve_delay=8.0)
    pipeline.add_response("put_job_failure_result", {}, {"jobId": JOB_ID, "failureDetails": ANY})
    event = job_event({"checks": [{"name": "dns", "url": hostile.url("ok", host="a" + SLOW_DNS_SUFFIX)}],
                       "attempts": 1, "timeout_seconds": 2})
    context = FakeContext(remaining_ms=4_000, countdown=True)
    result = handler.handler(event, context)  # type: ignore[arg-type]
    assert context.get_remaining_time_in_millis() > 0, "answered after the invocation's deadline"
    assert result["type"] == "JobFailed"
    assert "dns (no response, -, 1 attempt(s)): FAILED: no complete response within timeout_seconds 2" \
        in result["message"]


def test_credentials_and_tokens_in_urls_are_never_logged(hostile: HostileServer, pipeline: Stubber, env: None,
                                                         json_logs: io.StringIO) -> None:
    url = hostile.url("ok", query="api_token=tok-5e5e5e&region=eu").replace("http://", "http://deploy:pa55-w0rd@")
    bad = hostile.url("reset", query="sig=sig-7a7a7a").replace("http://", "http://ops:s3cr3t-pw@")
    pipeline.add_response("put_job_failure_result", {}, {"jobId": JOB_ID, "failureDetails": ANY})
    event = job_event({"checks": [{"name": "private", "url": url}, {"name": "reset", "url": bad}],
                       "timeout_seconds": 1})
    result = handler.handler(event, FakeContext(remaining_ms=30_000, countdown=True))  # type: ignore[arg-type]
    logs = json_logs.getvalue()
    lines = [json.loads(line) for line in logs.splitlines() if line.strip()]
    logged_urls = [line["url"] for line in lines if "url" in line]
    assert len(logged_urls) == 2
    for secret in ("pa55-w0rd", "tok-5e5e5e", "s3cr3t-pw", "sig-7a7a7a"):
        assert secret not in logs
        assert secret not in json.dumps(result)
    assert f"http://***@127.0.0.1:{hostile.port}/ok?api_token=***&region=***" in logged_urls
