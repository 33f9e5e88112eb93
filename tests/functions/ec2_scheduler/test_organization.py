"""ec2_scheduler across an Organization on moto: the real handler, its work queue and run table.

The world (tests/functions/shared/org_world.py): OU prod holds alpha (member role) and delta (suspended); OU
dev holds beta (member role) and gamma (no member role: its member stack is not deployed); two regions. The
scheduled invocation enumerates the targets and sends one work item per (account, region); the kit's
LambdaRuntime stands in for the event source mapping (partial batch responses, redelivery, dead letters).
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
from tests.functions.shared.org_world import HUB, OrgWorld, refuse_missing_roles
from tests.functions.shared.test_fanout import create_run_table, drain
from tests.lifetime.kit import EC2_THROTTLING, Fault, FaultInjector, LambdaRuntime, scheduled_event

ROLE = "opsauto-member-ec2-scheduler"
REGIONS = ("us-east-1", "eu-west-1")
AMI = "ami-12c6146b"
SCHEDULES = {"office": {"timezone": "Europe/Berlin", "periods": [{"days": "mon-fri", "start": "08:00",
                                                                  "stop": "18:00"}]}}
MON_1805 = dt.datetime(2026, 11, 30, 17, 5, tzinfo=dt.UTC)  # Berlin is UTC+1 in winter
TUE_0805 = dt.datetime(2026, 12, 1, 7, 5, tzinfo=dt.UTC)
MAX_RECEIVES = 3


@dataclass
class World:
    org: OrgWorld
    accounts: dict[str, str]
    prod: str
    dev: str
    faults: FaultInjector
    tap: OpsTopicTap
    queue_url: str
    instances: dict[str, list[str]]  # account name -> its tagged instances (in eu-west-1)
    monkeypatch: pytest.MonkeyPatch

    def launch(self, name: str, region: str = "eu-west-1", *, state: str = "running",
               schedule: str | None = "office") -> list[str]:
        ec2 = self.org.client("ec2", self.accounts[name], region)
        tags = [{"Key": "Schedule", "Value": schedule}] if schedule else [{"Key": "Name", "Value": "untagged"}]
        ids = [i["InstanceId"] for i in ec2.run_instances(
            ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["Instances"]]
        if state == "stopped":
            ec2.stop_instances(InstanceIds=ids)
        return ids

    def states(self, name: str, region: str = "eu-west-1") -> dict[str, str]:
        ec2 = self.org.client("ec2", self.accounts[name], region)
        return {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances()["Reservations"]
                for i in r["Instances"]}

    def runtime(self) -> LambdaRuntime:
        from ec2_scheduler import handler

        return LambdaRuntime(handler.handler, max_receive_count=MAX_RECEIVES)

    def run(self, when: dt.datetime, **env: str) -> tuple[dict[str, Any], LambdaRuntime, list[str]]:
        """One scheduled invocation, then every work item it sent through the event source mapping."""
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)
        runtime = self.runtime()
        with self.faults.active():
            dispatched = runtime.invoke(scheduled_event(when))
            bodies = drain(self.queue_url)
            runtime.deliver_sqs(bodies)
        return dispatched, runtime, bodies

    def reports(self) -> list[dict[str, Any]]:
        return self.tap.messages()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws(), FaultInjector() as faults:
        org = OrgWorld()
        prod, dev, accounts = org.standard(ROLE)
        tap = OpsTopicTap("us-east-1")
        queue_url = boto3.client("sqs").create_queue(QueueName="opsauto-ec2-scheduler-work")["QueueUrl"]
        env = {
            "SCHEDULES": json.dumps(SCHEDULES), "TAG_KEY": "Schedule", "MODE": "enforce", "MAX_CHANGES": "100",
            "REGIONS": ",".join(REGIONS), "INCLUDE_RDS": "true", "INCLUDE_ASG": "true", "SCHEDULES_PARAMETER": "none",
            "NOTIFY_TOPIC_ARN": tap.topic_arn,
            "TARGET_ACCOUNTS": "organization", "TARGET_OUS": f"{prod},{dev}", "MEMBER_ROLE_NAME": ROLE,
            "WORK_QUEUE_URL": queue_url, "RUN_TABLE_NAME": create_run_table(), "WORK_MAX_RECEIVES": str(MAX_RECEIVES),
            "RUN_DEADLINE_SECONDS": "900",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        w = World(org, accounts, prod, dev, faults, tap, queue_url, {}, monkeypatch)
        w.instances["alpha"] = w.launch("alpha") + w.launch("alpha")
        w.instances["beta"] = w.launch("beta", state="stopped")
        w.instances["delta"] = w.launch("delta")
        org.suspend(accounts["delta"])
        hub = boto3.client("ec2", region_name="eu-west-1")  # the hub is not a target: its instance stays
        w.instances["hub"] = [hub.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Schedule", "Value": "office"}]}])["Instances"][0][
                "InstanceId"]]
        refuse_missing_roles(faults)
        yield w


def test_one_scheduled_run_acts_in_every_target_and_reports_once(world: World) -> None:
    dispatched, runtime, bodies = world.run(MON_1805)
    assert dispatched["targets"] == 6 and dispatched["skipped"] == {world.accounts["delta"]: "SUSPENDED"}
    assert sorted(WorkItem.from_json(b, "ec2_scheduler").target.key for b in bodies) == sorted(
        f"{world.accounts[n]}:{r}" for n in ("alpha", "beta", "gamma") for r in REGIONS)
    assert runtime.dead_letters == []  # the missing role is permanent: recorded, not retried
    assert set(world.states("alpha").values()) == {"stopped"}  # 18:05 Berlin: stopped with the member role
    assert world.states("delta") == {world.instances["delta"][0]: "running"}  # suspended: left out
    hub = boto3.client("ec2", region_name="eu-west-1")
    assert hub.describe_instances(InstanceIds=world.instances["hub"])["Reservations"][0]["Instances"][0][
        "State"]["Name"] == "running"
    alpha_tags = {t["Key"] for r in world.org.client("ec2", world.accounts["alpha"], "eu-west-1").describe_instances(
        )["Reservations"] for i in r["Instances"] for t in i["Tags"]}
    assert "ScheduleState" in alpha_tags  # recorded in the member account

    [report] = world.reports()
    title, text = report["content"]["title"], report["content"]["description"]
    assert title == ("ec2_scheduler: 2 instances and databases started or stopped across 3 accounts, 6 targets, "
                     "2 failed")
    alpha, gamma, delta = (world.accounts[n] for n in ("alpha", "gamma", "delta"))
    assert f"- {alpha} (alpha) eu-west-1: stopped " in text
    assert all(f"`{i}`" in text for i in world.instances["alpha"])
    for region in REGIONS:
        assert f"- {gamma} (gamma) {region}: account {gamma}: cannot assume arn:aws:iam::{gamma}:role/{ROLE}" in text
    assert f"{delta} (delta) SUSPENDED" in text
    assert report["metadata"]["additionalContext"]["severity"] == "warning"
    assert sorted(json.loads(report["metadata"]["additionalContext"]["failed"])) == sorted(
        f"{gamma}:{r}" for r in REGIONS)


def test_an_account_added_to_an_ou_between_runs_is_scheduled_by_the_next_run(world: World) -> None:
    world.run(MON_1805)
    world.reports()
    epsilon = world.org.account("epsilon", world.dev, member_roles=(ROLE,))
    world.accounts["epsilon"] = epsilon
    [late] = world.launch("epsilon", state="stopped")
    dispatched, runtime, _ = world.run(TUE_0805)
    assert dispatched["targets"] == 8 and runtime.dead_letters == []
    assert world.states("epsilon") == {late: "running"}
    assert set(world.states("alpha").values()) == {"running"} and set(world.states("beta").values()) == {"running"}
    [report] = world.reports()
    assert f"- {epsilon} (epsilon) eu-west-1: started `{late}`" in report["content"]["description"]
    assert report["content"]["title"].endswith("4 instances and databases started or stopped across 4 accounts, "
                                               "8 targets, 2 failed")


def test_report_mode_changes_nothing_in_any_account(world: World) -> None:
    world.run(MON_1805, MODE="report")
    assert set(world.states("alpha").values()) == {"running"}
    [report] = world.reports()
    assert report["content"]["title"].startswith("[report mode] ec2_scheduler: 2 instances and databases to start "
                                                 "or stop")
    assert f"{world.accounts['alpha']} (alpha) eu-west-1: would stop" in report["content"]["description"]


def test_a_throttled_target_is_retried_and_a_region_not_enabled_fails_only_its_targets(world: World) -> None:
    world.faults.add(Fault("ec2.DescribeInstances", regions=["eu-west-1"], times=1, **EC2_THROTTLING))
    world.faults.add(Fault("ec2.DescribeInstances", "OptInRequired", regions=["us-east-1"],
                           message="You are not subscribed to this service."))
    _, runtime, _ = world.run(MON_1805)
    assert runtime.dead_letters == []
    assert set(world.states("alpha").values()) == {"stopped"}  # its throttled describe went through on redelivery
    [report] = world.reports()
    text = report["content"]["description"]
    assert report["content"]["title"].endswith("3 accounts, 6 targets, 4 failed")  # gamma's two, us-east-1's two
    for name in ("alpha", "beta"):
        assert f"- {world.accounts[name]} ({name}) us-east-1: could not describe: OptInRequired" in text


def test_a_target_throttled_on_every_delivery_is_dead_lettered_and_named(world: World) -> None:
    world.faults.add(Fault("ec2.DescribeInstances", regions=["eu-west-1"],
                           when=lambda params: True, **EC2_THROTTLING))
    _, runtime, _ = world.run(MON_1805)
    dead = sorted(WorkItem.from_json(r["body"], "ec2_scheduler").target.key for r in runtime.dead_letters)
    assert dead == sorted(f"{world.accounts[n]}:eu-west-1" for n in ("alpha", "beta"))
    assert set(world.states("alpha").values()) == {"running"}
    [report] = world.reports()
    assert f"{world.accounts['alpha']} (alpha) eu-west-1: gave up after {MAX_RECEIVES} attempts" in \
        report["content"]["description"]
    assert HUB not in report["metadata"]["relatedResources"]
