"""The adapter against real-model responses: pagination and error codes (botocore Stubber), moto for the rest.

moto 5.2.5 does not paginate DescribeSecurityGroups / DescribeSecurityGroupRules (it returns everything in one
page) and answers an unknown rule id in RevokeSecurityGroupIngress with InvalidPermission.NotFound; EC2 itself
answers InvalidSecurityGroupRuleId.NotFound. Those paths are tested with botocore's Stubber, which checks every
request and response against EC2's service model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from sg_remediation import aws as adapter
from shared.clients import client
from tests.functions.sg_remediation.conftest import REGION, Sandbox, world


@pytest.fixture
def stubbed() -> Iterator[Stubber]:
    ec2 = client("ec2", REGION)
    with Stubber(ec2) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def api_group(group_id: str, name: str) -> dict[str, Any]:
    return {"GroupId": group_id, "GroupName": name, "Description": name, "VpcId": "vpc-0a1b2c3d4e5f60718",
            "OwnerId": "123456789012", "Tags": [], "IpPermissions": [], "IpPermissionsEgress": []}


def api_rule(rule_id: str, group_id: str, port: int, cidr: str = "0.0.0.0/0", egress: bool = False) -> dict[str, Any]:
    return {"SecurityGroupRuleId": rule_id, "GroupId": group_id, "GroupOwnerId": "123456789012", "IsEgress": egress,
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port, "CidrIpv4": cidr}


def test_all_groups_follows_every_page(stubbed: Stubber) -> None:
    stubbed.add_response("describe_security_groups",
                         {"SecurityGroups": [api_group("sg-00000000000000001", "a")], "NextToken": "t1"}, {})
    stubbed.add_response("describe_security_groups",
                         {"SecurityGroups": [api_group("sg-00000000000000002", "b")]}, {"NextToken": "t1"})
    stubbed.add_response("describe_security_group_rules",
                         {"SecurityGroupRules": [api_rule("sgr-1", "sg-00000000000000001", 22)], "NextToken": "r1"}, {})
    stubbed.add_response("describe_security_group_rules",
                         {"SecurityGroupRules": [api_rule("sgr-2", "sg-00000000000000002", 443),
                                                 api_rule("sgr-3", "sg-00000000000000002", 22, egress=True)]},
                         {"NextToken": "r1"})
    found = adapter.all_groups(REGION)
    assert [(g.group_id, [r.rule_id for r in rules]) for g, rules in found] == [
        ("sg-00000000000000001", ["sgr-1"]),
        ("sg-00000000000000002", ["sgr-2", "sgr-3"]),
    ]


def test_group_rules_paginates_with_the_group_filter(stubbed: Stubber) -> None:
    filters = [{"Name": "group-id", "Values": ["sg-00000000000000001"]}]
    stubbed.add_response("describe_security_group_rules",
                         {"SecurityGroupRules": [api_rule("sgr-1", "sg-00000000000000001", 22)], "NextToken": "n"},
                         {"Filters": filters})
    stubbed.add_response("describe_security_group_rules",
                         {"SecurityGroupRules": [api_rule("sgr-2", "sg-00000000000000001", 23)]},
                         {"Filters": filters, "NextToken": "n"})
    assert [r.rule_id for r in adapter.group_rules(REGION, "sg-00000000000000001")] == ["sgr-1", "sgr-2"]


def test_revoke_splits_a_batch_when_one_rule_is_already_gone(stubbed: Stubber) -> None:
    group = "sg-00000000000000001"
    stubbed.add_client_error("revoke_security_group_ingress", "InvalidSecurityGroupRuleId.NotFound",
                             "The security group rule ID 'sgr-2' does not exist", 400,
                             expected_params={"GroupId": group, "SecurityGroupRuleIds": ["sgr-1", "sgr-2", "sgr-3"]})
    stubbed.add_response("revoke_security_group_ingress", {"Return": True},
                         {"GroupId": group, "SecurityGroupRuleIds": ["sgr-1"]})
    stubbed.add_client_error("revoke_security_group_ingress", "InvalidSecurityGroupRuleId.NotFound", "gone", 400,
                             expected_params={"GroupId": group, "SecurityGroupRuleIds": ["sgr-2"]})
    stubbed.add_response("revoke_security_group_ingress", {"Return": True},
                         {"GroupId": group, "SecurityGroupRuleIds": ["sgr-3"]})
    outcome = adapter.revoke_ingress(REGION, group, ["sgr-1", "sgr-2", "sgr-3"])
    assert outcome.revoked == ["sgr-1", "sgr-3"]
    assert outcome.already_gone == ["sgr-2"]
    assert not outcome.group_gone


def test_revoke_on_a_deleted_group(stubbed: Stubber) -> None:
    stubbed.add_client_error("revoke_security_group_ingress", "InvalidGroup.NotFound",
                             "The security group 'sg-00000000000000001' does not exist", 400)
    outcome = adapter.revoke_ingress(REGION, "sg-00000000000000001", ["sgr-1"])
    assert outcome.group_gone and outcome.revoked == []


def test_revoke_refused_leaves_the_rest_of_the_group_in_the_outcome(stubbed: Stubber) -> None:
    group = "sg-00000000000000001"
    stubbed.add_client_error("revoke_security_group_ingress", "InvalidSecurityGroupRuleId.NotFound", "gone", 400,
                             expected_params={"GroupId": group, "SecurityGroupRuleIds": ["sgr-1", "sgr-2", "sgr-3"]})
    stubbed.add_response("revoke_security_group_ingress", {"Return": True},
                         {"GroupId": group, "SecurityGroupRuleIds": ["sgr-1"]})
    stubbed.add_client_error("revoke_security_group_ingress", "UnauthorizedOperation", "not allowed", 403,
                             expected_params={"GroupId": group, "SecurityGroupRuleIds": ["sgr-2"]})
    outcome = adapter.revoke_ingress(REGION, group, ["sgr-1", "sgr-2", "sgr-3"])
    assert outcome.revoked == ["sgr-1"]
    assert outcome.failed == ["sgr-2", "sgr-3"]
    assert isinstance(outcome.error, ClientError) and outcome.error.response["Error"]["Code"] == "UnauthorizedOperation"


def test_describe_group_raises_transient_errors(stubbed: Stubber) -> None:
    # After the client's own adaptive retries, a throttle reaches the handler and Lambda retries the event.
    stubbed.add_client_error("describe_security_groups", "RequestLimitExceeded", "slow down", 503)
    with pytest.raises(ClientError, match="RequestLimitExceeded"):
        adapter.describe_group(REGION, "sg-00000000000000001")


def test_describe_group_gone(stubbed: Stubber) -> None:
    stubbed.add_client_error("describe_security_groups", "InvalidGroup.NotFound", "no such group", 400)
    with pytest.raises(adapter.GroupGone):
        adapter.describe_group(REGION, "sg-00000000000000001")


def test_moto_revoke_by_rule_id_and_replay(aws: Sandbox) -> None:
    group = aws.group("web", [world(22), world(23), world(443)])
    ids = [aws.rule_id(group, 22, "0.0.0.0/0"), aws.rule_id(group, 23, "0.0.0.0/0")]
    outcome = adapter.revoke_ingress(REGION, group, ids)
    assert outcome.revoked == ids
    again = adapter.revoke_ingress(REGION, group, ids)
    assert again.revoked == [] and again.already_gone == ids
    assert aws.sources(group) == {("tcp", 443, 443, "0.0.0.0/0")}
