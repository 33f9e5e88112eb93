"""The handler end to end: CodePipeline job events and CodeDeploy hooks, real HTTPS endpoints on 127.0.0.1,
PutJob*Result / PutLifecycleEventHookExecutionStatus through botocore's Stubber (exact parameters),
alarms and secrets in moto."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from post_deploy_checks import bake, handler, http_checks, runner
from post_deploy_checks.bake import TOKEN_GRACE, TokenState
from tests.conftest import FakeContext, load_event
from tests.functions.post_deploy_checks.conftest import (
    SECRET_TOKEN,
    TOKEN_KEY,
    Endpoints,
    Sleeps,
    job_event,
)

pytestmark = pytest.mark.usefixtures("own_role")  # every invocation under the synthesized role, moto IAM on

JOB_ID = "11111111-abcd-1111-abcd-111111abcdef"
REQUEST_ID = FakeContext.aws_request_id
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ARTIFACT_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ARTIFACT_SESSION = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN"


@pytest.fixture(autouse=True)
def _aws(function_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The function's environment in mock_aws (see conftest), at a fixed "now"."""
    monkeypatch.setattr(runner, "utcnow", lambda: NOW)


def expect_success(stubber: Stubber, summary: str, passed: int = 1, failed: int = 0) -> None:
    stubber.add_response("put_job_success_result", {}, {
        "jobId": JOB_ID,
        "executionDetails": {"summary": summary, "externalExecutionId": REQUEST_ID},
        "outputVariables": {"checks_passed": str(passed), "checks_failed": str(failed)},
    })


def expect_failure(stubber: Stubber, failure_type: str, message: str) -> None:
    stubber.add_response("put_job_failure_result", {}, {
        "jobId": JOB_ID,
        "failureDetails": {"type": failure_type, "message": message, "externalExecutionId": REQUEST_ID},
    })


def stabilizing(ready_at: datetime) -> TokenState:
    return TokenState(JOB_ID, "stabilize", ready_at, ready_at + TOKEN_GRACE)


def expect_continuation(stubber: Stubber, ready_at: datetime) -> None:
    stubber.add_response("put_job_success_result", {}, {
        "jobId": JOB_ID,
        "continuationToken": bake.make_token(stabilizing(ready_at), TOKEN_KEY),
        "executionDetails": {"summary": f"waiting until {ready_at.isoformat()} before running the checks",
                             "externalExecutionId": REQUEST_ID},
    })


def invoke(event: dict[str, Any], context: FakeContext) -> dict[str, Any]:
    return handler.handler(event, context)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- CodePipeline


def test_healthy_endpoint_puts_job_success(endpoints: Endpoints, pipeline: Stubber, no_sleep: Sleeps,
                                           fixed_latency: None, lambda_context: FakeContext) -> None:
    expect_success(pipeline, "1 of 1 check(s) passed: api (200, 12 ms, 1 attempt(s)): passed")
    event = job_event({"checks": [{"name": "api", "url": endpoints.url("/healthy"),
                                   "json": {"path": "status", "equals": "ok"}}]})
    result = invoke(event, lambda_context)
    assert result == {"result": "success", "summary": "1 of 1 check(s) passed: api (200, 12 ms, 1 attempt(s)): passed",
                      "outputVariables": {"checks_passed": "1", "checks_failed": "0"}}
    assert no_sleep.calls == []


def test_broken_endpoint_puts_job_failure_naming_the_check(endpoints: Endpoints, pipeline: Stubber,
                                                           no_sleep: Sleeps, fixed_latency: None,
                                                           lambda_context: FakeContext) -> None:
    message = "1 of 1 check(s) failed: web (503, 12 ms, 2 attempt(s)): FAILED: status 503, expected 200"
    expect_failure(pipeline, "JobFailed", message)
    event = job_event({"checks": [{"name": "web", "url": endpoints.url("/unavailable")}],
                       "attempts": 2, "interval_seconds": 15})
    result = invoke(event, lambda_context)
    assert result == {"result": "failure", "type": "JobFailed", "message": message}
    assert no_sleep.calls == [15]


def test_mixed_results_name_each_failed_check(endpoints: Endpoints, pipeline: Stubber, no_sleep: Sleeps,
                                              flapping_url: str, closed_port_url: str,
                                              lambda_context: FakeContext) -> None:
    pipeline.add_response("put_job_failure_result", {}, None)
    event = job_event({"checks": [
        {"name": "healthy", "url": endpoints.url("/healthy")},
        {"name": "flapping", "url": flapping_url},
        {"name": "slow", "url": endpoints.url("/slow"), "max_latency_ms": 100},
        {"name": "wrong-body", "url": endpoints.url("/wrong-body"), "body_contains": "Welcome"},
        {"name": "degraded", "url": endpoints.url("/degraded"), "json": {"path": "status", "equals": "ok"}},
        {"name": "refused", "url": closed_port_url},
    ], "attempts": 2, "interval_seconds": 1})
    result = invoke(event, lambda_context)
    message = result["message"]
    assert result["type"] == "JobFailed" and message.startswith("4 of 6 check(s) failed: ")
    assert "slow (200, " in message and "over max_latency_ms 100" in message
    assert "wrong-body (200, " in message and "body does not contain 'Welcome'" in message
    assert "degraded (200, " in message and "json path 'status' is \"degraded\", expected \"ok\"" in message
    assert "refused (no response, -, 2 attempt(s)): FAILED: connection failed: Connection refused" in message
    assert "healthy" not in message and "flapping" not in message
    assert len(message) <= 5000


def test_malformed_user_parameters_is_a_configuration_error(pipeline: Stubber,
                                                            lambda_context: FakeContext) -> None:
    event = load_event("post_deploy_checks/codepipeline_job_malformed.json")
    expect_failure(pipeline, "ConfigurationError",
                   "UserParameters is not valid JSON: Expecting ',' delimiter at line 1 column 82")
    assert invoke(event, lambda_context)["type"] == "ConfigurationError"


def test_invalid_user_parameters_names_each_problem(pipeline: Stubber, lambda_context: FakeContext) -> None:
    expect_failure(pipeline, "ConfigurationError",
                   "UserParameters: attempts: must be a whole number from 1 to 10 (got 0); checks[0] (home).url: "
                   "required, an http:// or https:// URL with a host (got 'ftp://service.example/')")
    event = job_event({"checks": [{"name": "home", "url": "ftp://service.example/"}], "attempts": 0})
    invoke(event, lambda_context)


def test_missing_user_parameters(pipeline: Stubber, lambda_context: FakeContext) -> None:
    event = job_event("")
    del event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"]
    expect_failure(pipeline, "ConfigurationError",
                   "UserParameters is empty: expected a JSON object with 'checks' and/or 'alarms'")
    invoke(event, lambda_context)


def test_stabilize_returns_a_continuation_token_without_checking(endpoints: Endpoints, pipeline: Stubber,
                                                                 lambda_context: FakeContext) -> None:
    expect_continuation(pipeline, NOW + timedelta(seconds=120))
    event = job_event({"checks": [{"name": "api", "url": endpoints.url("/unavailable?never-called")}],
                       "stabilize_seconds": 120})
    result = invoke(event, lambda_context)
    assert result["result"] == "continue"
    assert endpoints.hits.get("/unavailable?never-called") is None


def test_continuation_before_ready_continues_again(endpoints: Endpoints, pipeline: Stubber,
                                                   lambda_context: FakeContext) -> None:
    ready_at = NOW + timedelta(seconds=60)
    expect_continuation(pipeline, ready_at)
    event = job_event({"checks": [{"name": "api", "url": endpoints.url("/healthy")}], "stabilize_seconds": 120},
                      continuation_token=bake.make_token(stabilizing(ready_at), TOKEN_KEY))
    assert invoke(event, lambda_context)["result"] == "continue"


def test_continuation_after_ready_runs_the_checks(endpoints: Endpoints, pipeline: Stubber, no_sleep: Sleeps,
                                                  fixed_latency: None, lambda_context: FakeContext,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    event = load_event("post_deploy_checks/codepipeline_job_continuation.json")
    event["CodePipeline.job"]["data"]["continuationToken"] = bake.make_token(stabilizing(NOW + timedelta(minutes=5)),
                                                                             TOKEN_KEY)
    event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] = json.dumps(
        {"checks": [{"name": "api", "url": endpoints.url("/healthy")}], "stabilize_seconds": 300})
    # Still early: the same token again.
    expect_continuation(pipeline, NOW + timedelta(minutes=5))
    assert invoke(event, lambda_context)["result"] == "continue"
    # Ready: the checks run and the job succeeds without a token (and with the output variables).
    monkeypatch.setattr(runner, "utcnow", lambda: NOW + timedelta(minutes=5, seconds=30))
    expect_success(pipeline, "1 of 1 check(s) passed: api (200, 12 ms, 1 attempt(s)): passed")
    assert invoke(event, lambda_context)["result"] == "success"


def test_foreign_continuation_token_fails_the_job(pipeline: Stubber, lambda_context: FakeContext) -> None:
    expect_failure(pipeline, "ConfigurationError",
                   "continuationToken was not made by post_deploy_checks (got 'd-ABC123')")
    event = job_event({"alarms": ["a"]}, continuation_token="d-ABC123")
    invoke(event, lambda_context)


def test_unexpected_exception_fails_the_job_once(endpoints: Endpoints, pipeline: Stubber,
                                                 monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("thread pool exploded")

    monkeypatch.setattr(http_checks, "run_checks", boom)
    expect_failure(pipeline, "JobFailed", "post_deploy_checks failed unexpectedly: RuntimeError: thread pool exploded")
    invoke(job_event({"checks": [{"name": "api", "url": endpoints.url("/healthy")}]}), lambda_context)


def test_failing_to_report_raises_so_lambda_retries(endpoints: Endpoints, pipeline: Stubber,
                                                    lambda_context: FakeContext) -> None:
    pipeline.add_client_error("put_job_success_result", "ThrottlingException", http_status_code=400)
    with pytest.raises(Exception, match="ThrottlingException"):
        invoke(job_event({"checks": [{"name": "api", "url": endpoints.url("/healthy")}]}), lambda_context)


def test_checks_that_cannot_finish_in_time_are_a_configuration_error(pipeline: Stubber,
                                                                     lambda_context: FakeContext,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_context, "get_remaining_time_in_millis", lambda: 60_000, raising=False)
    expect_failure(pipeline, "ConfigurationError",
                   "the checks can take up to 210 s (attempts 10 x timeout_seconds 15 + 9 x interval_seconds 6.666), "
                   "more than the 50 s the function has left; lower them or raise the automation's timeout_seconds "
                   "setting")
    invoke(job_event({"checks": [{"name": "a", "url": "https://a.example/"}], "attempts": 10,
                      "timeout_seconds": 15, "interval_seconds": 6.666}), lambda_context)


def test_bad_function_environment_fails_the_job(pipeline: Stubber, monkeypatch: pytest.MonkeyPatch,
                                                lambda_context: FakeContext) -> None:
    monkeypatch.setenv("SECRETS_MAX_AGE_SECONDS", "soon")
    expect_failure(pipeline, "ConfigurationError",
                   "function environment: SECRETS_MAX_AGE_SECONDS='soon' is not a whole number")
    invoke(job_event({"alarms": ["a"]}), lambda_context)


def test_job_without_id_is_ignored(lambda_context: FakeContext) -> None:
    event = job_event({"alarms": ["a"]})
    del event["CodePipeline.job"]["id"]
    assert invoke(event, lambda_context) == {"result": "ignored", "reason": "job id missing"}


def test_unrecognised_event_is_ignored(lambda_context: FakeContext) -> None:
    assert invoke({"source": "aws.s3"}, lambda_context)["result"] == "ignored"


# --------------------------------------------------------------------------- alarms (moto CloudWatch)


def _alarm(name: str, state: str) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    cloudwatch.put_metric_alarm(AlarmName=name, Namespace="App", MetricName="5xx", Statistic="Sum", Period=60,
                                EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def test_alarms_ok_pass(pipeline: Stubber, lambda_context: FakeContext) -> None:
    _alarm("api-5xx", "OK")
    expect_success(pipeline, "1 of 1 check(s) passed: alarm api-5xx (OK): passed")
    invoke(job_event({"alarms": ["api-5xx"]}), lambda_context)


def test_alarm_in_alarm_and_missing_alarm_fail(pipeline: Stubber, lambda_context: FakeContext) -> None:
    _alarm("api-5xx", "ALARM")
    _alarm("api-latency", "OK")
    expect_failure(pipeline, "JobFailed", "2 of 3 check(s) failed: alarm api-5xx (ALARM): FAILED: alarm is in ALARM; "
                   "alarm api-typo (not found): FAILED: alarm not found")
    invoke(job_event({"alarms": ["api-5xx", "api-latency", "api-typo"]}), lambda_context)


def test_alarm_states_paginates_over_many_names() -> None:
    from post_deploy_checks import aws

    names = [f"alarm-{i:03d}" for i in range(120)]
    for name in names[::10]:
        _alarm(name, "OK")
    states = aws.alarm_states(names)
    assert states == {name: "OK" for name in names[::10]}


# --------------------------------------------------------------------------- secrets and logging


def test_secret_header_is_used_and_never_logged(endpoints: Endpoints, pipeline: Stubber, no_sleep: Sleeps,
                                                fixed_latency: None, monkeypatch: pytest.MonkeyPatch,
                                                json_logs: io.StringIO, caplog: pytest.LogCaptureFixture,
                                                lambda_context: FakeContext) -> None:
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="api-token", SecretString=json.dumps({"header": f"Bearer {SECRET_TOKEN}"}))
    monkeypatch.setenv("HEADER_SECRETS", "api-token")
    caplog.set_level(logging.INFO)  # the function's level; botocore's own DEBUG wire log is off
    expect_success(pipeline, "1 of 1 check(s) passed: private (200, 12 ms, 1 attempt(s)): passed")
    event = job_event({"checks": [{"name": "private", "url": endpoints.url("/private"),
                                   "headers": {"Authorization": {"secret": "api-token", "key": "header"}}}]})
    invoke(event, lambda_context)
    logged = json_logs.getvalue() + caplog.text
    assert '"message":"check result"' in logged and '"latency_ms":12.0' in logged  # the function did log
    for sensitive in (SECRET_TOKEN, ARTIFACT_SECRET, ARTIFACT_SESSION, "AKIAIOSFODNN7EXAMPLE", "artifactCredentials"):
        assert sensitive not in logged


def test_nothing_sensitive_is_logged_on_failure_paths(endpoints: Endpoints, pipeline: Stubber,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      json_logs: io.StringIO,
                                                      lambda_context: FakeContext) -> None:
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")  # the handler still must not log the event
    monkeypatch.setattr(http_checks, "run_checks", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    pipeline.add_response("put_job_failure_result", {}, None)
    invoke(job_event({"checks": [{"name": "api", "url": endpoints.url("/healthy")}]}), lambda_context)
    logged = json_logs.getvalue()
    assert "RuntimeError: boom" in logged
    for sensitive in (ARTIFACT_SECRET, ARTIFACT_SESSION, "AKIAIOSFODNN7EXAMPLE", "artifactCredentials"):
        assert sensitive not in logged


def test_secret_not_declared_is_a_configuration_error(endpoints: Endpoints, pipeline: Stubber,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      lambda_context: FakeContext) -> None:
    monkeypatch.setenv("HEADER_SECRETS", "other")
    expect_failure(pipeline, "ConfigurationError",
                   "checks (private).headers.Authorization: secret 'api-token' is not one of the function's header "
                   "secrets (other); add it to the automation's header_secrets setting")
    invoke(job_event({"checks": [{"name": "private", "url": endpoints.url("/private"),
                                  "headers": {"Authorization": {"secret": "api-token"}}}]}), lambda_context)


def test_secret_key_missing_is_a_configuration_error(endpoints: Endpoints, pipeline: Stubber,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     lambda_context: FakeContext) -> None:
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="api-token", SecretString="plain")
    monkeypatch.setenv("HEADER_SECRETS", "api-token")
    expect_failure(pipeline, "ConfigurationError",
                   "checks (private).headers.Authorization: secret 'api-token' is not JSON, so it has no key 'header'")
    invoke(job_event({"checks": [{"name": "private", "url": endpoints.url("/private"),
                                  "headers": {"Authorization": {"secret": "api-token", "key": "header"}}}]}),
           lambda_context)


def test_secret_arn_matches_declared_name() -> None:
    allowed = ("api-token",)
    assert runner.secret_allowed("arn:aws:secretsmanager:us-east-1:123456789012:secret:api-token-AbCdEf", allowed)
    assert not runner.secret_allowed("arn:aws:secretsmanager:us-east-1:123456789012:secret:api-token-x-AbCdEf",
                                       allowed)
    assert not runner.secret_allowed("other", allowed)


# --------------------------------------------------------------------------- action report on failure


def test_failure_publishes_an_action_report(endpoints: Endpoints, pipeline: Stubber, no_sleep: Sleeps,
                                            monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="ops")["TopicArn"]
    queue = sqs.create_queue(QueueName="ops")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    monkeypatch.setenv("NOTIFY_TOPIC_ARN", topic)
    pipeline.add_response("put_job_failure_result", {}, None)
    invoke(job_event({"checks": [{"name": "web", "url": endpoints.url("/unavailable")}], "attempts": 1}),
           lambda_context)
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    report = json.loads(message["Body"])
    assert report["content"]["title"] == f"Post-deployment checks failed: CodePipeline job {JOB_ID}"
    assert "web (503" in report["content"]["description"]
    assert report["metadata"]["eventType"] == "PostDeployChecksFailed"


# --------------------------------------------------------------------------- CodeDeploy


CODEDEPLOY = load_event("post_deploy_checks/codedeploy_hook.json")


def expect_hook(stubber: Stubber, status: str) -> None:
    stubber.add_response("put_lifecycle_event_hook_execution_status",
                         {"lifecycleEventHookExecutionId": CODEDEPLOY["LifecycleEventHookExecutionId"]},
                         {"deploymentId": CODEDEPLOY["DeploymentId"],
                          "lifecycleEventHookExecutionId": CODEDEPLOY["LifecycleEventHookExecutionId"],
                          "status": status})


def test_codedeploy_hook_succeeds(endpoints: Endpoints, codedeploy: Stubber, monkeypatch: pytest.MonkeyPatch,
                                  lambda_context: FakeContext) -> None:
    monkeypatch.setenv("CHECKS", json.dumps({"checks": [{"name": "api", "url": endpoints.url("/healthy")}]}))
    expect_hook(codedeploy, "Succeeded")
    assert invoke(dict(CODEDEPLOY), lambda_context)["result"] == "Succeeded"


def test_codedeploy_hook_fails(endpoints: Endpoints, codedeploy: Stubber, no_sleep: Sleeps,
                               monkeypatch: pytest.MonkeyPatch, lambda_context: FakeContext) -> None:
    monkeypatch.setenv("CHECKS", json.dumps({"checks": [{"name": "api", "url": endpoints.url("/unavailable")}],
                                             "attempts": 2, "interval_seconds": 3}))
    expect_hook(codedeploy, "Failed")
    result = invoke(dict(CODEDEPLOY), lambda_context)
    assert result["result"] == "Failed" and "api (503" in result["reason"]
    assert no_sleep.calls == [3]


@pytest.mark.parametrize(("checks_env", "reason"), [
    ("", "CHECKS is empty"),
    ("{not json", "CHECKS is not valid JSON"),
    ('{"alarms": ["a"], "stabilize_seconds": 60}', "stabilize_seconds is only for CodePipeline"),
])
def test_codedeploy_bad_checks_fail_the_hook(codedeploy: Stubber, monkeypatch: pytest.MonkeyPatch,
                                             lambda_context: FakeContext, checks_env: str, reason: str) -> None:
    monkeypatch.setenv("CHECKS", checks_env)
    expect_hook(codedeploy, "Failed")
    result = invoke(dict(CODEDEPLOY), lambda_context)
    assert result["result"] == "Failed" and reason in result["reason"]
