"""sg_remediation across an Organization on moto: the fanned-out sweep and CloudTrail events forwarded from member
accounts, through the real handler.

The world (tests/functions/shared/org_world.py): OU prod holds alpha (member role) and delta (suspended); OU dev
holds beta (member role) and gamma (no member role); outsider sits at the root, outside the target OUs; two
regions. Each member account has a security group with SSH open to the world in eu-west-1; beta's is exempt.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from demo.harness import OpsTopicTap
from shared.fanout import WorkItem
from stacks.settings.sg_remediation import SgRemediationSettings
from tests.conftest import emf_metrics
from tests.functions.sg_remediation.conftest import world as world_open
from tests.functions.shared.org_world import OrgWorld, refuse_missing_roles
from tests.functions.shared.test_fanout import create_run_table, drain
from tests.lifetime.kit import FaultInjector, LambdaRuntime, cloudtrail_event, scheduled_event

ROLE = "opsauto-member-sg-remediation"
REGIONS = ("us-east-1", "eu-west-1")
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
MAX_RECEIVES = 3


@dataclass
class World:
    org: OrgWorld
    accounts: dict[str, str]
    dev: str
    faults: FaultInjector
    tap: OpsTopicTap
    queue_url: str
    groups: dict[str, str]  # account name -> its world-open group in eu-west-1

    def ec2(self, name: str, region: str = "eu-west-1") -> Any:
        return self.org.client("ec2", self.accounts[name], region)

    def open_group(self, name: str, *, exempt: bool = False) -> str:
        ec2 = self.ec2(name)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        tags = [{"ResourceType": "security-group", "Tags": [{"Key": "AutoRemediate", "Value": "false"}]}]
        group = ec2.create_security_group(GroupName=f"{name}-web", Description="web", VpcId=vpc,
                                          **({"TagSpecifications": tags} if exempt else {}))["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[world_open(22), world_open(443)])
        self.groups[name] = group
        return str(group)

    def open_ports(self, name: str) -> set[int]:
        rules = self.ec2(name).describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": [self.groups[name]]}])["SecurityGroupRules"]
        return {r["FromPort"] for r in rules if not r["IsEgress"] and r.get("CidrIpv4") == "0.0.0.0/0"}

    def runtime(self) -> LambdaRuntime:
        from sg_remediation import handler

        return LambdaRuntime(handler.handler, max_receive_count=MAX_RECEIVES)

    def sweep(self, when: dt.datetime) -> tuple[dict[str, Any], LambdaRuntime, list[str]]:
        runtime = self.runtime()
        with self.faults.active():
            dispatched = runtime.invoke(scheduled_event(when))
            bodies = drain(self.queue_url)
            runtime.deliver_sqs(bodies)
        return dispatched, runtime, bodies

    def forwarded(self, name: str, region: str = "eu-west-1") -> dict[str, Any]:
        """The CloudTrail event of opening SSH on ``name``'s group, as the member's rule forwards it."""
        event = cloudtrail_event(T0, "AuthorizeSecurityGroupIngress", {
            "groupId": self.groups.get(name, "sg-0123456789abcdef0"),
            "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                                         "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}},
            region=region, account=self.accounts[name])
        with self.faults.active():
            return self.runtime().invoke(event)  # type: ignore[no-any-return]

    def reports(self) -> list[dict[str, Any]]:
        return self.tap.messages()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    from sg_remediation import runner

    runner._REACH.clear()  # the warm function's listing and sessions belong to another moto world
    with mock_aws(), FaultInjector() as faults:
        org = OrgWorld()
        prod, dev, accounts = org.standard(ROLE)
        accounts["outsider"] = org.account("outsider", member_roles=(ROLE,))  # in no target OU
        tap = OpsTopicTap("us-east-1")
        queue_url = boto3.client("sqs").create_queue(QueueName="opsauto-sg-remediation-work")["QueueUrl"]
        env = {
            **SgRemediationSettings(regions=list(REGIONS)).function_environment(),
            "POWERTOOLS_SERVICE_NAME": "sg_remediation", "NOTIFY_TOPIC_ARN": tap.topic_arn,
            "TARGET_ACCOUNTS": "organization", "TARGET_OUS": f"{prod},{dev}", "MEMBER_ROLE_NAME": ROLE,
            "WORK_QUEUE_URL": queue_url, "RUN_TABLE_NAME": create_run_table(), "WORK_MAX_RECEIVES": str(MAX_RECEIVES),
            "RUN_DEADLINE_SECONDS": "3600",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        w = World(org, accounts, dev, faults, tap, queue_url, {})
        w.open_group("alpha")
        w.open_group("beta", exempt=True)
        w.open_group("delta")
        w.open_group("outsider")
        org.suspend(accounts["delta"])
        refuse_missing_roles(faults)
        yield w
    runner._REACH.clear()


def test_the_sweep_covers_every_target_and_reports_once(world: World) -> None:
    dispatched, runtime, bodies = world.sweep(T0)
    assert dispatched["targets"] == 6 and dispatched["skipped"] == {world.accounts["delta"]: "SUSPENDED"}
    assert sorted(WorkItem.from_json(b, "sg_remediation").target.key for b in bodies) == sorted(
        f"{world.accounts[n]}:{r}" for n in ("alpha", "beta", "gamma") for r in REGIONS)
    assert runtime.dead_letters == []
    assert world.open_ports("alpha") == {443}  # SSH revoked with the member role, HTTPS allowed
    assert world.open_ports("beta") == {22, 443}  # exempt: reported, left open
    assert world.open_ports("delta") == {22, 443} and world.open_ports("outsider") == {22, 443}

    [report] = world.reports()
    title, text = report["content"]["title"], report["content"]["description"]
    assert title == "sg_remediation: 1 world-open rules revoked across 3 accounts, 6 targets, 2 failed"
    alpha, beta, gamma, delta = (world.accounts[n] for n in ("alpha", "beta", "gamma", "delta"))
    assert f"- {alpha} (alpha) eu-west-1: Closed 1 world-open ingress rule on {world.groups['alpha']}" in text
    assert f"- {beta} (beta) eu-west-1: Sweep: 1 world-open rule in 1 group not revoked" in text
    for region in REGIONS:
        assert f"- {gamma} (gamma) {region}: account {gamma}: cannot assume arn:aws:iam::{gamma}:role/{ROLE}" in text
    assert f"{delta} (delta) SUSPENDED" in text
    assert report["metadata"]["additionalContext"]["severity"] == "warning"


def test_an_account_added_to_an_ou_is_swept_by_the_next_sweep(world: World) -> None:
    world.sweep(T0)
    world.reports()
    world.accounts["epsilon"] = world.org.account("epsilon", world.dev, member_roles=(ROLE,))
    world.open_group("epsilon")
    dispatched, _, _ = world.sweep(T0 + dt.timedelta(hours=1))
    assert dispatched["targets"] == 8
    assert world.open_ports("epsilon") == {443}
    [report] = world.reports()
    assert f"{world.accounts['epsilon']} (epsilon) eu-west-1: Closed 1 world-open ingress rule" in \
        report["content"]["description"]


def test_a_change_forwarded_from_a_member_account_is_remediated_there(world: World) -> None:
    result = world.forwarded("alpha")
    assert len(result["revoked"]) == 1 and world.open_ports("alpha") == {443}
    [report] = world.reports()
    assert report["content"]["title"].startswith(f"Closed 1 world-open ingress rule on {world.groups['alpha']}")
    assert f":{world.accounts['alpha']}:security-group/{world.groups['alpha']}" in json.dumps(
        report["metadata"]["relatedResources"])


@pytest.mark.parametrize(("name", "why"), [
    ("outsider", "is neither in TARGET_ACCOUNTS nor ACTIVE under TARGET_OUS"),
    ("delta", "is SUSPENDED in the Organization"),
    ("gamma", "cannot assume"),
])
def test_a_change_from_an_account_that_is_not_a_target_is_refused_and_reported(
        world: World, name: str, why: str, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    before = world.open_ports(name) if name in world.groups else set()
    result = world.forwarded(name)
    assert why in result["ignored"] and result["revoked"] == []
    if name in world.groups:
        assert world.open_ports(name) == before  # nothing changed there
    [report] = world.reports()
    assert report["content"]["title"].startswith("Not remediated: AuthorizeSecurityGroupIngress")
    assert world.accounts[name] in report["content"]["title"] and why in report["content"]["description"]
    assert report["metadata"]["additionalContext"]["severity"] == ("critical" if name == "gamma" else "warning")
    assert emf_metrics(capsys.readouterr().out)["EventsRefused"] == 1
    assert "security-group change not remediated" in caplog.messages


def test_a_change_in_a_region_that_is_not_a_target_is_refused(world: World) -> None:
    result = world.forwarded("alpha", region="ap-south-1")
    assert "region ap-south-1 is not one of REGIONS" in result["ignored"]
    assert world.open_ports("alpha") == {22, 443}
    [report] = world.reports()
    assert report["content"]["title"].startswith("Not remediated")
