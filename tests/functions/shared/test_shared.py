"""functions/shared: settings from the environment, action reports, time, clients."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from shared import config, reports, timeutil
from shared.clients import RETRY_CONFIG, client


def test_env_values_parse_and_default() -> None:
    env = {"N": " 7 ", "B": "false", "J": '{"a": [1]}', "L": "a, b,,c", "M": "REPORT"}
    assert config.env_int("N", env=env) == 7
    assert config.env_int("MISSING", 3, env=env) == 3
    assert config.env_bool("B", True, env=env) is False
    assert config.env_json("J", env=env) == {"a": [1]}
    assert config.env_list("L", env=env) == ["a", "b", "c"]
    assert config.env_mode(env={"MODE": "REPORT"}) == "report"
    assert config.env_mode(env={}) == "enforce"
    assert config.env_regions(env={"AWS_REGION": "eu-west-1"}) == ["eu-west-1"]
    assert config.env_regions(env={"REGIONS": "us-east-1,eu-west-1"}) == ["us-east-1", "eu-west-1"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: config.env_str("X", env={}), "environment variable X is required"),
        (lambda: config.env_int("X", env={"X": "ten"}), "X='ten' is not a whole number"),
        (lambda: config.env_int("X", env={"X": "0"}, minimum=1), "X=0 is below the minimum 1"),
        (lambda: config.env_int("X", env={"X": "9"}, maximum=5), "X=9 is above the maximum 5"),
        (lambda: config.env_bool("X", True, env={"X": "maybe"}), "not a boolean"),
        (lambda: config.env_mode(env={"MODE": "yolo"}), "MODE='yolo' is not one of enforce, report"),
        (lambda: config.env_json("X", env={"X": "{"}), "X is not valid JSON"),
    ],
)
def test_bad_environment_is_one_named_error(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(config.ConfigError, match=message):
        call()


def test_event_time_prefers_the_event() -> None:
    moment = timeutil.event_time({"time": "2026-03-29T00:55:00Z"})
    assert moment == datetime(2026, 3, 29, 0, 55, tzinfo=UTC)
    assert timeutil.iso(moment) == "2026-03-29T00:55:00Z"
    before = datetime.now(UTC)
    assert timeutil.event_time({}) >= before
    assert timeutil.event_time({"time": "garbage"}) >= before
    assert timeutil.parse_time("2026-03-29T02:55:00+02:00") == moment.replace(hour=0)


def test_action_report_schema_is_amazon_q_custom_notification() -> None:
    report = reports.ActionReport(
        automation="sg_remediation",
        mode="report",
        title="Would revoke 1 rule",
        description="sg-1: tcp 22 from 0.0.0.0/0",
        event_type="SecurityGroupRemediation",
        severity="warning",
        next_steps=["Review the group"],
        keywords=["security-group"],
        related_resources=["sg-1", "sg-1"],
        context={"rules": [{"port": 22}], "actor": "arn:aws:iam::123456789012:user/alice"},
    )
    message = json.loads(report.to_json())
    assert message["version"] == "1.0"
    assert message["source"] == "custom"
    assert message["content"]["textType"] == "client-markdown"
    assert message["content"]["title"] == "[report mode] Would revoke 1 rule"
    assert message["content"]["keywords"] == ["sg_remediation", "report", "security-group"]
    assert message["metadata"]["relatedResources"] == ["sg-1"]
    context = message["metadata"]["additionalContext"]
    assert context["mode"] == "report"
    assert context["automation"] == "sg_remediation"
    assert json.loads(context["rules"]) == [{"port": 22}]
    assert reports.is_action_report(message)
    assert not reports.is_action_report({"AlarmName": "x"})


def test_action_report_stays_under_the_sns_limit() -> None:
    report = reports.ActionReport(
        automation="ec2_scheduler", mode="enforce", title="t", description="d" * 50_000, event_type="e",
        related_resources=[f"i-{n:017x}" for n in range(500)], context={"big": "x" * 300_000},
    )
    body = report.to_json()
    assert len(body.encode()) < 256 * 1024
    message = json.loads(body)
    assert message["content"]["description"].endswith("(truncated)")
    assert len(message["metadata"]["relatedResources"]) == reports.MAX_RESOURCES
    assert message["metadata"]["additionalContext"]["relatedResourcesOmitted"] == "400"


def test_bad_report_values_are_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        reports.ActionReport(automation="a", mode="dry", title="t", description="d", event_type="e")
    with pytest.raises(ValueError, match="severity"):
        reports.ActionReport(automation="a", mode="report", title="t", description="d", event_type="e", severity="x")


@mock_aws
def test_publisher_sends_to_topic_with_attributes() -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="ops")["TopicArn"]
    queue = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    report = reports.ActionReport(automation="a", mode="enforce", title="Stopped 2", description="d", event_type="e")
    assert reports.ReportPublisher(client("sns"), topic).publish(report)
    assert reports.ReportPublisher(client("sns"), None).publish(report) is None
    (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["Subject"] == "a: Stopped 2"
    assert envelope["MessageAttributes"]["mode"]["Value"] == "enforce"
    assert json.loads(envelope["Message"])["content"]["title"] == "Stopped 2"


def test_clients_are_cached_with_adaptive_retries() -> None:
    assert client("sts") is client("sts")
    assert client("sts", "eu-west-1") is not client("sts")
    assert RETRY_CONFIG.retries is not None
    assert RETRY_CONFIG.retries["mode"] == "adaptive"


def test_xray_sdk_tracer_only_when_switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools import Tracer

    from shared import observability

    monkeypatch.setenv("XRAY_SDK", "false")
    plain = observability._tracer()
    assert isinstance(plain, observability.LambdaTracer)

    def handler(event: dict, context: object) -> dict:
        return event

    assert plain.capture_lambda_handler(handler) is handler
    assert plain.capture_lambda_handler(capture_response=False)(handler) is handler
    monkeypatch.setenv("XRAY_SDK", "true")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    assert isinstance(observability._tracer(), Tracer)
