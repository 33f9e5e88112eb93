"""The handler end to end on moto: CloudTrail events and sweeps, as EventBridge delivers them."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from sg_remediation import handler as sg_handler
from tests.conftest import emf_metrics, load_event
from tests.functions.sg_remediation.conftest import REGION, Sandbox, cloudtrail_event, world

pytestmark = pytest.mark.usefixtures("own_role")  # every invocation under the synthesized role, moto IAM on


def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return sg_handler.handler(event, context)




def test_ssh_from_world_revoked_https_kept_and_reported(aws: Sandbox, lambda_context: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    group = aws.group("web", [world(22), world(443)])
    ssh_rule = aws.rule_id(group, 22, "0.0.0.0/0")
    https_rule = aws.rule_id(group, 443, "0.0.0.0/0")
    event = cloudtrail_event("authorize_ingress_world.json", group,
                             {"sgr-0aaaaaaaaaaaaaaa1": ssh_rule, "sgr-0aaaaaaaaaaaaaaa2": https_rule})

    result = invoke(event, lambda_context)

    assert result["revoked"] == [ssh_rule]
    assert aws.sources(group) == {("tcp", 443, 443, "0.0.0.0/0")}
    (report,) = aws.reports()
    assert report["version"] == "1.0" and report["source"] == "custom"
    assert report["content"]["title"] == f"Closed 1 world-open ingress rule on {group} (web)"
    context = report["metadata"]["additionalContext"]
    assert context["groupId"] == group
    assert context["groupName"] == "web"
    assert context["vpcId"] == aws.vpc_id
    assert context["actor"] == "arn:aws:sts::123456789012:assumed-role/Developer/alice"
    assert context["sourceIPAddress"] == "198.51.100.23"
    assert context["eventTime"] == "2026-11-28T09:41:07Z"
    assert json.loads(context["revokedRules"]) == [
        {"ruleId": ssh_rule, "direction": "ingress", "protocol": "tcp", "ports": "22", "source": "0.0.0.0/0"}
    ]
    description = report["content"]["description"]
    assert "tcp 22 from 0.0.0.0/0" in description
    assert "Left open (allowed public ports)" in description and "tcp 443 from 0.0.0.0/0" in description
    assert report["metadata"]["relatedResources"] == [
        f"arn:aws:ec2:{REGION}:123456789012:security-group/{group}"
    ]
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics["RulesRevoked"] == 1
    assert metrics["FindingsReported"] == 0


def test_rdp_from_ipv6_world_revoked_after_modify(aws: Sandbox, lambda_context: Any) -> None:
    group = aws.group("rdp", [world(3389, v6=True), {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389,
                                                       "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    rule = aws.rule_id(group, 3389, "::/0")
    event = cloudtrail_event("modify_rules_world.json", group, {"sgr-0bbbbbbbbbbbbbbb1": rule})

    result = invoke(event, lambda_context)

    assert result["revoked"] == [rule]
    assert aws.sources(group) == {("tcp", 3389, 3389, "10.0.0.0/8")}
    (report,) = aws.reports()
    assert report["metadata"]["additionalContext"]["trigger"] == "ModifySecurityGroupRules"
    assert "existed before this change" not in report["content"]["description"]


def test_all_traffic_from_world_revoked(aws: Sandbox, lambda_context: Any) -> None:
    group = aws.group("open", [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    result = invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)
    assert len(result["revoked"]) == 1
    assert aws.ingress(group) == []
    (report,) = aws.reports()
    assert "all traffic (protocol -1)" in report["content"]["description"]


def test_only_the_world_entry_of_a_permission_is_revoked(aws: Sandbox, lambda_context: Any) -> None:
    other = aws.group("app")
    prefix_list = aws.ec2.create_managed_prefix_list(PrefixListName="office", MaxEntries=5,
                                                     AddressFamily="IPv4")["PrefixList"]["PrefixListId"]
    group = aws.group("mixed", [{
        "IpProtocol": "tcp", "FromPort": 20, "ToPort": 25,
        "IpRanges": [{"CidrIp": "0.0.0.0/0"}, {"CidrIp": "203.0.113.0/24"}],
        "PrefixListIds": [{"PrefixListId": prefix_list}],
        "UserIdGroupPairs": [{"GroupId": other}],
    }])

    result = invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)

    assert len(result["revoked"]) == 1
    assert aws.sources(group) == {
        ("tcp", 20, 25, "203.0.113.0/24"),
        ("tcp", 20, 25, prefix_list),
        ("tcp", 20, 25, other),
    }


def test_private_cidr_on_ssh_kept_and_nothing_reported(aws: Sandbox, lambda_context: Any) -> None:
    group = aws.group("private", [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                   "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}, world(443)])
    result = invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)
    assert result["revoked"] == [] and result["reported"] == []
    assert len(aws.ingress(group)) == 2
    assert aws.reports() == []


def test_egress_to_world_is_not_touched_by_default(aws: Sandbox, lambda_context: Any) -> None:
    group = aws.group("egress", [world(22)])
    before = aws.egress(group)
    assert any(rule.get("CidrIpv4") == "0.0.0.0/0" for rule in before)
    invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)
    assert aws.egress(group) == before


def test_exempt_group_is_only_reported(aws: Sandbox, lambda_context: Any, capsys: pytest.CaptureFixture[str]) -> None:
    group = aws.group("bastion", [world(22)], tags={"AutoRemediate": "false"})
    result = invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)
    assert result["revoked"] == []
    assert len(result["reported"]) == 1
    assert aws.sources(group) == {("tcp", 22, 22, "0.0.0.0/0")}
    (report,) = aws.reports()
    assert "AutoRemediate=false" in report["content"]["title"]
    assert report["metadata"]["eventType"] == "SecurityGroupIngressFinding"
    assert emf_metrics(capsys.readouterr().out)["FindingsReported"] == 1


def test_report_mode_changes_nothing(aws: Sandbox, lambda_context: Any, env: pytest.MonkeyPatch) -> None:
    env.setenv("MODE", "report")
    group = aws.group("web", [world(22), world(3389, v6=True), world(443)])
    before = aws.sources(group)
    result = invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)
    assert result["revoked"] == []
    assert len(result["reported"]) == 2
    assert aws.sources(group) == before
    (report,) = aws.reports()
    assert report["content"]["title"].startswith("[report mode] 2 world-open ingress rules")
    assert report["metadata"]["additionalContext"]["mode"] == "report"
    assert "Would revoke 2" in report["content"]["description"]


def test_replayed_event_revokes_nothing_twice(aws: Sandbox, lambda_context: Any) -> None:
    group = aws.group("web", [world(22)])
    event = cloudtrail_event("authorize_ingress_world.json", group)
    first = invoke(event, lambda_context)
    second = invoke(event, lambda_context)
    assert len(first["revoked"]) == 1
    assert second["revoked"] == [] and second["alreadyGone"] == [] and second["reportsPublished"] == 0
    assert len(aws.reports()) == 1


def test_pre_existing_world_rules_are_marked(aws: Sandbox, lambda_context: Any) -> None:
    group = aws.group("web", [world(22), world(8080)])
    ssh_rule = aws.rule_id(group, 22, "0.0.0.0/0")
    event = cloudtrail_event("authorize_ingress_world.json", group, {"sgr-0aaaaaaaaaaaaaaa1": ssh_rule})
    result = invoke(event, lambda_context)
    assert len(result["revoked"]) == 2
    (report,) = aws.reports()
    lines = report["content"]["description"].splitlines()
    assert any("tcp 8080" in line and "existed before this change" in line for line in lines)
    assert any("tcp 22 " in line and "existed before" not in line for line in lines)


def test_create_security_group_event_checks_the_new_group(aws: Sandbox, lambda_context: Any) -> None:
    group = aws.group("web-tier", [world(0, 65535)])
    result = invoke(cloudtrail_event("create_security_group.json", group), lambda_context)
    assert len(result["revoked"]) == 1
    (report,) = aws.reports()
    context = report["metadata"]["additionalContext"]
    assert context["trigger"] == "CreateSecurityGroup"
    assert context["actor"].endswith("/AWSCloudFormation")
    assert context["sourceIPAddress"] == "cloudformation.amazonaws.com"


@pytest.mark.parametrize("fixture", ["authorize_ingress_failed.json", "authorize_ingress_denied.json"])
def test_failed_api_call_is_ignored_not_retried(aws: Sandbox, lambda_context: Any, fixture: str,
                                                capfd: pytest.CaptureFixture[str],
                                                caplog: pytest.LogCaptureFixture) -> None:
    group = aws.group("web", [world(22)])
    result = invoke(cloudtrail_event(fixture, group), lambda_context)
    assert result["ignored"] == "the API call failed, so it changed nothing"
    assert aws.sources(group) == {("tcp", 22, 22, "0.0.0.0/0")}
    assert aws.reports() == []
    out = capfd.readouterr().out
    assert emf_metrics(out)["IgnoredEvents"] == 1
    (warning,) = [record for record in caplog.records if record.getMessage() == "ignored event"]
    assert warning.levelname == "WARNING"
    assert warning.errorCode.startswith("Client.")  # type: ignore[attr-defined]


@pytest.mark.parametrize("event", [
    {},
    [],
    "text",
    {"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2"},
    {"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
     "detail": {"eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress",
                "awsRegion": "us-east-1", "requestParameters": {"groupName": "no-id"}}},
    {"detail-type": "AWS API Call via CloudTrail", "source": "aws.s3",
     "detail": {"eventSource": "s3.amazonaws.com", "eventName": "PutObject"}},
])
def test_malformed_events_are_ignored(aws: Sandbox, lambda_context: Any, event: Any) -> None:
    result = invoke(event, lambda_context)
    assert result["trigger"] == "ignored" and result["ignored"]
    assert aws.reports() == []


def test_group_that_no_longer_exists_is_logged_not_raised(aws: Sandbox, lambda_context: Any,
                                                          capfd: pytest.CaptureFixture[str],
                                                caplog: pytest.LogCaptureFixture) -> None:
    group = aws.group("gone", [world(22)])
    aws.ec2.delete_security_group(GroupId=group)
    result = invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)
    assert result["groupsGone"] == [group]
    assert result["revoked"] == []
    out = capfd.readouterr().out
    assert emf_metrics(out)["GroupsGone"] == 1
    assert any(r.getMessage() == "security group no longer exists" and r.levelname == "WARNING"
               for r in caplog.records)


def test_sweep_across_many_groups_and_regions(aws: Sandbox, lambda_context: Any, env: pytest.MonkeyPatch) -> None:
    env.setenv("REGIONS", "us-east-1,eu-west-1")
    west = boto3.client("ec2", region_name="eu-west-1")
    west_vpc = west.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    bad_east = [aws.group(f"east-{i}", [world(22), world(443)]) for i in range(12)]
    good_east = [aws.group(f"east-ok-{i}", [world(80)]) for i in range(5)]
    bad_west = [aws.group(f"west-{i}", [world(5432, v6=True)], ec2=west, vpc_id=west_vpc) for i in range(6)]

    result = invoke(load_event("sg_remediation/scheduled_sweep.json"), lambda_context)

    assert result["trigger"] == "sweep"
    assert len(result["revoked"]) == 12 + 6
    for group in bad_east:
        assert aws.sources(group) == {("tcp", 443, 443, "0.0.0.0/0")}
    for group in good_east:
        assert aws.sources(group) == {("tcp", 80, 80, "0.0.0.0/0")}
    for group in bad_west:
        assert aws.ingress(group, ec2=west) == []
    reports = aws.reports()
    assert len(reports) == 18
    assert {r["metadata"]["additionalContext"]["trigger"] for r in reports} == {"sweep"}
    assert {r["metadata"]["additionalContext"]["region"] for r in reports} == {"us-east-1", "eu-west-1"}
    # an overlapping second sweep finds nothing left to do
    again = invoke(load_event("sg_remediation/scheduled_sweep.json"), lambda_context)
    assert again["revoked"] == [] and aws.reports() == []


def test_max_changes_guard_reports_instead_of_acting(aws: Sandbox, lambda_context: Any,
                                                     env: pytest.MonkeyPatch) -> None:
    env.setenv("MAX_CHANGES", "3")
    groups = [aws.group(f"g{i}", [world(22)]) for i in range(4)]
    exempt = aws.group("exempt", [world(23)], tags={"AutoRemediate": "False"})

    result = invoke(load_event("sg_remediation/scheduled_sweep.json"), lambda_context)

    assert result["guardTripped"] is True
    assert result["revoked"] == []
    assert len(result["reported"]) == 5
    for group in [*groups, exempt]:
        assert len(aws.ingress(group)) == 1
    (report,) = aws.reports()
    assert report["metadata"]["eventType"] == "SecurityGroupRemediationGuard"
    assert report["metadata"]["additionalContext"]["severity"] == "critical"
    assert "MAX_CHANGES=3" in report["content"]["title"]


def test_at_max_changes_the_run_acts(aws: Sandbox, lambda_context: Any, env: pytest.MonkeyPatch) -> None:
    env.setenv("MAX_CHANGES", "3")
    for i in range(3):
        aws.group(f"g{i}", [world(22)])
    aws.group("exempt", [world(23)], tags={"AutoRemediate": "false"})  # exempt: not counted against the guard
    result = invoke(load_event("sg_remediation/scheduled_sweep.json"), lambda_context)
    assert result["guardTripped"] is False
    assert len(result["revoked"]) == 3
    assert len(result["reported"]) == 1


def test_allowed_ports_setting_is_honoured(aws: Sandbox, lambda_context: Any, env: pytest.MonkeyPatch) -> None:
    env.setenv("ALLOWED_PUBLIC_PORTS", "80,443,8000-8080,icmp")
    group = aws.group("app", [world(8000, 8080), world(8000, 8081), world(53, protocol="udp"),
                              {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1,
                               "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)
    assert aws.sources(group) == {("tcp", 8000, 8080, "0.0.0.0/0"), ("icmp", -1, -1, "0.0.0.0/0")}


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_bad_configuration_fails_loudly(aws: Sandbox, lambda_context: Any, env: pytest.MonkeyPatch) -> None:
    from shared.config import ConfigError

    env.setenv("ALLOWED_PUBLIC_PORTS", "80,http")
    with pytest.raises(ConfigError, match="'http' is not a port"):
        invoke(load_event("sg_remediation/scheduled_sweep.json"), lambda_context)


def test_event_delay_metric_measures_cloudtrail_delivery(aws: Sandbox, lambda_context: Any,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime, timedelta

    group = aws.group("web", [world(443)])
    event = cloudtrail_event("authorize_ingress_world.json", group)
    event["detail"]["eventTime"] = (datetime.now(UTC) - timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    invoke(event, lambda_context)
    delay = emf_metrics(capsys.readouterr().out)["EventDelaySeconds"]
    assert 89 <= delay <= 120


def test_sweep_reports_left_open_findings_in_one_digest(aws: Sandbox, lambda_context: Any,
                                                        env: pytest.MonkeyPatch) -> None:
    env.setenv("MODE", "report")
    groups = [aws.group(f"g{i}", [world(22), world(443)]) for i in range(3)]
    exempt = aws.group("bastion", [world(22)], tags={"AutoRemediate": "false"})
    result = invoke(load_event("sg_remediation/scheduled_sweep.json"), lambda_context)
    assert result["revoked"] == [] and len(result["reported"]) == 4
    (report,) = aws.reports()
    assert report["content"]["title"] == "[report mode] Sweep: 4 world-open rules in 4 groups not revoked"
    findings = json.loads(report["metadata"]["additionalContext"]["findings"])
    assert {f["groupId"] for f in findings} == {*groups, exempt}
    reasons = {f["groupId"]: f["reason"] for f in findings}
    assert reasons[exempt] == "the group is tagged AutoRemediate=false"
    assert reasons[groups[0]] == "report mode"
    for group in groups:
        assert len(aws.ingress(group)) == 2


def _sweep_with_revoke_fault(aws: Sandbox, lambda_context: Any, code: str, status: int = 400
                             ) -> tuple[list[str], str, Any]:
    from tests.lifetime.kit import Fault, FaultInjector

    groups = [aws.group(f"g{i}", [world(22)]) for i in range(4)]
    protected = groups[1]
    with FaultInjector() as faults:
        faults.add(Fault("ec2.RevokeSecurityGroupIngress", code, status=status,
                         when=lambda params: params.get("GroupId") == protected))
        with faults.active():
            try:
                outcome: Any = invoke(load_event("sg_remediation/scheduled_sweep.json"), lambda_context)
            except Exception as exc:  # the transient case
                outcome = exc
    return groups, protected, outcome


def test_denied_revoke_on_one_group_does_not_abort_the_sweep(aws: Sandbox, lambda_context: Any,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    groups, protected, result = _sweep_with_revoke_fault(aws, lambda_context, "UnauthorizedOperation")

    assert isinstance(result, dict), result  # a permanent refusal is reported, not raised
    for group in groups:
        expected = {("tcp", 22, 22, "0.0.0.0/0")} if group == protected else set()
        assert aws.sources(group) == expected, group
    assert len(result["revoked"]) == 3
    (failure,) = result["failed"]
    assert failure["groupId"] == protected and failure["errorCode"] == "UnauthorizedOperation"
    assert failure["ruleIds"] == [aws.rule_id(protected, 22, "0.0.0.0/0")]
    reports = aws.reports()
    (failed_report,) = [r for r in reports if r["metadata"]["eventType"] == "SecurityGroupRemediationFailed"]
    assert protected in failed_report["content"]["description"]
    assert "UnauthorizedOperation" in failed_report["content"]["description"]
    assert failed_report["metadata"]["relatedResources"] == [
        f"arn:aws:ec2:{REGION}:123456789012:security-group/{protected}"]
    assert len([r for r in reports if r["metadata"]["eventType"] == "SecurityGroupIngressRevoked"]) == 3
    assert emf_metrics(capsys.readouterr().out)["RevokeFailures"] == 1


def test_throttled_revoke_on_one_group_still_revokes_the_others_then_raises(aws: Sandbox,
                                                                            lambda_context: Any) -> None:
    from botocore.exceptions import ClientError

    groups, protected, outcome = _sweep_with_revoke_fault(aws, lambda_context, "RequestLimitExceeded", 503)

    assert isinstance(outcome, ClientError)  # transient: Lambda retries the sweep
    assert outcome.response["Error"]["Code"] == "RequestLimitExceeded"
    for group in groups:
        expected = {("tcp", 22, 22, "0.0.0.0/0")} if group == protected else set()
        assert aws.sources(group) == expected, group
    left = aws.rule_id(protected, 22, "0.0.0.0/0")
    # the retry finishes the job and repeats nothing
    retry = invoke(load_event("sg_remediation/scheduled_sweep.json"), lambda_context)
    assert retry["revoked"] == [left]
    assert aws.sources(protected) == set()
