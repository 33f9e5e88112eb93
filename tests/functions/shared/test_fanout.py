"""The fan-out on moto: a scheduler-like automation run over an Organization through the work queue.

The world (tests/functions/shared/org_world.py): alpha (OU prod) and beta (OU dev) carry the member role,
gamma (OU dev) does not, delta (OU prod) is suspended; two regions; alpha has two tagged instances in
eu-west-1. The work queue and the run table are real moto resources; the event source mapping is the kit's
LambdaRuntime (partial batch responses, redelivery up to max_receive_count, then the dead-letter list).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from demo.harness import OpsTopicTap
from shared.fanout import FanoutConfig, Result, RunSummary, TargetWork, WorkItem, summary_report
from shared.fanout_run import Fanout, is_work_batch
from shared.reports import ActionReport
from shared.targets import Target, TargetSpec
from tests.conftest import FakeContext
from tests.functions.shared.org_world import OrgWorld, refuse_missing_roles
from tests.lifetime.kit import EC2_THROTTLING, Fault, FaultInjector, LambdaRuntime, scheduled_event

AUTOMATION = "ec2_scheduler"
ROLE = "opsauto-member-ec2-scheduler"
REGIONS = ("us-east-1", "eu-west-1")
T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
MAX_RECEIVES = 3
DEADLINE = 900


def create_run_table(name: str = "opsauto-runs") -> str:
    boto3.client("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "run", "KeyType": "HASH"}, {"AttributeName": "item", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "run", "AttributeType": "S"},
                              {"AttributeName": "item", "AttributeType": "S"}])
    return name


def drain(queue_url: str) -> list[str]:
    """Every message on the queue (received and deleted): what the event source mapping would deliver."""
    sqs = boto3.client("sqs")
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@dataclass
class Run:
    org: OrgWorld
    accounts: dict[str, str]
    prod: str
    dev: str
    faults: FaultInjector
    tap: OpsTopicTap
    queue_url: str
    table: str
    worked: list[Target] = field(default_factory=list)

    def spec(self) -> TargetSpec:
        return TargetSpec.from_env({"TARGET_ACCOUNTS": "organization", "TARGET_OUS": f"{self.prod},{self.dev}",
                                    "MEMBER_ROLE_NAME": ROLE, "REGIONS": ",".join(REGIONS)})

    def fanout(self) -> Fanout:
        config = FanoutConfig(self.queue_url, self.table, MAX_RECEIVES, DEADLINE)
        return Fanout.build(AUTOMATION, self.spec(), config, FakeContext(), self.tap.topic_arn)

    def run_one(self, work: TargetWork) -> Result:
        """Scheduler-like: describe the tagged instances of one target; each would be stopped."""
        self.worked.append(work.target)
        ec2 = work.client("ec2")
        ids = [instance["InstanceId"]
               for page in ec2.get_paginator("describe_instances").paginate(
                   Filters=[{"Name": "tag-key", "Values": ["Schedule"]}])
               for reservation in page["Reservations"] for instance in reservation["Instances"]]
        return Result(changes=len(ids), detail=f"{len(ids)} would stop" if ids else "", data={"ids": ids})

    def summarize(self, summary: RunSummary) -> ActionReport | None:
        return summary_report(summary, mode="report", event_type="ec2_scheduler.run", what="instances to stop")

    def handler(self, fan: Fanout) -> Any:
        def handle(event: dict[str, Any], context: Any) -> Any:
            if is_work_batch(event):
                return fan.work(event, context, self.run_one, self.summarize)
            return fan.dispatch(event, self.summarize)
        return handle

    def scheduled(self, fan: Fanout, when: dt.datetime, event_id: str = "run-1") -> dict[str, Any]:
        event = scheduled_event(when)
        event["id"] = event_id
        with self.faults.active():
            return LambdaRuntime(self.handler(fan)).invoke(event)  # type: ignore[no-any-return]

    def deliver(self, fan: Fanout, bodies: list[str]) -> LambdaRuntime:
        runtime = LambdaRuntime(self.handler(fan), max_receive_count=MAX_RECEIVES)
        with self.faults.active():
            runtime.deliver_sqs(bodies)
        return runtime

    def summaries(self) -> list[dict[str, Any]]:
        return self.tap.messages()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # much faster; a made-up AMI id does
    with mock_aws(), FaultInjector() as faults:
        org = OrgWorld()
        prod, dev, accounts = org.standard(ROLE)
        org.suspend(accounts["delta"])
        ec2 = org.client("ec2", accounts["alpha"], "eu-west-1")
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=2, MaxCount=2, TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Schedule", "Value": "office-hours"}]}])
        refuse_missing_roles(faults)
        queue_url = boto3.client("sqs").create_queue(QueueName="opsauto-ec2-scheduler-work")["QueueUrl"]
        yield Run(org, accounts, prod, dev, faults, OpsTopicTap("us-east-1"), queue_url, create_run_table())


def test_one_run_one_summary_naming_every_target_and_failure(world: Run) -> None:
    fan = world.fanout()
    dispatched = world.scheduled(fan, T0)
    assert dispatched["targets"] == 6 and dispatched["accounts"] == 3
    assert dispatched["skipped"] == {world.accounts["delta"]: "SUSPENDED"}
    bodies = drain(world.queue_url)
    items = [WorkItem.from_json(body, AUTOMATION) for body in bodies]
    assert sorted(item.target.key for item in items) == sorted(
        f"{world.accounts[name]}:{region}" for name in ("alpha", "beta", "gamma") for region in REGIONS)
    assert {item.time for item in items} == {T0}

    runtime = world.deliver(fan, bodies)
    assert runtime.dead_letters == []  # a missing role is permanent: reported, not retried
    [message] = world.summaries()
    text = message["content"]["description"]
    assert message["content"]["title"] == ("[report mode] ec2_scheduler: 2 instances to stop across 3 accounts, "
                                           "6 targets, 2 failed")
    gamma = world.accounts["gamma"]
    for region in REGIONS:
        assert f"- {gamma} (gamma) {region}: account {gamma}: cannot assume arn:aws:iam::{gamma}:role/{ROLE}" in text
    assert f"- {world.accounts['alpha']} (alpha): eu-west-1 (2 would stop), us-east-1 (no change)" in text
    assert f"- {world.accounts['beta']} (beta): eu-west-1 (no change), us-east-1 (no change)" in text
    assert f"{world.accounts['delta']} (delta) SUSPENDED" in text
    context = message["metadata"]["additionalContext"]
    assert sorted(json.loads(context["failed"])) == sorted(f"{gamma}:{r}" for r in REGIONS)
    assert message["metadata"]["additionalContext"]["severity"] == "warning"
    assert len(world.worked) == 6


def test_a_transient_failure_is_retried_and_the_summary_waits_for_it(world: Run) -> None:
    world.faults.add(Fault("ec2.DescribeInstances", regions=["us-east-1"], times=1, **EC2_THROTTLING))
    fan = world.fanout()
    world.scheduled(fan, T0)
    runtime = world.deliver(fan, drain(world.queue_url))
    assert runtime.dead_letters == []
    [message] = world.summaries()
    assert message["content"]["title"].endswith("6 targets, 2 failed")  # gamma's two, no third
    assert len(world.worked) == 7  # one target ran twice: once throttled, once through


def test_a_target_failing_on_every_delivery_is_named_and_dead_lettered(world: Run) -> None:
    world.faults.add(Fault("ec2.DescribeInstances", regions=["us-east-1"], **EC2_THROTTLING))
    fan = world.fanout()
    world.scheduled(fan, T0)
    runtime = world.deliver(fan, drain(world.queue_url))
    dead = sorted(WorkItem.from_json(record["body"], AUTOMATION).target.key for record in runtime.dead_letters)
    assert dead == sorted(f"{world.accounts[n]}:us-east-1" for n in ("alpha", "beta"))
    [message] = world.summaries()
    assert message["content"]["title"].endswith("6 targets, 4 failed")
    assert f"{world.accounts['alpha']} (alpha) us-east-1: gave up after {MAX_RECEIVES} attempts" in \
        message["content"]["description"]
    assert "eu-west-1 (2 would stop)" in message["content"]["description"]  # the others went through


def test_redelivered_items_and_a_retried_schedule_change_nothing(world: Run) -> None:
    fan = world.fanout()
    world.scheduled(fan, T0)
    assert world.scheduled(fan, T0) == {"run": "run-1", "duplicate": True}  # Lambda retried the schedule
    bodies = drain(world.queue_url)
    assert len(bodies) == 6
    world.deliver(fan, bodies)
    world.deliver(fan, bodies)  # SQS delivers at least once: every item again
    assert len(world.summaries()) == 1
    assert len(world.worked) == 6  # recorded targets are not worked on again


def test_an_account_added_to_an_ou_between_runs_is_worked_on(world: Run) -> None:
    fan = world.fanout()
    world.scheduled(fan, T0, "run-1")
    world.deliver(fan, drain(world.queue_url))
    epsilon = world.org.account("epsilon", world.dev, member_roles=(ROLE,))
    world.scheduled(fan, T0 + dt.timedelta(minutes=5), "run-2")
    bodies = drain(world.queue_url)
    assert {WorkItem.from_json(b, AUTOMATION).target.account for b in bodies} >= {epsilon}
    world.deliver(fan, bodies)
    first, second = world.summaries()
    assert f"{epsilon} (epsilon)" not in first["content"]["description"]
    assert f"- {epsilon} (epsilon): eu-west-1 (no change), us-east-1 (no change)" in second["content"]["description"]
    assert second["content"]["title"].endswith("8 targets, 2 failed")


def test_a_run_that_never_finishes_is_closed_by_a_later_schedule(world: Run) -> None:
    fan = world.fanout()
    world.scheduled(fan, T0, "run-1")
    bodies = drain(world.queue_url)
    world.deliver(fan, bodies[:4])  # two items are lost with a crashing function
    assert world.summaries() == []
    world.scheduled(fan, T0 + dt.timedelta(minutes=5), "run-2")  # before the deadline: left open
    assert world.summaries() == []
    drain(world.queue_url)
    world.scheduled(fan, T0 + dt.timedelta(seconds=DEADLINE + 60), "run-3")
    [message] = world.summaries()
    assert message["metadata"]["additionalContext"]["run"] == "run-1"
    assert message["content"]["description"].count("no outcome by the run's deadline") == 2


def test_a_message_that_is_not_a_work_item_is_rejected_not_retried(world: Run) -> None:
    fan = world.fanout()
    runtime = world.deliver(fan, ['{"type": "something-else"}', "not json"])
    assert runtime.dead_letters == [] and len(runtime.invocations) == 1
    assert world.worked == []
