"""Fixtures of the sg_remediation tests: a moto account with a VPC, the ops topic, and event builders."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from demo.harness import OpsTopicTap
from tests.conftest import load_event

REGION = "us-east-1"
FIXTURE_GROUP = "sg-0123456789abcdef0"


@dataclass
class Sandbox:
    """A moto account: a VPC, the ops topic (reports land in an SQS queue), helpers to build groups and events."""

    ec2: Any
    vpc_id: str
    topic_arn: str
    tap: OpsTopicTap
    seen: list[dict[str, Any]] = field(default_factory=list)

    def group(self, name: str, permissions: list[dict[str, Any]] | None = None,
              tags: dict[str, str] | None = None, ec2: Any = None, vpc_id: str | None = None) -> str:
        client = ec2 or self.ec2
        kwargs: dict[str, Any] = {"GroupName": name, "Description": f"{name} group", "VpcId": vpc_id or self.vpc_id}
        if tags:
            kwargs["TagSpecifications"] = [{"ResourceType": "security-group",
                                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        group_id = client.create_security_group(**kwargs)["GroupId"]
        if permissions:
            client.authorize_security_group_ingress(GroupId=group_id, IpPermissions=permissions)
        return str(group_id)

    def ingress(self, group_id: str, ec2: Any = None) -> list[dict[str, Any]]:
        client = ec2 or self.ec2
        rules = client.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
        return [rule for rule in rules["SecurityGroupRules"] if not rule["IsEgress"]]

    def egress(self, group_id: str) -> list[dict[str, Any]]:
        rules = self.ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
        return [rule for rule in rules["SecurityGroupRules"] if rule["IsEgress"]]

    def sources(self, group_id: str, ec2: Any = None) -> set[tuple[str, int, int, str]]:
        """Ingress as (protocol, from, to, source) tuples."""
        found = set()
        for rule in self.ingress(group_id, ec2):
            source = (rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("PrefixListId")
                      or rule.get("ReferencedGroupInfo", {}).get("GroupId"))
            found.add((rule["IpProtocol"], rule["FromPort"], rule["ToPort"], source))
        return found

    def rule_id(self, group_id: str, port: int, source: str) -> str:
        for rule in self.ingress(group_id):
            if rule["FromPort"] == port and source in (rule.get("CidrIpv4"), rule.get("CidrIpv6")):
                return str(rule["SecurityGroupRuleId"])
        raise AssertionError(f"no rule for {port} from {source} in {group_id}")

    def reports(self) -> list[dict[str, Any]]:
        """Action reports published since the last call."""
        new = self.tap.messages()
        self.seen += new
        return new


def world(port: int, to_port: int | None = None, protocol: str = "tcp", v6: bool = False) -> dict[str, Any]:
    permission: dict[str, Any] = {"IpProtocol": protocol, "FromPort": port,
                                  "ToPort": port if to_port is None else to_port}
    if v6:
        permission["Ipv6Ranges"] = [{"CidrIpv6": "::/0"}]
    else:
        permission["IpRanges"] = [{"CidrIp": "0.0.0.0/0"}]
    return permission


def cloudtrail_event(name: str, group_id: str, rule_ids: dict[str, str] | None = None) -> dict[str, Any]:
    """A fixture from tests/events/sg_remediation with the fixture's group id (and rule ids) replaced."""
    text = json.dumps(load_event(f"sg_remediation/{name}"))
    text = text.replace(FIXTURE_GROUP, group_id)
    for placeholder, real in (rule_ids or {}).items():
        text = text.replace(placeholder, real)
    return copy.deepcopy(json.loads(text))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The function's environment as the settings model writes it (defaults as shipped); tests override keys."""
    from stacks.settings.sg_remediation import SgRemediationSettings

    for key, value in {**SgRemediationSettings().function_environment(),
                       "POWERTOOLS_SERVICE_NAME": "sg_remediation"}.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


@pytest.fixture
def aws(env: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        tap = OpsTopicTap(REGION)
        env.setenv("NOTIFY_TOPIC_ARN", tap.topic_arn)
        yield Sandbox(ec2=ec2, vpc_id=vpc_id, topic_arn=tap.topic_arn, tap=tap)
