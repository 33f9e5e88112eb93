"""Action reports: one threadId per automation run, and the severity as an SNS message attribute."""

from __future__ import annotations

import json
from typing import Any

import boto3
from moto import mock_aws

from shared import reports
from shared.observability import logger
from tests.conftest import FakeContext


def _report(title: str, severity: str = "warning") -> reports.ActionReport:
    return reports.ActionReport(automation="sg_remediation", mode="enforce", title=title, description="d",
                                event_type="IngressRevoked", severity=severity)


def _received(publish: Any) -> list[dict[str, Any]]:
    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="ops")["TopicArn"]
        queue = sqs.create_queue(QueueName="q")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        publish(sns, topic)
        found = []
        while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return found


def test_reports_of_one_run_share_a_thread_and_carry_their_severity() -> None:
    @logger.inject_lambda_context
    def run(event: Any, context: Any) -> None:
        sns, topic = event
        # Two publishers in one invocation (as sg_remediation makes one per report): one thread.
        reports.ReportPublisher(sns, topic).publish(_report("first", "warning"))
        reports.ReportPublisher(sns, topic).publish(_report("second", "critical"))

    envelopes = _received(lambda sns, topic: run((sns, topic), FakeContext()))
    messages = [json.loads(envelope["Message"]) for envelope in envelopes]
    threads = {message["metadata"]["threadId"] for message in messages}
    assert threads == {f"sg_remediation-{FakeContext.aws_request_id}"}
    severities = sorted(envelope["MessageAttributes"]["severity"]["Value"] for envelope in envelopes)
    assert severities == ["critical", "warning"]


def test_separate_runs_get_separate_threads_and_an_explicit_thread_is_kept() -> None:
    logger.remove_keys(["function_request_id"])  # outside a Lambda invocation: each publisher is its own run

    def publish(sns: Any, topic: str) -> None:
        reports.ReportPublisher(sns, topic).publish(_report("a"))
        reports.ReportPublisher(sns, topic).publish(_report("b"))
        reports.ReportPublisher(sns, topic, thread_id="deploy-42").publish(_report("c"))

    messages = [json.loads(envelope["Message"]) for envelope in _received(publish)]
    threads = [message["metadata"]["threadId"] for message in messages]
    assert len(set(threads[:2])) == 2 and threads[2] == "deploy-42"
    assert all(thread.startswith("sg_remediation-") for thread in threads[:2])


def test_no_thread_id_key_without_one() -> None:
    assert "threadId" not in _report("x").to_message()["metadata"]
