"""sg_remediation stack: the CloudTrail event pattern, the sweep schedule, targets, the role's scope, the trail."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match, Template

from stacks.settings import SettingsError, load_settings
from tests.stacks.helpers import build_with, nag_errors
from tests.stacks.helpers import policy_statements as statements
from tests.stacks.helpers import statement_actions as actions

EVENT_NAMES = ["AuthorizeSecurityGroupIngress", "ModifySecurityGroupRules", "CreateSecurityGroup"]


@pytest.fixture(scope="module")
def default() -> tuple[Stack, Template]:
    stack = build_with("sg_remediation").stacks["sg_remediation"]
    return stack, Template.from_stack(stack)


@pytest.fixture(scope="module")
def custom() -> tuple[Stack, Template]:
    stack = build_with("sg_remediation", {
        "create_trail": True,
        "regions": ["us-east-1", "us-west-2"],
        "allowed_public_ports": "80,443,8000-8080,icmp",
        "exempt_tag": "Remediation=skip",
        "max_changes": 10,
        "sweep_interval_minutes": 15,
        "event_retry_attempts": 2,
        "egress": "enforce",
        "max_prefix_v4": 1,
    }).stacks["sg_remediation"]
    return stack, Template.from_stack(stack)


@pytest.fixture(scope="module")
def report_mode() -> tuple[Stack, Template]:
    stack = build_with("sg_remediation", {"mode": "report", "exempt_tag": "Remediation=skip"}).stacks["sg_remediation"]
    return stack, Template.from_stack(stack)


def test_cloudtrail_event_pattern(default: tuple[Stack, Template]) -> None:
    default[1].has_resource_properties("AWS::Events::Rule", {
        "EventPattern": {
            "source": ["aws.ec2"],
            "detail-type": ["AWS API Call via CloudTrail"],
            "detail": {"eventSource": ["ec2.amazonaws.com"], "eventName": EVENT_NAMES},
        },
        "State": "ENABLED",
    })


def test_sweep_schedule_default_hourly_and_setting(default: tuple[Stack, Template],
                                                   custom: tuple[Stack, Template]) -> None:
    default[1].has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(1 hour)"})
    custom[1].has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(15 minutes)"})


def test_both_rules_target_the_function_with_retries_and_dlq(default: tuple[Stack, Template],
                                                              custom: tuple[Stack, Template]) -> None:
    for template, attempts in ((default[1], 4), (custom[1], 2)):
        rules = template.find_resources("AWS::Events::Rule")
        assert len(rules) == 2
        for rule in rules.values():
            (target,) = rule["Properties"]["Targets"]
            assert target["Arn"]["Fn::GetAtt"][0].startswith("RemediatorFunction")
            assert target["RetryPolicy"] == {"MaximumRetryAttempts": attempts, "MaximumEventAgeInSeconds": 7200}
            assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].startswith("RemediatorFailureQueue")
        # EventBridge may invoke the function and write to the DLQ
        template.resource_count_is("AWS::Lambda::Permission", 2)
        template.has_resource_properties("AWS::SQS::QueuePolicy", {"PolicyDocument": {"Statement": Match.array_with([
            Match.object_like({"Action": "sqs:SendMessage", "Principal": {"Service": "events.amazonaws.com"}})
        ])}})


def test_function_environment(default: tuple[Stack, Template], custom: tuple[Stack, Template]) -> None:
    env = Match.object_like
    default[1].has_resource_properties("AWS::Lambda::Function", {"Environment": {"Variables": env({
        "MODE": "enforce", "ALLOWED_PUBLIC_PORTS": "80,443,icmp:3:4,icmpv6:2", "EXEMPT_TAG": "AutoRemediate=false",
        "MAX_CHANGES": "50", "NOTIFY_TOPIC_ARN": Match.any_value(), "POWERTOOLS_SERVICE_NAME": "sg_remediation",
        "REGIONS": "own",  # the function's own region
    })}})
    custom[1].has_resource_properties("AWS::Lambda::Function", {"Environment": {"Variables": env({
        "MODE": "enforce", "ALLOWED_PUBLIC_PORTS": "80,443,8000-8080,icmp", "EXEMPT_TAG": "Remediation=skip",
        "MAX_CHANGES": "10", "REGIONS": "us-east-1,us-west-2",
    })}})


def test_role_revokes_only_and_never_authorizes(default: tuple[Stack, Template]) -> None:
    found = statements(default[1])
    ec2 = [s for s in found if any(a.startswith("ec2:") for a in actions(s))]
    assert sorted(a for s in ec2 for a in actions(s)) == [
        "ec2:DescribeManagedPrefixLists", "ec2:DescribeSecurityGroupRules", "ec2:DescribeSecurityGroups",
        "ec2:GetManagedPrefixListEntries", "ec2:RevokeSecurityGroupIngress"]
    assert not any("Authorize" in a or a in ("ec2:*", "*") for s in found for a in actions(s))
    text = json.dumps(default[1].to_json())
    assert "AuthorizeSecurityGroup" not in text.replace('"eventName": ["AuthorizeSecurityGroupIngress"', "")
    assert "RevokeSecurityGroupEgress" not in text


def test_revoke_is_scoped_to_this_accounts_groups_and_not_exempt_ones(default: tuple[Stack, Template],
                                                                       custom: tuple[Stack, Template]) -> None:
    def revoke_statement(template: Template) -> dict[str, Any]:
        (statement,) = [s for s in statements(template) if "ec2:RevokeSecurityGroupIngress" in actions(s)]
        return statement

    statement = revoke_statement(default[1])
    assert statement["Condition"] == {"StringNotEqualsIgnoreCase": {"aws:ResourceTag/AutoRemediate": "false"}}
    arns = [json.dumps(r) for r in statement["Resource"]]
    assert len(arns) == 2
    assert all('":ec2:eu-central-1:", {"Ref": "AWS::AccountId"}, ":security-group' in arn for arn in arns)

    statement = revoke_statement(custom[1])
    assert statement["Condition"] == {"StringNotEqualsIgnoreCase": {"aws:ResourceTag/Remediation": "skip"}}
    arns = " ".join(json.dumps(r) for r in statement["Resource"])
    assert len(statement["Resource"]) == 6  # the sweep's regions and the stack's own (events come from there)
    for region in ("us-east-1", "us-west-2", "eu-central-1"):
        assert f'":ec2:{region}:", {{"Ref": "AWS::AccountId"}}, ":security-group/*"' in arns
        assert f'":ec2:{region}:", {{"Ref": "AWS::AccountId"}}, ":security-group-rule/*"' in arns


def test_describe_is_star_but_region_limited(custom: tuple[Stack, Template]) -> None:
    (statement,) = [s for s in statements(custom[1]) if "ec2:DescribeSecurityGroups" in actions(s)]
    assert statement["Resource"] == "*"
    assert statement["Condition"] == {
        "StringEquals": {"aws:RequestedRegion": ["us-east-1", "us-west-2", "eu-central-1"]}}


def test_no_trail_by_default(default: tuple[Stack, Template]) -> None:
    default[1].resource_count_is("AWS::CloudTrail::Trail", 0)
    default[1].resource_count_is("AWS::S3::Bucket", 0)


def test_trail_when_asked(custom: tuple[Stack, Template]) -> None:
    template = custom[1]
    template.has_resource_properties("AWS::CloudTrail::Trail", {
        "IsMultiRegionTrail": True,
        "IsLogging": True,
        "EnableLogFileValidation": True,
        "EventSelectors": [Match.object_like({"IncludeManagementEvents": True, "ReadWriteType": "WriteOnly"})],
    })
    template.has_resource_properties("AWS::S3::Bucket", {
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "LifecycleConfiguration": {"Rules": Match.array_with([Match.object_like({"ExpirationInDays": 365})])},
    })
    template.has_resource_properties("AWS::S3::BucketPolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    ])}})


def test_cdk_nag_clean(default: tuple[Stack, Template], custom: tuple[Stack, Template]) -> None:
    assert nag_errors(default[0]) == []
    assert nag_errors(custom[0]) == []


@pytest.mark.parametrize(("settings", "message"), [
    ({"allowed_public_ports": "80,ssh"}, "allowed_public_ports: 'ssh' is not a port"),
    ({"allowed_public_ports": ""}, "use 'none'"),
    ({"allowed_public_ports": "70000"}, "between 0 and 65535"),
    ({"allowed_public_ports": "9000-8000"}, "start is above its end"),
    ({"exempt_tag": "AutoRemediate"}, "exempt_tag: exempt tag 'AutoRemediate' must look like Key=Value"),
    ({"exempt_tag": "aws:x=y"}, "reserved"),
    ({"regions": ["moon-1"]}, "regions: 'moon-1' is not an AWS region name"),
    ({"regions": ["us-east-1", "us-east-1"]}, "listed more than once"),
    ({"regions": ["us-east-1"], "sweep_interval_minutes": 0}, "sweep_interval_minutes=0 disables"),
    ({"max_changes": 0}, "max_changes"),
    ({"mode": "dry-run"}, "allowed values: 'enforce' or 'report'"),
    ({"sweep_intervall_minutes": 5}, "unknown setting"),
])
def test_bad_settings_name_the_key(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load_settings({"automations": {"sg_remediation": settings}})



def test_report_mode_role_is_read_only(report_mode: tuple[Stack, Template]) -> None:
    report_mode[1].has_resource_properties("AWS::Lambda::Function", {"Environment": {"Variables": Match.object_like(
        {"MODE": "report"})}})
    found = statements(report_mode[1])
    ec2_actions = sorted(a for s in found for a in actions(s) if a.startswith("ec2:"))
    assert ec2_actions == ["ec2:DescribeManagedPrefixLists", "ec2:DescribeSecurityGroupRules",
                           "ec2:DescribeSecurityGroups", "ec2:GetManagedPrefixListEntries"]
    assert nag_errors(report_mode[0]) == []


def test_egress_enforce_may_revoke_egress_and_hears_egress_events(default: tuple[Stack, Template],
                                                                  custom: tuple[Stack, Template]) -> None:
    def revoke_actions(template: Template) -> list[str]:
        return sorted(a for s in statements(template) for a in actions(s) if a.startswith("ec2:Revoke"))

    def event_names(template: Template) -> list[str]:
        rules = template.find_resources("AWS::Events::Rule").values()
        (names,) = [r["Properties"]["EventPattern"]["detail"]["eventName"] for r in rules
                    if "EventPattern" in r["Properties"]]
        return list(names)

    assert revoke_actions(default[1]) == ["ec2:RevokeSecurityGroupIngress"]
    assert revoke_actions(custom[1]) == ["ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress"]
    assert event_names(default[1]) == EVENT_NAMES
    assert event_names(custom[1]) == [*EVENT_NAMES, "AuthorizeSecurityGroupEgress"]
    custom[1].has_resource_properties("AWS::Lambda::Function", {"Environment": {"Variables": Match.object_like({
        "EGRESS": "enforce", "MAX_PREFIX_V4": "1", "MAX_PREFIX_V6": "0"})}})


# --------------------------------------------------------------------------- organization-wide

ORG = {"enabled": True, "organizational_units": ["ou-ab12-cd34ef56"], "regions": ["eu-central-1", "eu-west-1"],
       "max_concurrency": 20}


def _org(mode: str = "enforce", **more: Any) -> tuple[Stack, Stack]:
    assembly = build_with("sg_remediation", {"mode": mode, "egress": "enforce", **more},
                          project={"organization": ORG})
    assert assembly.member is not None
    return assembly.stacks["sg_remediation"], assembly.member


def _ec2_statements(found: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps({"Actions": sorted(actions(s)), "Resource": s["Resource"],
                              "Condition": s.get("Condition")}, sort_keys=True)
                  for s in found if any(a.startswith("ec2:") for a in actions(s)))


@pytest.mark.parametrize("mode", ["enforce", "report"])
def test_member_role_statements_are_the_functions_own(mode: str) -> None:
    stack, member = _org(mode)
    [role] = [r for r in Template.from_stack(member).find_resources("AWS::IAM::Role").values()
              if r["Properties"].get("RoleName") == "opsauto-member-sg-remediation"]
    theirs = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert _ec2_statements(statements(Template.from_stack(stack))) == _ec2_statements(theirs)
    revokes = [a for s in theirs for a in actions(s) if a.startswith("ec2:Revoke")]
    assert revokes == ([] if mode == "report" else ["ec2:RevokeSecurityGroupIngress",
                                                     "ec2:RevokeSecurityGroupEgress"])


def test_org_wide_sweep_fans_out_and_member_events_reach_the_rule() -> None:
    stack, _ = _org()
    t = Template.from_stack(stack)
    t.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "BatchSize": 1, "ScalingConfig": {"MaximumConcurrency": 20},
        "FunctionResponseTypes": ["ReportBatchItemFailures"]})
    [work] = [q for q in t.find_resources("AWS::SQS::Queue").values() if "RedrivePolicy" in q["Properties"]]
    dead_letters = work["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert any(dead_letters in json.dumps(a["Properties"].get("Dimensions", []))
               for a in t.find_resources("AWS::CloudWatch::Alarm").values())
    [function] = [f for f in t.find_resources("AWS::Lambda::Function").values()
                  if f["Properties"]["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME") == "sg_remediation"]
    env = function["Properties"]["Environment"]["Variables"]
    assert env["TARGET_ACCOUNTS"] == "organization" and env["TARGET_OUS"] == "ou-ab12-cd34ef56"
    assert env["MEMBER_ROLE_NAME"] == "opsauto-member-sg-remediation" and env["REGIONS"] == "eu-central-1,eu-west-1"
    assert "WORK_QUEUE_URL" in env
    t.has_resource_properties("AWS::IAM::Role", {"RoleName": "opsauto-sg-remediation-hub"})
    # The change rule has no account filter: events forwarded from member accounts match it on the hub's bus.
    [rule] = [r for r in t.find_resources("AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    assert "account" not in rule["Properties"]["EventPattern"]
    assert nag_errors(stack) == []


def test_org_wide_without_a_sweep_has_no_work_queue() -> None:
    stack, _ = _org(sweep_interval_minutes=0)
    Template.from_stack(stack).resource_count_is("AWS::Lambda::EventSourceMapping", 0)
