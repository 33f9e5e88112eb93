"""The policy end to end on moto: ports per protocol, ICMP types, prefix lists, rule tags, egress, world width."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sg_remediation import handler as sg_handler
from tests.conftest import emf_metrics as metric_values
from tests.conftest import load_event
from tests.functions.sg_remediation.conftest import Sandbox, cloudtrail_event, world
from tests.lifetime.kit import Fault, FaultInjector

SWEEP = "sg_remediation/scheduled_sweep.json"


def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return sg_handler.handler(event, context)


def prefix_list(aws: Sandbox, name: str, *cidrs: str, family: str = "IPv4") -> str:
    return str(aws.ec2.create_managed_prefix_list(
        PrefixListName=name, MaxEntries=10, AddressFamily=family,
        Entries=[{"Cidr": cidr, "Description": name} for cidr in cidrs])["PrefixList"]["PrefixListId"])


def from_list(port: int, list_id: str) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "PrefixListIds": [{"PrefixListId": list_id}]}


def icmp(icmp_type: int, code: int, v6: bool = False) -> dict[str, Any]:
    permission: dict[str, Any] = {"IpProtocol": "58" if v6 else "icmp", "FromPort": icmp_type, "ToPort": code}
    if v6:
        permission["Ipv6Ranges"] = [{"CidrIpv6": "::/0"}]
    else:
        permission["IpRanges"] = [{"CidrIp": "0.0.0.0/0"}]
    return permission


def test_shipped_default_keeps_http_https_and_path_mtu_discovery(aws: Sandbox, lambda_context: Any) -> None:
    group = aws.group("web", [world(80), world(443), world(443, v6=True), icmp(3, 4), icmp(2, -1, v6=True),
                              icmp(8, 0), icmp(-1, -1), world(443, protocol="udp")])
    result = invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)
    assert len(result["revoked"]) == 3  # echo request, every ICMP type, QUIC over UDP 443
    assert aws.sources(group) == {("tcp", 80, 80, "0.0.0.0/0"), ("tcp", 443, 443, "0.0.0.0/0"),
                                  ("tcp", 443, 443, "::/0"), ("icmp", 3, 4, "0.0.0.0/0"), ("58", 2, -1, "::/0")}


def test_udp_and_icmp_entries_allow_exactly_what_they_name(aws: Sandbox, lambda_context: Any,
                                                           env: pytest.MonkeyPatch) -> None:
    env.setenv("ALLOWED_PUBLIC_PORTS", "443,udp:443,udp:51820,icmp:0,icmpv6:2")
    group = aws.group("vpn", [world(443, protocol="udp"), world(51820, protocol="udp"), world(51821, protocol="udp"),
                              world(51820), icmp(0, 0), icmp(0, -1), icmp(3, 4), icmp(2, 0, v6=True)])
    invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)
    assert aws.sources(group) == {("udp", 443, 443, "0.0.0.0/0"), ("udp", 51820, 51820, "0.0.0.0/0"),
                                  ("icmp", 0, 0, "0.0.0.0/0"), ("icmp", 0, -1, "0.0.0.0/0"), ("58", 2, 0, "::/0")}


def test_a_customer_prefix_list_holding_the_world_is_revoked_from_the_rule_not_edited(
        aws: Sandbox, lambda_context: Any) -> None:
    open_list = prefix_list(aws, "partners", "198.51.100.0/24", "0.0.0.0/0")
    office = prefix_list(aws, "office", "203.0.113.0/24")
    aws_managed = next(pl["PrefixListId"] for pl in aws.ec2.describe_managed_prefix_lists()["PrefixLists"]
                       if pl["OwnerId"] == "AWS")
    group = aws.group("db", [from_list(5432, open_list), from_list(443, open_list), from_list(22, office),
                             from_list(22, aws_managed)])
    with FaultInjector() as calls:
        result = invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)
    assert len(result["revoked"]) == 1
    assert aws.sources(group) == {("tcp", 443, 443, open_list), ("tcp", 22, 22, office),
                                  ("tcp", 22, 22, aws_managed)}
    entries = aws.ec2.get_managed_prefix_list_entries(PrefixListId=open_list)["Entries"]
    assert {entry["Cidr"] for entry in entries} == {"198.51.100.0/24", "0.0.0.0/0"}  # the shared list is untouched
    read = [call.params["PrefixListId"] for call in calls.calls if call.operation == "GetManagedPrefixListEntries"]
    assert sorted(read) == sorted([open_list, office])  # AWS-managed lists are not read
    (report,) = aws.reports()
    assert f"prefix list {open_list} (holds 0.0.0.0/0)" in report["content"]["description"]


def test_prefix_lists_are_read_once_per_run(aws: Sandbox, lambda_context: Any) -> None:
    shared = prefix_list(aws, "vendors", "0.0.0.0/0")
    groups = [aws.group(f"g{i}", [from_list(22, shared), from_list(443, shared)]) for i in range(5)]
    with FaultInjector() as calls:
        result = invoke(load_event(SWEEP), lambda_context)
    assert len(result["revoked"]) == 5
    assert calls.count("ec2.GetManagedPrefixListEntries") == 1
    assert calls.count("ec2.DescribeManagedPrefixLists") == 1
    for group in groups:
        assert aws.sources(group) == {("tcp", 443, 443, shared)}


def test_an_unreadable_prefix_list_is_logged_counted_and_not_taken_for_world(
        aws: Sandbox, lambda_context: Any, capsys: pytest.CaptureFixture[str]) -> None:
    hidden = prefix_list(aws, "hidden", "0.0.0.0/0")
    listed = aws.group("listed", [from_list(22, hidden)])
    plain = aws.group("plain", [world(22)])
    with FaultInjector() as faults:
        faults.add(Fault("ec2.GetManagedPrefixListEntries", "UnauthorizedOperation", status=403))
        with faults.active():
            result = invoke(load_event(SWEEP), lambda_context)
    assert aws.sources(plain) == set()
    assert aws.sources(listed) == {("tcp", 22, 22, hidden)}
    assert len(result["revoked"]) == 1
    assert metric_values(capsys.readouterr().out)["PrefixListsUnresolved"] == 1


def test_a_rule_tagged_with_the_exempt_tag_is_reported_the_rest_revoked(aws: Sandbox, lambda_context: Any) -> None:
    group = aws.group("ops")
    kept = aws.ec2.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[world(22)],
        TagSpecifications=[{"ResourceType": "security-group-rule",
                            "Tags": [{"Key": "AutoRemediate", "Value": "FALSE"}]}])["SecurityGroupRules"][0]
    aws.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[world(3389)])
    result = invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)
    assert result["reported"] == [kept["SecurityGroupRuleId"]] and len(result["revoked"]) == 1
    assert aws.sources(group) == {("tcp", 22, 22, "0.0.0.0/0")}
    reports = {r["metadata"]["eventType"]: r for r in aws.reports()}
    finding = reports["SecurityGroupIngressFinding"]
    assert "the rule is tagged AutoRemediate=false" in finding["content"]["title"]
    assert "tcp 3389" in reports["SecurityGroupIngressRevoked"]["content"]["description"]


def test_egress_report_reports_and_changes_nothing(aws: Sandbox, lambda_context: Any,
                                                   env: pytest.MonkeyPatch) -> None:
    env.setenv("EGRESS", "report")
    group = aws.group("app", [world(22)])
    before = aws.egress(group)
    result = invoke(load_event(SWEEP), lambda_context)
    assert aws.egress(group) == before and len(result["revoked"]) == 1
    (digest,) = [r for r in aws.reports() if r["metadata"]["eventType"] == "SecurityGroupIngressFinding"]
    findings = json.loads(digest["metadata"]["additionalContext"]["findings"])
    # every group's default allow-all egress rule is world-open: the VPCs' default groups are reported too
    assert (group, "egress", "egress: report") in [(f["groupId"], f["direction"], f["reason"]) for f in findings]
    assert {f["direction"] for f in findings} == {"egress"}
    assert "egress all traffic to 0.0.0.0/0" in digest["content"]["description"]


def test_egress_enforce_revokes_world_egress_on_ports_not_allowed(aws: Sandbox, lambda_context: Any,
                                                                  env: pytest.MonkeyPatch) -> None:
    env.setenv("EGRESS", "enforce")
    group = aws.group("worker")
    (default_egress,) = aws.egress(group)
    aws.ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[world(443), world(25)])
    result = invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)
    assert default_egress["SecurityGroupRuleId"] in result["revoked"] and len(result["revoked"]) == 2
    assert {(r["IpProtocol"], r["FromPort"]) for r in aws.egress(group)} == {("tcp", 443)}
    (report,) = [r for r in aws.reports() if r["metadata"]["eventType"] == "SecurityGroupIngressRevoked"]
    assert report["content"]["title"] == f"Closed 2 world-open egress rules on {group} (worker)"


@pytest.mark.parametrize(("max_prefix", "revoked"), [("0", 1), ("1", 3)])
def test_max_prefix_v4_widens_what_counts_as_the_world(aws: Sandbox, lambda_context: Any, env: pytest.MonkeyPatch,
                                                       max_prefix: str, revoked: int) -> None:
    env.setenv("MAX_PREFIX_V4", max_prefix)
    halves = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
              "IpRanges": [{"CidrIp": "0.0.0.0/1"}, {"CidrIp": "128.0.0.0/1"}, {"CidrIp": "10.0.0.0/8"}]}
    group = aws.group("halves", [halves, world(3306)])
    result = invoke(cloudtrail_event("authorize_ingress_world.json", group), lambda_context)
    assert len(result["revoked"]) == revoked
    assert ("tcp", 22, 22, "10.0.0.0/8") in aws.sources(group)
