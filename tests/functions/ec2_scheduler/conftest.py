"""Fixtures of the ec2_scheduler tests: a moto account with tagged instances, and a run helper."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from demo.harness import OpsTopicTap
from tests.conftest import load_event

REGION = "us-east-1"
AMI = "ami-12c6146b"

# Europe/Berlin office hours; 2026-11-30 is a Monday (CET, UTC+1).
SCHEDULES: dict[str, Any] = {
    "office": {
        "timezone": "Europe/Berlin",
        "periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}],
        "skip_dates": ["2026-12-24"],
    },
    "office-enforced": {
        "timezone": "Europe/Berlin",
        "periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}],
        "enforced": True,
    },
    "office-keep-new": {
        "timezone": "Europe/Berlin",
        "periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}],
        "stop_new_instances": False,
    },
    "office-hibernate": {
        "timezone": "Europe/Berlin",
        "periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}],
        "hibernate": True,
    },
    "broken": {"timezone": "Mars/Olympus", "periods": [{"days": "mon-fri", "start": "08:00"}]},
}


@dataclass
class Account:
    """A moto account: EC2, RDS, SNS topic with an SQS subscriber to read the reports."""

    ec2: Any
    rds: Any
    tap: OpsTopicTap
    topic_arn: str
    env: dict[str, str]
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # (operation, predicate on the call's parameters, error code): the call fails with that code
    failures: list[tuple[str, Callable[[dict[str, Any]], bool], str]] = field(default_factory=list)
    max_attempts: int | None = None  # set to 1 for clients without retries (no backoff sleeps)
    starts_at: Any = None  # the LaunchTime moto gives the instances started from now on (None: the clock's now)

    def fail(self, operation: str, when: Callable[[dict[str, Any]], bool], code: str) -> None:
        self.failures.append((operation, when, code))

    def ops(self, *names: str) -> list[dict[str, Any]]:
        return [params for op, params in self.calls if op in names]

    def launch(self, schedule: str | None, count: int = 1, state: str = "running", **kwargs: Any) -> list[str]:
        tags = [{"Key": "Name", "Value": f"test-{schedule}"}]
        if schedule is not None:
            tags.append({"Key": "Schedule", "Value": schedule})
        tags += [{"Key": k, "Value": v} for k, v in kwargs.pop("tags", {}).items()]
        response = self.ec2.run_instances(ImageId=AMI, MinCount=count, MaxCount=count, InstanceType="t3.micro",
                                          TagSpecifications=[{"ResourceType": "instance", "Tags": tags}], **kwargs)
        ids = [i["InstanceId"] for i in response["Instances"]]
        if state == "stopped":
            self.ec2.stop_instances(InstanceIds=ids)
        return ids

    def state(self, instance_id: str) -> str:
        reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return str(reservations[0]["Instances"][0]["State"]["Name"])

    def tags(self, instance_id: str) -> dict[str, str]:
        reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return {t["Key"]: t["Value"] for t in reservations[0]["Instances"][0].get("Tags", [])}

    def set_tag(self, instance_id: str, key: str, value: str) -> None:
        self.ec2.create_tags(Resources=[instance_id], Tags=[{"Key": key, "Value": value}])

    def reports(self) -> list[dict[str, Any]]:
        return self.tap.messages()


def launch_time_on_start(monkeypatch: pytest.MonkeyPatch, now: Callable[[], Any]) -> None:
    """EC2's ``LaunchTime`` is the time of the instance's last start (AWS: "The time that the instance was
    last launched"); moto keeps the first one. Make moto's StartInstances set it, as AWS does."""
    from moto.ec2.models.instances import Instance

    original = Instance.start

    def start(self: Any) -> Any:
        previous = original(self)
        if previous.name != "running":
            self.launch_time = now()
        return previous

    monkeypatch.setattr(Instance, "start", start)


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    from moto.core.utils import utcnow

    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # much faster; the tests use a made-up AMI id
    clock: list[Any] = []  # Account.starts_at: the LaunchTime of the next starts (default: now)
    launch_time_on_start(monkeypatch, lambda: clock[0].starts_at or utcnow())
    with mock_aws():
        tap = OpsTopicTap(REGION)
        topic_arn = tap.topic_arn
        env = {
            "SCHEDULES": json.dumps(SCHEDULES),
            "TAG_KEY": "Schedule",
            "MODE": "enforce",
            "NOTIFY_TOPIC_ARN": topic_arn,
            "MAX_CHANGES": "500",
            "REGIONS": REGION,
            "INCLUDE_RDS": "true",
            "INCLUDE_ASG": "true",
            "SCHEDULES_PARAMETER": "none",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        acct = Account(boto3.client("ec2", REGION), boto3.client("rds", REGION), tap, topic_arn, env)
        clock.append(acct)
        yield acct


def _recording_clients(account: Account, original: Callable[..., Any]) -> Callable[..., Any]:
    """Clients that record every call in ``account.calls`` and fail the ones ``account.failures`` names."""

    def _record(model: Any, params: dict[str, Any], **_: Any) -> None:
        account.calls.append((model.name, dict(params)))

    def _inject(model: Any, **_: Any) -> Any:
        if not account.calls:
            return None
        operation, params = account.calls[-1]
        for name, when, code in account.failures:
            if name == operation == model.name and when(params):
                error = {"Code": code, "Message": f"injected {code}"}
                return SimpleNamespace(status_code=400, headers={}), {
                    "Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    own: dict[tuple[str, str | None], Any] = {}

    def recording_client(service: str, region: str | None = None) -> Any:
        if account.max_attempts is not None:
            if (service, region) not in own:
                config = Config(retries={"mode": "standard", "max_attempts": account.max_attempts})
                own[(service, region)] = boto3.client(service, region_name=region, config=config)
            made = own[(service, region)]
        else:
            made = original(service, region)
        if not getattr(made, "_test_hooked", False):
            made.meta.events.register("before-parameter-build", _record)
            made.meta.events.register("before-call", _inject)
            made._test_hooked = True
        return made

    return recording_client


@pytest.fixture
def run(account: Account, lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Any]]:
    """Invoke the handler with the Scheduler event at ``time`` (UTC ISO); extra env overrides allowed.

    Every AWS call the function makes is recorded in ``account.calls`` as (operation, params).
    """
    from ec2_scheduler import aws, sources
    from ec2_scheduler import handler as module
    from shared import clients

    sources.reset()  # nothing read by an earlier test's container
    aws.reset_parameters()

    recording_client = _recording_clients(account, clients.client)
    monkeypatch.setattr("ec2_scheduler.aws.client", recording_client)

    def _run(time: str, **env: str) -> dict[str, Any]:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        event = load_event("ec2_scheduler/scheduler_invoke.json")
        event["time"] = time
        account.calls.clear()
        result: dict[str, Any] = module.handler(event, lambda_context)
        return result

    return _run
