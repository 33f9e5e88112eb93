"""The alerts stack: secret, triggers, least-privilege role, cdk-nag."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.assembly import Assembly
from tests.stacks.helpers import build_with, nag_errors, template

SETTINGS = {
    "min_severity": "warning",
    "max_log_lines": 30,
    "extra_sns_topic_arns": ["arn:aws:sns:eu-central-1:123456789012:app-alarms"],
    "log_subscriptions": [
        {"log_group_name": "/aws/lambda/orders-api"},
        {"log_group_name": "/ecs/web", "filter_pattern": '{ $.level = "ERROR" }'},
    ],
    "event_rules": {"ec2_state_changes": True, "guardduty": 7, "health": True,
                    "codepipeline_failures": True, "codebuild_failures": False},
    "custom_event_patterns": [{"source": ["aws.s3"], "detail-type": ["Object Created"]}],
}


@pytest.fixture(scope="module")
def built() -> tuple[Assembly, Template]:
    assembly = build_with("alerts", SETTINGS)
    return assembly, template(assembly.stacks["alerts"])


def _resources(t: Template, kind: str) -> dict[str, Any]:
    return t.find_resources(kind)


def test_function_environment(built: tuple[Assembly, Template]) -> None:
    _, t = built
    t.has_resource_properties("AWS::Lambda::Function", {"Environment": {"Variables": Match.object_like({
        "DESTINATIONS_SECRET_ARN": {"Ref": Match.string_like_regexp("Destinations")},
        "MIN_SEVERITY": "warning",
        "MAX_LOG_LINES": "30",
        "HTTP_TIMEOUT_SECONDS": "5",
        "DELIVERY_ATTEMPTS": "3",
        "DELIVERY_TABLE_NAME": {"Ref": Match.string_like_regexp("Deliveries")},
        "UNDELIVERED_QUEUE_URL": {"Ref": Match.string_like_regexp("Undelivered")},
    })}})


def test_delivery_table_with_ttl_and_scoped_access(built: tuple[Assembly, Template]) -> None:
    _, t = built
    (table_id, table), = _resources(t, "AWS::DynamoDB::GlobalTable").items()
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["Properties"]["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    statements = [s for p in _resources(t, "AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    (dynamo,) = [s for s in statements if "dynamodb:PutItem" in s["Action"]]
    assert sorted(dynamo["Action"]) == ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem",
                                        "dynamodb:UpdateItem"]
    assert table_id in json.dumps(dynamo["Resource"])


def test_undelivered_queue_is_encrypted_alarmed_and_writable(built: tuple[Assembly, Template]) -> None:
    _, t = built
    queues = {k: q for k, q in _resources(t, "AWS::SQS::Queue").items() if k.startswith("Undelivered")}
    ((queue_id, queue),) = queues.items()
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    alarms = [a["Properties"] for a in _resources(t, "AWS::CloudWatch::Alarm").values()
              if queue_id in json.dumps(a["Properties"].get("Dimensions", []))]
    assert len(alarms) == 1 and alarms[0]["Threshold"] == 1
    statements = [s for p in _resources(t, "AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert any("sqs:SendMessage" in s["Action"] and queue_id in json.dumps(s["Resource"]) for s in statements)


def _ops_subscription(t: Template) -> dict[str, Any]:
    (sub,) = [s["Properties"] for s in _resources(t, "AWS::SNS::Subscription").values()
              if "OpsTopic" in json.dumps(s["Properties"]["TopicArn"])]
    return sub


def test_ops_topic_subscription_filters_reports_below_warning(built: tuple[Assembly, Template]) -> None:
    _, t = built
    subscription = _ops_subscription(t)
    assert subscription["FilterPolicyScope"] == "MessageBody"
    assert subscription["FilterPolicy"] == {"$or": [
        {"metadata": {"additionalContext": {"severity": ["warning", "critical"]}}},
        {"AlarmName": [{"exists": True}]},
    ]}


@pytest.mark.parametrize(("minimum", "severities"), [("critical", ["critical"]), ("info", None)])
def test_ops_topic_filter_follows_the_setting(minimum: str, severities: list[str] | None) -> None:
    assembly = build_with("alerts", {"ops_topic_min_severity": minimum})
    policy = _ops_subscription(template(assembly.stacks["alerts"])).get("FilterPolicy")
    if severities is None:
        assert policy is None
    else:
        assert policy["$or"][0]["metadata"]["additionalContext"]["severity"] == severities


def test_secret_is_a_placeholder_without_urls(built: tuple[Assembly, Template]) -> None:
    _, t = built
    (secret,) = _resources(t, "AWS::SecretsManager::Secret").values()
    assert json.loads(secret["Properties"]["SecretString"]) == {"destinations": []}
    assert secret["Properties"]["Name"] == "opsauto/alerts/destinations"
    # the description shows "https://..." only; the dashboard links to the CloudWatch console, not to a webhook
    resources = {k: v for k, v in t.to_json()["Resources"].items() if v["Type"] != "AWS::CloudWatch::Dashboard"}
    assert not re.search(r"https://[a-z0-9]", json.dumps(resources))


def test_role_reads_only_that_secret(built: tuple[Assembly, Template]) -> None:
    _, t = built
    statements = [s for p in _resources(t, "AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    secret_statements = [s for s in statements if any(str(a).startswith("secretsmanager:")
                                                      for a in (s["Action"] if isinstance(s["Action"], list)
                                                                else [s["Action"]]))]
    assert secret_statements == [{"Action": "secretsmanager:GetSecretValue", "Effect": "Allow",
                                  "Resource": {"Ref": next(iter(_resources(t, "AWS::SecretsManager::Secret")))}}]
    wildcard = [s["Action"] for s in statements if s.get("Resource") == "*"]
    assert wildcard == [["xray:PutTraceSegments", "xray:PutTelemetryRecords"]]


def test_sns_subscriptions_ops_topic_and_extra(built: tuple[Assembly, Template]) -> None:
    _, t = built
    subs = _resources(t, "AWS::SNS::Subscription").values()
    topics = sorted(json.dumps(s["Properties"]["TopicArn"]) for s in subs)
    assert len(topics) == 2
    assert any("OpsTopic" in topic for topic in topics)
    assert '"arn:aws:sns:eu-central-1:123456789012:app-alarms"' in topics
    assert all(s["Properties"]["Protocol"] == "lambda" for s in subs)
    t.has_resource_properties("AWS::Lambda::Permission", {
        "Principal": "sns.amazonaws.com", "SourceArn": "arn:aws:sns:eu-central-1:123456789012:app-alarms"})


def test_log_subscription_filters_and_scoped_permission(built: tuple[Assembly, Template]) -> None:
    _, t = built
    filters = sorted((f["Properties"]["LogGroupName"], f["Properties"]["FilterPattern"])
                     for f in _resources(t, "AWS::Logs::SubscriptionFilter").values())
    assert filters == [("/aws/lambda/orders-api", "?ERROR ?Error ?error ?CRITICAL ?Critical ?FATAL ?Fatal ?Exception "
                        "?Traceback"), ("/ecs/web", '{ $.level = "ERROR" }')]
    permissions = [p["Properties"] for p in _resources(t, "AWS::Lambda::Permission").values()
                   if p["Properties"]["Principal"] == "logs.amazonaws.com"]
    assert len(permissions) == 2
    arns = sorted(json.dumps(p["SourceArn"]) for p in permissions)
    assert "log-group:/aws/lambda/orders-api:*" in arns[0] and "log-group:/ecs/web:*" in arns[1]


def test_event_rules_with_dlq_and_retries(built: tuple[Assembly, Template]) -> None:
    _, t = built
    rules = {k: r["Properties"] for k, r in _resources(t, "AWS::Events::Rule").items()}
    patterns = {k.rstrip("0123456789ABCDEF"): r["EventPattern"] for k, r in rules.items()}
    assert set(patterns) == {"Ec2StateChanges", "GuardDutyFindings", "HealthEvents", "CodePipelineFailures",
                             "CustomPattern"}
    assert patterns["GuardDutyFindings"]["detail"] == {"severity": [{"numeric": [">=", 7]}]}
    assert patterns["Ec2StateChanges"]["detail"] == {"state": ["stopped", "terminated"]}
    assert patterns["CodePipelineFailures"]["detail"] == {"state": ["FAILED"]}
    assert patterns["CustomPattern"] == {"source": ["aws.s3"], "detail-type": ["Object Created"]}
    queue = next(k for k in _resources(t, "AWS::SQS::Queue") if k.startswith("AlertsFailureQueue"))
    for rule in rules.values():
        (target,) = rule["Targets"]
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8


def test_no_codebuild_rule_when_off(built: tuple[Assembly, Template]) -> None:
    _, t = built
    assert not any("aws.codebuild" in json.dumps(r) for r in _resources(t, "AWS::Events::Rule").values())


def test_cdk_nag_clean(built: tuple[Assembly, Template]) -> None:
    assembly, _ = built
    assert nag_errors(assembly.stacks["alerts"]) == []
    assert nag_errors(assembly.core) == []


def test_bad_settings_fail_with_named_keys() -> None:
    from stacks.settings import SettingsError, load_settings

    cases = [
        ({"min_severity": "loud"}, "automations.alerts.min_severity"),
        ({"ops_topic_min_severity": "all"}, "automations.alerts.ops_topic_min_severity"),
        ({"max_log_lines": 0}, "automations.alerts.max_log_lines"),
        ({"retry_attempts": 3}, "automations.alerts.retry_attempts"),
        ({"event_rules": {"guardduty": 11}}, "automations.alerts.event_rules.guardduty"),
        ({"extra_sns_topic_arns": ["my-topic"]}, "is not an SNS topic ARN"),
        ({"custom_event_patterns": [{"source": "aws.s3"}]}, "must be a list of values"),
        ({"custom_event_patterns": [{"detail": {"x": ["y"]}}]}, "give at least 'source' or 'detail-type'"),
        ({"log_subscriptions": [{"log_group_name": "a"}, {"log_group_name": "a"}]}, "listed more than once"),
        ({"log_subscriptions": [{"log_group_name": "bad name!"}]}, "log_subscriptions.0.log_group_name"),
    ]
    for settings, message in cases:
        with pytest.raises(SettingsError) as caught:
            load_settings({"automations": {"alerts": {"enabled": True, **settings}}})
        assert message in str(caught.value), (settings, str(caught.value))


def _delivered_through(policy: dict[str, Any]) -> list[str]:
    """Publish three action reports and one alarm notification to a moto topic whose SQS subscriber has
    ``policy`` on the message body; the titles (alarm names) that arrive."""
    import boto3
    from moto import mock_aws

    from shared.reports import ActionReport, ReportPublisher

    with mock_aws():
        sns_client = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns_client.create_topic(Name="ops")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns_client.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                             Attributes={"FilterPolicy": json.dumps(policy), "FilterPolicyScope": "MessageBody",
                                         "RawMessageDelivery": "true"})
        publisher = ReportPublisher(sns_client, topic)
        for severity in ("info", "warning", "critical"):
            publisher.publish(ActionReport(automation="image_resize", mode="enforce", title=severity,
                                           description="d", event_type="t", severity=severity))
        # A CloudWatch alarm notification: no message attributes at all.
        sns_client.publish(TopicArn=topic, Message=json.dumps({"AlarmName": "alarm", "NewStateValue": "ALARM",
                                                               "Trigger": {"MetricName": "Errors"}}))
        received = []
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                body = json.loads(message["Body"])
                received.append(body.get("AlarmName") or body["content"]["title"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return sorted(received)


def test_ops_topic_filter_policy_branches_on_sns() -> None:
    """Each branch of the policy as SNS applies it (moto): reports at or above the minimum, every alarm.
    (moto evaluates ``$or`` only against message attributes, so the branches are published one by one.)"""
    from stacks.alerts_stack import ops_topic_filter

    policy = ops_topic_filter("warning")
    assert policy is not None and set(policy) == {"$or"}
    reports, alarms = policy["$or"]
    assert _delivered_through(reports) == ["critical", "warning"]
    assert _delivered_through(alarms) == ["alarm"]


def test_security_and_operations_rules_when_switched_on() -> None:
    from stacks.alerts_stack import built_in_patterns
    from stacks.settings.alerts import AlertsSettings

    settings = AlertsSettings.model_validate({"event_rules": {
        "security_hub": "HIGH", "inspector": "MEDIUM", "guardduty_malware_scans": True, "backup_failures": True,
        "config_noncompliant": True, "acm_expiry": True, "trusted_advisor": True, "alarm_state_changes": True}})
    patterns = built_in_patterns(settings)
    assert patterns["SecurityHubFindings"]["detail"]["findings"]["Severity"]["Label"] == ["HIGH", "CRITICAL"]
    assert patterns["InspectorFindings"]["detail"]["severity"] == ["MEDIUM", "HIGH", "CRITICAL"]
    assert patterns["BackupFailures"]["detail"] == {"state": ["FAILED", "ABORTED", "EXPIRED"]}
    assert patterns["ConfigNonCompliant"]["detail"] == {"newEvaluationResult": {"complianceType": ["NON_COMPLIANT"]}}
    assert set(patterns) >= {"GuardDutyMalwareScans", "AcmExpiry", "TrustedAdvisorChecks", "AlarmStateChanges"}
    assert not {"SecurityHubFindings", "BackupFailures"} & set(built_in_patterns(AlertsSettings()))


def test_every_rule_pattern_matches_its_fixture() -> None:
    """The built-in patterns as EventBridge applies them (moto's event-pattern matcher, which routes its rules)
    to the documented sample events."""
    from moto.events.models import EventPattern

    from stacks.alerts_stack import built_in_patterns
    from stacks.settings.alerts import AlertsSettings
    from tests.functions.alerts.conftest import load

    settings = AlertsSettings.model_validate({"event_rules": {
        "security_hub": "HIGH", "inspector": "HIGH", "guardduty_malware_scans": True, "backup_failures": True,
        "config_noncompliant": True, "acm_expiry": True, "trusted_advisor": True, "alarm_state_changes": True}})
    patterns = built_in_patterns(settings)
    # SecurityHubFindings is left out: moto's matcher does not descend into arrays of objects (detail.findings),
    # which EventBridge does; that pattern is the form the Security Hub documentation gives.
    fixtures = {"InspectorFindings": "eventbridge_inspector_finding",
                "GuardDutyMalwareScans": "eventbridge_guardduty_malware_scan",
                "BackupFailures": "eventbridge_backup_job_failed",
                "ConfigNonCompliant": "eventbridge_config_noncompliant",
                "AcmExpiry": "eventbridge_acm_expiring", "TrustedAdvisorChecks": "eventbridge_trusted_advisor",
                "AlarmStateChanges": "eventbridge_alarm_metric_math"}
    for rule, fixture in fixtures.items():
        assert EventPattern.load(json.dumps(patterns[rule])).matches_event(load(fixture)), rule
    resolved = load("eventbridge_guardduty_malware_scan")
    resolved["detail"]["scanResultDetails"]["scanResultStatus"] = "NO_THREATS_FOUND"
    assert not EventPattern.load(json.dumps(patterns["GuardDutyMalwareScans"])).matches_event(resolved)


# --------------------------------------------------------------------------- organization-wide

ORG = {"enabled": True, "organizational_units": ["ou-ab12-cd34ef56"], "regions": ["eu-central-1", "eu-west-1"]}
MEMBER = "444455556666"


def _resolved(pattern: Any, account: str) -> Any:
    """A synthesized pattern with the stack's ``AWS::AccountId`` written as ``account``."""
    return json.loads(json.dumps(pattern).replace('{"Ref": "AWS::AccountId"}', json.dumps(account)))


@pytest.fixture(scope="module")
def org_built() -> Assembly:
    return build_with("alerts", {"event_rules": {"guardduty": 7, "backup_failures": True}},
                      project={"organization": ORG})


def test_organization_wide_the_function_may_name_accounts_and_assumes_nothing(org_built: Assembly) -> None:
    t = template(org_built.stacks["alerts"])
    [variables] = [f["Properties"]["Environment"]["Variables"] for f in t.find_resources("AWS::Lambda::Function")
                   .values() if "DESTINATIONS_SECRET_ARN" in f["Properties"]["Environment"]["Variables"]]
    assert variables["TARGET_ACCOUNTS"] == "organization" and variables["TARGET_OUS"] == "ou-ab12-cd34ef56"
    statements = [s for p in t.find_resources("AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    [names] = [s for s in statements if s.get("Sid") == "ListOrganizationAccounts"]
    assert "organizations:DescribeAccount" in names["Action"]
    assert not [s for s in statements if "sts:AssumeRole" in json.dumps(s["Action"])]
    assert nag_errors(org_built.stacks["alerts"]) == []


def test_every_event_the_member_template_forwards_is_received_on_the_hub_bus(org_built: Assembly) -> None:
    """Each forwarding rule of the member template, fed the sample events it forwards (with a member account),
    hands them to the hub's bus; one of the alerts stack's rules there matches each. The hub's own alarm state
    changes (which reach the function through the ops topic) are not taken a second time."""
    from moto.events.models import EventPattern

    from tests.functions.alerts.conftest import EVENT_NAMES, load

    assert org_built.member is not None
    hub = "123456789012"
    hub_rules = {rule_id: EventPattern.load(json.dumps(_resolved(rule["Properties"]["EventPattern"], hub)))
                 for rule_id, rule in template(org_built.stacks["alerts"]).find_resources("AWS::Events::Rule").items()
                 if "EventPattern" in rule["Properties"]}
    member_rules = template(org_built.member).find_resources("AWS::Events::Rule")
    samples = [name for name in EVENT_NAMES if name.startswith("eventbridge_")]
    for rule_id, rule in member_rules.items():
        forwarding = EventPattern.load(json.dumps(rule["Properties"]["EventPattern"]))
        forwarded = [{**load(name), "account": MEMBER} for name in samples]
        forwarded = [event for event in forwarded if forwarding.matches_event(event)]
        assert forwarded, f"no sample event for the member rule {rule_id}"
        for event in forwarded:
            receivers = [hub_id for hub_id, pattern in hub_rules.items() if pattern.matches_event(event)]
            assert receivers, f"{event['detail-type']} forwarded by {rule_id} matches no rule on the hub's bus"
    alarm = hub_rules[next(k for k in hub_rules if k.startswith("MemberAlarmStateChanges"))]
    assert alarm.matches_event({**load("eventbridge_alarm_state_change"), "account": MEMBER})
    assert not alarm.matches_event({**load("eventbridge_alarm_state_change"), "account": hub})


def test_with_alarm_state_changes_on_one_rule_takes_every_accounts_alarms() -> None:
    assembly = build_with("alerts", {"event_rules": {"alarm_state_changes": True}}, project={"organization": ORG})
    rules = template(assembly.stacks["alerts"]).find_resources("AWS::Events::Rule")
    alarm_rules = [r for r in rules.values() if "aws.cloudwatch" in json.dumps(r["Properties"].get("EventPattern"))]
    assert len(alarm_rules) == 1 and "account" not in alarm_rules[0]["Properties"]["EventPattern"]
