"""Bake time: after the checks pass, the job stays in progress with authenticated continuation tokens and the
checks and alarms run again every bake_interval_seconds; the job fails at the first failure and passes when
the bake ends clean. Alarms in moto, PutJob*Result through the Stubber (exact tokens), real HTTPS endpoints."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from post_deploy_checks import bake, handler, runner
from post_deploy_checks.bake import TOKEN_GRACE, TokenError, TokenState
from post_deploy_checks.spec import MAX_TOKEN, parse_config
from shared.clients import client
from tests.conftest import FakeContext
from tests.functions.post_deploy_checks.conftest import TOKEN_KEY, Endpoints, Sleeps, job_event, token_key_secret

JOB_ID = "11111111-abcd-1111-abcd-111111abcdef"
REQUEST_ID = FakeContext.aws_request_id
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BAKE = {"bake_seconds": 300, "bake_interval_seconds": 60}


# --------------------------------------------------------------------------- the pure part


def test_token_round_trip_and_size() -> None:
    state = TokenState(JOB_ID, "bake", NOW + timedelta(seconds=60), NOW + timedelta(hours=1),
                       NOW + timedelta(seconds=300), 2)
    token = bake.make_token(state, TOKEN_KEY)
    assert len(token) <= MAX_TOKEN and len(token) < 400
    assert bake.read_token(token, TOKEN_KEY, JOB_ID, NOW) == state


def _tamper(token: str) -> str:
    body, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["c"] = 99  # claim more clean runs than were seen
    forged = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{forged}.{signature}"


@pytest.mark.parametrize(("make", "message"), [
    (lambda t: _tamper(t), "continuationToken was not made by post_deploy_checks"),
    (lambda t: t.split(".")[0] + "." + "A" * 43, "continuationToken was not made by post_deploy_checks"),
    (lambda t: "d-ABC123", "continuationToken was not made by post_deploy_checks (got 'd-ABC123')"),
    (lambda t: bake.make_token(TokenState("other-job", "bake", NOW, NOW + timedelta(hours=1), NOW, 1), TOKEN_KEY),
     "continuationToken was made for another job"),
    (lambda t: bake.make_token(TokenState(JOB_ID, "bake", NOW, NOW + timedelta(hours=1), NOW, 1), b"x" * 64),
     "continuationToken was not made by post_deploy_checks"),
])
def test_forged_altered_or_foreign_tokens_are_refused(make: Any, message: str) -> None:
    good = bake.make_token(TokenState(JOB_ID, "bake", NOW, NOW + timedelta(hours=1), NOW, 1), TOKEN_KEY)
    with pytest.raises(TokenError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bake.read_token(make(good), TOKEN_KEY, JOB_ID, NOW)


def test_expired_token_is_refused() -> None:
    token = bake.make_token(TokenState(JOB_ID, "bake", NOW, NOW + timedelta(minutes=10), NOW, 1), TOKEN_KEY)
    with pytest.raises(TokenError, match="continuationToken expired at 2026-11-28T12:10:00"):
        bake.read_token(token, TOKEN_KEY, JOB_ID, NOW + timedelta(minutes=10))


def test_bake_decisions() -> None:
    parsed = parse_config({"alarms": ["a"], **BAKE})
    first = bake.after_pass(NOW, parsed, JOB_ID, None)
    assert first == bake.Wait(TokenState(JOB_ID, "bake", NOW + timedelta(seconds=60), NOW + timedelta(seconds=300)
                                         + TOKEN_GRACE, NOW + timedelta(seconds=300), 1))
    assert bake.resume(NOW + timedelta(seconds=59), first.state) == first
    assert bake.resume(NOW + timedelta(seconds=60), first.state) == bake.Check(first.state)
    later = bake.after_pass(NOW + timedelta(seconds=280), parsed, JOB_ID, first.state)
    assert later is not None and later.state.next_at == NOW + timedelta(seconds=300)  # the last run at the end
    assert bake.after_pass(NOW + timedelta(seconds=300), parsed, JOB_ID, later.state) is None
    assert bake.after_pass(NOW, parse_config({"alarms": ["a"]}), JOB_ID, None) is None


# --------------------------------------------------------------------------- through the handler


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"CHECKS": "", "HEADER_SECRETS": "", "SECRETS_MAX_AGE_SECONDS": "300"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        monkeypatch.setenv("NOTIFY_TOPIC_ARN", boto3.client("sns", region_name="us-east-1").create_topic(
            Name="opsauto-ops")["TopicArn"])
        monkeypatch.setenv("TOKEN_KEY_SECRET_ARN", token_key_secret())
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        cloudwatch.put_metric_alarm(AlarmName="api-5xx", MetricName="5xx", Namespace="Api", Statistic="Sum",
                                    Period=60, EvaluationPeriods=1, Threshold=1,
                                    ComparisonOperator="GreaterThanThreshold")
        cloudwatch.set_alarm_state(AlarmName="api-5xx", StateValue="OK", StateReason="healthy")
        yield


@pytest.fixture
def pipeline() -> Iterator[Stubber]:
    stubber = Stubber(client("codepipeline"))
    with stubber:
        yield stubber
        stubber.assert_no_pending_responses()


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = NOW
        monkeypatch.setattr(runner, "utcnow", lambda: self.now)

    def at(self, seconds: int) -> None:
        self.now = NOW + timedelta(seconds=seconds)


def _baking(next_in: int, passes: int) -> TokenState:
    ends = NOW + timedelta(seconds=300)
    return TokenState(JOB_ID, "bake", NOW + timedelta(seconds=next_in), ends + TOKEN_GRACE, ends, passes)


def _expect_continue(stubber: Stubber, state: TokenState) -> str:
    token = bake.make_token(state, TOKEN_KEY)
    stubber.add_response("put_job_success_result", {}, {
        "jobId": JOB_ID, "continuationToken": token,
        "executionDetails": {"summary": bake.Wait(state).summary(), "externalExecutionId": REQUEST_ID}})
    return token


def _run(event: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    if token is not None:
        event["CodePipeline.job"]["data"]["continuationToken"] = token
    return handler.handler(event, FakeContext())  # type: ignore[arg-type]


def test_an_alarm_that_fires_mid_bake_fails_the_job_at_that_interval(endpoints: Endpoints, pipeline: Stubber,
                                                                     no_sleep: Sleeps,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    params = {"checks": [{"name": "api", "url": endpoints.url("/healthy")}], "alarms": ["api-5xx"], **BAKE}
    token = _expect_continue(pipeline, _baking(60, 1))
    assert _run(job_event(params))["result"] == "continue"  # checks pass: the bake starts
    clock.at(30)
    _expect_continue(pipeline, _baking(60, 1))  # too early: the same token again, nothing checked
    hits = endpoints.hits.get("/healthy", 0)
    assert _run(job_event(params), token)["result"] == "continue"
    assert endpoints.hits.get("/healthy", 0) == hits
    clock.at(60)
    token = _expect_continue(pipeline, _baking(120, 2))
    assert _run(job_event(params), token)["result"] == "continue"
    boto3.client("cloudwatch", region_name="us-east-1").set_alarm_state(
        AlarmName="api-5xx", StateValue="ALARM", StateReason="5xx over threshold")
    clock.at(125)
    message = ("bake check 3, 125 s of 300 s into the bake: 1 of 2 check(s) failed: alarm api-5xx (ALARM): "
               "FAILED: alarm is in ALARM")
    pipeline.add_response("put_job_failure_result", {}, {
        "jobId": JOB_ID, "failureDetails": {"type": "JobFailed", "message": message,
                                            "externalExecutionId": REQUEST_ID}})
    assert _run(job_event(params), token) == {"result": "failure", "type": "JobFailed", "message": message}


def test_a_clean_bake_passes_after_the_last_interval(endpoints: Endpoints, pipeline: Stubber, no_sleep: Sleeps,
                                                     fixed_latency: None, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    params = {"checks": [{"name": "api", "url": endpoints.url("/healthy")}], "alarms": ["api-5xx"], **BAKE}
    token = _expect_continue(pipeline, _baking(60, 1))
    _run(job_event(params))
    for passes, at in enumerate((60, 120, 180, 240), start=2):
        clock.at(at)
        token = _expect_continue(pipeline, _baking(min(at + 60, 300), passes))
        assert _run(job_event(params), token)["result"] == "continue"
    clock.at(301)
    summary = ("baked 300 s clean (6 check runs); 2 of 2 check(s) passed: api (200, 12 ms, 1 attempt(s)): passed; "
               "alarm api-5xx (OK): passed")
    pipeline.add_response("put_job_success_result", {}, {
        "jobId": JOB_ID, "executionDetails": {"summary": summary, "externalExecutionId": REQUEST_ID},
        "outputVariables": {"checks_passed": "2", "checks_failed": "0"}})
    assert _run(job_event(params), token)["result"] == "success"


@pytest.mark.parametrize(("token", "message"), [
    (lambda: _tamper(bake.make_token(_baking(60, 1), TOKEN_KEY)),
     "continuationToken was not made by post_deploy_checks"),
    (lambda: bake.make_token(TokenState(JOB_ID, "bake", NOW, NOW, NOW, 1), TOKEN_KEY),
     "continuationToken expired at 2026-11-28T12:00:00+00:00; retry the stage to start again"),
])
def test_forged_or_expired_tokens_fail_the_job(pipeline: Stubber, monkeypatch: pytest.MonkeyPatch, token: Any,
                                               message: str) -> None:
    Clock(monkeypatch)
    pipeline.add_response("put_job_failure_result", {}, None)
    result = _run(job_event({"alarms": ["api-5xx"], **BAKE}), token())
    assert result["type"] == "ConfigurationError" and result["message"].startswith(message)
