"""Every transition acts; periods add up; first sight; bounced starts; a region that cannot be described.

Full runs of the handler against moto (Europe/Berlin schedules; 2026-11-30 is a Monday, UTC+1).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3

from tests.functions.ec2_scheduler.conftest import AMI, REGION, SCHEDULES, Account
from tests.lifetime.kit import Fault, FaultInjector

Run = Callable[..., dict[str, Any]]

MORE: dict[str, Any] = {
    **SCHEDULES,
    "stop-only": {"timezone": "Europe/Berlin", "periods": [{"days": "*", "stop": "20:00"}]},
    "start-only": {"timezone": "Europe/Berlin", "periods": [{"days": "mon-fri", "start": "07:00"}]},
    "long-and-core": {"timezone": "Europe/Berlin", "periods": [
        {"days": "mon-fri", "start": "07:00", "stop": "19:00"}, {"days": "*", "start": "09:00", "stop": "17:00"}]},
    "keep-new-enforced": {"timezone": "Europe/Berlin", "enforced": True, "stop_new_instances": False,
                          "periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}]},
}
ENV = {"SCHEDULES": json.dumps(MORE)}


def recorded(account: Account, instance_id: str) -> str:
    return account.tags(instance_id).get("ScheduleState", "")


def bounce(instance_id: str, region: str = REGION) -> None:
    """What EC2 does when a start cannot decrypt a volume (no KMS grant): pending, then stopped."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.instances import StateReason

    instance = ec2_backends[DEFAULT_ACCOUNT_ID][region].get_instance(instance_id)
    instance._state.name, instance._state.code = "stopped", 80
    instance._reason = "Client.InternalError: Client error on launch"
    instance.state_reason = StateReason("Client.InternalError: Client error on launch", "Client.InternalError")


def test_stop_only_schedule_stops_again_every_evening(account: Account, run: Run) -> None:
    (instance,) = account.launch("stop-only")
    run("2026-11-30T18:00:00Z", **ENV)  # Monday 19:00 local: first sight, runs until the stop
    run("2026-11-30T19:05:00Z", **ENV)  # Monday 20:05 local
    assert account.state(instance) == "stopped"
    account.ec2.start_instances(InstanceIds=[instance])  # Tuesday morning, by hand
    result = run("2026-12-01T08:00:00Z", **ENV)
    assert result["stopped"] == [] and account.state(instance) == "running"  # left alone during the day
    result = run("2026-12-01T19:05:00Z", **ENV)  # Tuesday 20:05: a new stop transition
    assert result["stopped"] == [instance] and account.state(instance) == "stopped"
    assert recorded(account, instance) == "stopped@2026-12-01T19:05:00Z"


def test_start_only_schedule_starts_again_every_morning(account: Account, run: Run) -> None:
    (instance,) = account.launch("start-only", state="stopped",
                                 tags={"ScheduleState": "running@2026-11-30T06:05:00Z"})  # started Monday
    result = run("2026-11-30T20:00:00Z", **ENV)  # someone stopped it Monday evening: left alone
    assert result["started"] == []
    result = run("2026-12-01T06:05:00Z", **ENV)  # Tuesday 07:05
    assert result["started"] == [instance] and account.state(instance) == "running"


def test_skip_date_stops_an_instance_started_by_hand_the_evening_before(account: Account, run: Run) -> None:
    (instance,) = account.launch("office", tags={"ScheduleState": "stopped@2026-12-23T17:05:00Z"})
    result = run("2026-12-23T23:05:00Z", **ENV)  # 00:05 on the skip date 24 Dec
    assert result["stopped"] == [instance]


def test_new_running_instance_on_a_stop_only_schedule_runs_until_the_next_stop(account: Account, run: Run) -> None:
    (instance,) = account.launch("stop-only")
    result = run("2026-11-30T09:00:00Z", **ENV)  # Monday 10:00 local, first sight
    assert result["stopped"] == [] and account.state(instance) == "running"
    assert recorded(account, instance) == "running@2026-11-30T09:00:00Z"
    run("2026-11-30T12:00:00Z", **ENV)
    assert account.state(instance) == "running"
    result = run("2026-11-30T19:05:00Z", **ENV)
    assert result["stopped"] == [instance]


def test_periods_add_up(account: Account, run: Run) -> None:
    (instance,) = account.launch("long-and-core", tags={"ScheduleState": "running@2026-12-02T06:05:00Z"})
    result = run("2026-12-02T16:05:00Z", **ENV)  # Wednesday 17:05: the core period ended, the long one runs
    assert result["stopped"] == [] and account.state(instance) == "running"
    result = run("2026-12-02T18:05:00Z", **ENV)  # 19:05
    assert result["stopped"] == [instance]
    result = run("2026-12-05T08:05:00Z", **ENV)  # Saturday 09:05: only the core period
    assert result["started"] == [instance]


def test_stop_new_instances_false_holds_on_an_enforced_schedule(account: Account, run: Run) -> None:
    (instance,) = account.launch("keep-new-enforced")
    for time in ("2026-11-30T20:00:00Z", "2026-11-30T20:05:00Z", "2026-12-01T03:00:00Z"):
        result = run(time, **ENV)
        assert result["stopped"] == [] and account.state(instance) == "running", time
    run("2026-12-01T07:05:00Z", **ENV)
    result = run("2026-12-01T17:05:00Z", **ENV)  # the next stop applies
    assert result["stopped"] == [instance]
    account.ec2.start_instances(InstanceIds=[instance])
    result = run("2026-12-01T17:10:00Z", **ENV)  # enforced from then on
    assert result["stopped"] == [instance]


def test_start_that_bounces_back_is_reported_retried_and_tagged(account: Account, run: Run) -> None:
    (instance,) = account.launch("office", state="stopped", tags={"ScheduleState": "stopped@2026-11-27T17:05:00Z"})
    result = run("2026-11-30T07:05:00Z", **ENV)
    assert result["started"] == [instance]
    times = ["2026-11-30T07:10:00Z", "2026-11-30T07:15:00Z", "2026-11-30T07:20:00Z"]
    for attempt, time in enumerate(times, start=1):
        bounce(instance)
        account.reports()  # read what earlier runs published
        result = run(time, **ENV)
        assert instance in result["bounced"], time
        (report,) = account.reports()
        text = report["content"]["description"]
        assert instance in text and "Client.InternalError" in text and "went back to stopped" in text
        error = account.tags(instance)["ScheduleError"]
        assert "Client.InternalError" in error and f"attempts={attempt}" in error
        if attempt < 3:
            assert result["started"] == [instance]
        else:
            assert result["started"] == []  # bounded: gives up until the next transition
    assert "gave up" in account.tags(instance)["ScheduleError"]
    account.reports()
    result = run("2026-11-30T07:25:00Z", **ENV)  # reported once, not every run
    assert result["started"] == [] and result["bounced"] == {} and account.ops("StartInstances") == []
    assert account.reports() == []
    # The next transition starts over; a start that holds clears the error tag.
    run("2026-11-30T17:05:00Z", **ENV)
    result = run("2026-12-01T07:05:00Z", **ENV)
    assert result["started"] == [instance]
    run("2026-12-01T07:10:00Z", **ENV)
    assert "ScheduleError" not in account.tags(instance)


def test_a_region_that_cannot_be_described_does_not_stop_the_others(account: Account, run: Run) -> None:
    (instance,) = account.launch("office", state="stopped", tags={"ScheduleState": "stopped@2026-11-27T17:05:00Z"})
    other = boto3.client("ec2", "eu-west-1")
    other.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)
    with FaultInjector() as faults:
        faults.add(Fault("ec2.DescribeInstances", "UnauthorizedOperation", regions=["eu-west-1"],
                         message="You are not authorized to perform this operation."))
        with faults.active():
            result = run("2026-11-30T07:05:00Z", REGIONS=f"eu-west-1,{REGION}", **ENV)
    assert result["started"] == [instance]
    assert "eu-west-1" in result["regionErrors"] and "UnauthorizedOperation" in result["regionErrors"]["eu-west-1"]
    (report,) = account.reports()
    assert "eu-west-1" in report["content"]["description"] and "UnauthorizedOperation" in \
        report["content"]["description"]
    context = json.loads(report["metadata"]["additionalContext"]["regionErrors"])
    assert context["eu-west-1"].startswith("UnauthorizedOperation")
