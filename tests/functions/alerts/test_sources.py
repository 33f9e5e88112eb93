"""Formatters and the dispatcher, over every fixture and some odd shapes."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.alert import alarm_url, log_group_url
from alerts.decode import BadEvent
from alerts.formatters import Options, alerts_from_event
from alerts.formatters.events import guardduty_severity
from alerts.formatters.logs import MAX_LINE_CHARS
from tests.functions.alerts.conftest import EVENT_NAMES, load

OPTIONS = Options(region="eu-central-1", max_log_lines=20)

EXPECTED = {
    "sns_alarm_alarm": ("critical", "ALARM: web-1 high CPU", "cloudwatch-alarm"),
    "sns_alarm_ok": ("info", "OK: web-1 high CPU", "cloudwatch-alarm"),
    "sns_alarm_insufficient_data": ("warning", "INSUFFICIENT DATA: orders-queue depth", "cloudwatch-alarm"),
    "sns_alarm_metric_math": ("critical", "ALARM: api 5xx rate", "cloudwatch-alarm"),
    "sns_alarm_composite": ("critical", "ALARM: checkout degraded", "cloudwatch-alarm"),
    "sns_action_report": ("warning", "Closed SSH open to the internet on sg-0123456789abcdef0",
                          "action-report:sg_remediation"),
    "sns_plain_text": ("info", "Backup finished", "sns"),
    "logs_data": ("critical", "4 matching log lines in /aws/lambda/orders-api", "cloudwatch-logs"),
    "eventbridge_ec2_state": ("warning", "EC2 instance i-0abcd1234ef567890 is stopped", "ec2"),
    "eventbridge_guardduty": ("critical", "GuardDuty: 198.51.100.7 is performing SSH brute force attacks against "
                              "i-0abcd1234ef567890.", "guardduty"),
    "eventbridge_health": ("critical", "AWS Health: EC2 AWS_EC2_OPERATIONAL_ISSUE", "health"),
    "eventbridge_codepipeline_failed": ("critical", "CodePipeline orders-release: FAILED", "codepipeline"),
    "eventbridge_codebuild_failed": ("critical", "CodeBuild orders-api-tests: FAILED", "codebuild"),
    "eventbridge_alarm_state_change": ("critical", "ALARM: orders-api p99 latency", "cloudwatch-alarm"),
    "eventbridge_unknown_source": ("info", "Object Created", "event:aws.s3"),
    "eventbridge_alarm_metric_math": ("critical", "ALARM: prod-orders error rate", "cloudwatch-alarm"),
    "eventbridge_securityhub_findings": ("critical", "Security Hub: 2 findings", "securityhub"),
    "eventbridge_inspector_finding": ("critical", "Inspector: CVE-2022-40897 - setuptools", "inspector"),
    "eventbridge_guardduty_malware_scan": ("critical", "GuardDuty malware scan: malware found in "
                                           "s3://amzn-s3-demo-bucket/uploads/invoice-2026-11.pdf.exe",
                                           "guardduty-malware"),
    "eventbridge_backup_job_failed": ("critical", "AWS Backup: Backup Job FAILED for volume/vol-0a1b2c3d4e5f6a7b8",
                                      "backup"),
    "eventbridge_config_noncompliant": ("warning", "AWS Config: AWS::EC2::Volume vol-0f1e2d3c4b5a69788 is "
                                        "NON_COMPLIANT with encrypted-volumes", "config"),
    "eventbridge_acm_expiring": ("critical", "Certificate shop.example.com expires in 6 days", "acm"),
    "eventbridge_trusted_advisor": ("warning", "Trusted Advisor: Exposed Access Keys (ERROR)", "trustedadvisor"),
    "unknown_event": ("info", "Unrecognized event", "unknown"),
}


def test_every_fixture_has_an_expectation() -> None:
    assert set(EXPECTED) | {"logs_control"} == set(EVENT_NAMES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_becomes_one_alert(name: str) -> None:
    (alert,) = alerts_from_event(load(name), OPTIONS)
    assert (alert.severity, alert.title, alert.source) == EXPECTED[name]


def test_logs_control_message_gives_nothing() -> None:
    assert alerts_from_event(load("logs_control"), OPTIONS) == []


def test_alarm_links_and_fields() -> None:
    (alert,) = alerts_from_event(load("sns_alarm_alarm"), OPTIONS)
    fields = dict(alert.fields)
    assert fields["Metric"] == "AWS/EC2 CPUUtilization (AVERAGE) [InstanceId=i-0abcd1234ef567890]"
    assert fields["Condition"] == "> 80 for 2 of 3 periods of 300 s"
    assert alert.links[0].url == alarm_url("eu-central-1", "web-1 high CPU")
    assert alert.links[0].url.startswith("https://eu-central-1.console.aws.amazon.com/cloudwatch/home?region=eu-central-1"
                                         "#alarmsV2:alarm/web-1%20high%20CPU")
    assert alert.time == "2026-11-28T08:05:31Z"


def test_metric_math_alarm_has_expression_not_metric_name() -> None:
    (alert,) = alerts_from_event(load("sns_alarm_metric_math"), OPTIONS)
    fields = dict(alert.fields)
    assert "Metric" not in fields
    assert fields["Expression"] == "5xx rate (%) = 100 * errors / requests"
    assert "AWS/ApiGateway 5XXError (Sum)" in fields["Metrics"]


def test_composite_alarm_shows_rule_and_children() -> None:
    (alert,) = alerts_from_event(load("sns_alarm_composite"), OPTIONS)
    fields = dict(alert.fields)
    assert fields["Rule"] == 'ALARM("api 5xx rate") AND ALARM("orders-queue depth")'
    assert fields["Triggered by"] == "api 5xx rate (ALARM)"


def test_action_report_fields_and_next_steps() -> None:
    (alert,) = alerts_from_event(load("sns_action_report"), OPTIONS)
    fields = dict(alert.fields)
    assert fields["Automation"] == "sg_remediation"
    assert fields["Mode"] == "enforce"
    assert "• Use Session Manager instead of SSH" in alert.summary
    assert alert.resource.endswith("security-group/sg-0123456789abcdef0")


def test_log_group_link_uses_console_escaping() -> None:
    url = log_group_url("eu-central-1", "/aws/lambda/orders-api", "2026/11/28/[$LATEST]abc")
    assert "#logsV2:log-groups/log-group/$252Faws$252Flambda$252Forders-api/log-events/" in url
    assert url.endswith("/log-events/2026$252F11$252F28$252F$255B$2524LATEST$255Dabc")


def _logs_event(messages: list[str], group: str = "/aws/lambda/big") -> dict[str, Any]:
    payload = {
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": group, "logStream": "s",
        "subscriptionFilters": ["f"],
        "logEvents": [{"id": str(i), "timestamp": 1795853131000 + i, "message": m} for i, m in enumerate(messages)],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


def test_log_batch_shows_count_and_first_lines_only() -> None:
    event = _logs_event([f"ERROR line {i} " + "x" * 900 for i in range(10_000)])
    (alert,) = alerts_from_event(event, Options(region="eu-central-1", max_log_lines=5))
    assert alert.title == "10,000 matching log lines in /aws/lambda/big"
    lines = alert.details.splitlines()
    assert len(lines) == 6 and lines[-1] == "… and 9,995 more"
    assert all(len(line) <= MAX_LINE_CHARS for line in lines)
    assert alert.severity == "warning"


@pytest.mark.parametrize("data", ["not base64!", base64.b64encode(b"not gzip").decode(),
                                  base64.b64encode(gzip.compress(b"[1, 2]", mtime=0)).decode(), None],
                         ids=["not-base64", "not-gzip", "not-an-object", "missing"])
def test_unreadable_logs_data_is_bad_event(data: Any) -> None:
    with pytest.raises(BadEvent):
        alerts_from_event({"awslogs": {"data": data}}, OPTIONS)


def test_known_event_type_with_odd_shape_falls_back_to_generic() -> None:
    event = load("eventbridge_ec2_state")
    del event["detail"]["instance-id"]
    (alert,) = alerts_from_event(event, OPTIONS)
    assert alert.title == "EC2 Instance State-change Notification"
    assert alert.source == "event:aws.ec2"


def test_eventbridge_event_forwarded_through_sns() -> None:
    inner = load("eventbridge_guardduty")
    event = load("sns_plain_text")
    event["Records"][0]["Sns"]["Message"] = json.dumps(inner)
    (alert,) = alerts_from_event(event, OPTIONS)
    assert alert.source == "guardduty"


def test_unrecognized_json_on_sns_is_shown_pretty() -> None:
    event = load("sns_plain_text")
    event["Records"][0]["Sns"]["Message"] = json.dumps({"job": "nightly", "ok": False})
    (alert,) = alerts_from_event(event, OPTIONS)
    assert '"job": "nightly"' in alert.details


@pytest.mark.parametrize("score,severity", [(1, "info"), (3.9, "info"), (4, "warning"), (6.9, "warning"),
                                            (7, "critical"), (8.9, "critical"), (9.5, "critical")])
def test_guardduty_bands(score: float, severity: str) -> None:
    assert guardduty_severity(score) == severity


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(
    source=st.sampled_from(["aws.ec2", "aws.guardduty", "aws.health", "aws.codepipeline", "aws.codebuild",
                            "aws.cloudwatch", "custom.app"]),
    detail_type=st.sampled_from(["EC2 Instance State-change Notification", "GuardDuty Finding", "AWS Health Event",
                                 "CodePipeline Pipeline Execution State Change", "CodeBuild Build State Change",
                                 "CloudWatch Alarm State Change", "Something"]),
    detail=json_values,
)
def test_any_eventbridge_shape_renders_without_crashing(source: str, detail_type: str, detail: Any) -> None:
    from alerts.render import render_slack, render_teams

    event = {"version": "0", "id": "x", "detail-type": detail_type, "source": source, "account": "123456789012",
             "time": "2026-11-28T08:05:31Z", "region": "eu-central-1", "resources": [], "detail": detail}
    (alert,) = alerts_from_event(event, OPTIONS)
    assert render_slack(alert)["text"]
    assert render_teams(alert)["attachments"]


@settings(max_examples=40, deadline=None)
@given(message=json_values)
def test_any_sns_message_renders_without_crashing(message: Any) -> None:
    event = load("sns_plain_text")
    event["Records"][0]["Sns"]["Message"] = message if isinstance(message, str) else json.dumps(message)
    (alert,) = alerts_from_event(event, OPTIONS)
    assert alert.title


def test_codepipeline_action_failure_carries_the_actions_own_message() -> None:
    event = load("eventbridge_codepipeline_failed")
    event["detail-type"] = "CodePipeline Action Execution State Change"
    event["detail"].update({
        "stage": "Verify",
        "action": "Checks",
        "execution-result": {
            "external-execution-summary": "1 of 2 check(s) failed: service-b (503)",
            "external-execution-url": "https://example.com",
        },
    })
    (alert,) = alerts_from_event(event, OPTIONS)
    assert alert.title == "CodePipeline orders-release / Verify / Checks: FAILED"
    assert "1 of 2 check(s) failed: service-b (503)" in alert.summary
