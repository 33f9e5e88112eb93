"""Full runs of the handler against moto: EC2 and RDS, every behaviour of issue 4."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from tests.conftest import load_event
from tests.functions.ec2_scheduler.conftest import REGION, Account

pytestmark = pytest.mark.usefixtures("own_role")  # every run under the synthesized role, moto IAM on

Run = Callable[..., dict[str, Any]]

# 2026-11-30 is a Monday; Europe/Berlin is UTC+1 in winter.
MON_0655 = "2026-11-30T05:55:00Z"  # 06:55 local
MON_0805 = "2026-11-30T07:05:00Z"
MON_1805 = "2026-11-30T17:05:00Z"
MON_2100 = "2026-11-30T20:00:00Z"


def recorded(account: Account, instance_id: str) -> str:
    return account.tags(instance_id).get("ScheduleState", "")


def test_start_at_period_start_and_stop_at_period_end(account: Account, run: Run) -> None:
    ids = account.launch("office", count=3, state="stopped")
    for instance_id in ids:
        account.set_tag(instance_id, "ScheduleState", "stopped@2026-11-27T17:05:00Z")

    result = run(MON_0655)
    assert result["started"] == [] and result["stopped"] == []
    assert account.ops("StartInstances", "StopInstances", "CreateTags") == []

    result = run(MON_0805)
    assert result["started"] == sorted(ids)
    assert [len(p["InstanceIds"]) for p in account.ops("StartInstances")] == [3]  # one batched call
    assert all(account.state(i) == "running" for i in ids)
    assert recorded(account, ids[0]) == "running@2026-11-30T07:05:00Z"
    (report,) = account.reports()
    assert report["content"]["title"] == "EC2/RDS scheduler: started 3"
    assert "period 1 (mon-fri 08:00-18:00) started at 08:00" in report["content"]["description"]

    result = run(MON_1805)
    assert result["stopped"] == sorted(ids)
    assert all(account.state(i) == "stopped" for i in ids)
    assert recorded(account, ids[0]) == "stopped@2026-11-30T17:05:00Z"


def test_run_that_changes_nothing_only_describes(account: Account, run: Run) -> None:
    ids = account.launch("office", count=2)
    run(MON_0805)  # new instances inside the period: recorded as running
    assert account.reports() == []  # recording is no change
    run("2026-11-30T07:10:00Z")
    assert {op for op, _ in account.calls} == {"DescribeInstances", "DescribeDBInstances", "DescribeDBClusters",
                                          "DescribeAutoScalingGroups"}
    assert recorded(account, ids[0]) == "running@2026-11-30T07:05:00Z"


def test_weekend_stays_stopped(account: Account, run: Run) -> None:
    (instance,) = account.launch("office", state="stopped")
    account.set_tag(instance, "ScheduleState", "stopped@2026-12-04T17:05:00Z")
    result = run("2026-12-05T10:00:00Z")  # Saturday 11:00 local
    assert result["started"] == [] and account.state(instance) == "stopped"


def test_holiday_stops_and_stays_stopped(account: Account, run: Run) -> None:
    (instance,) = account.launch("office")
    account.set_tag(instance, "ScheduleState", "running@2026-12-23T07:05:00Z")
    # Wednesday 23 Dec 18:00 stops it as usual; Thursday 24 Dec is a skip date.
    run("2026-12-23T17:05:00Z")
    assert account.state(instance) == "stopped"
    result = run("2026-12-24T07:05:00Z")  # 08:05 local on the holiday
    assert result["started"] == [] and account.state(instance) == "stopped"
    result = run("2026-12-25T07:05:00Z")  # Friday: back to normal
    assert result["started"] == [instance]


def test_skip_date_stops_an_instance_running_overnight(account: Account, run: Run) -> None:
    (instance,) = account.launch("office")
    account.set_tag(instance, "ScheduleState", "running@2026-12-23T16:00:00Z")
    result = run("2026-12-23T23:05:00Z")  # 00:05 on the 24th, local
    assert result["stopped"] == [instance]
    assert "skip date 2026-12-24" in account.reports()[0]["content"]["description"]


def test_missed_runs_are_caught_up(account: Account, run: Run) -> None:
    (instance,) = account.launch("office", state="stopped")
    account.set_tag(instance, "ScheduleState", "stopped@2026-11-27T17:05:00Z")
    result = run("2026-11-30T09:35:00Z")  # no run since Friday: Monday 10:35 local
    assert result["started"] == [instance]


def test_manual_start_left_alone_unless_enforced(account: Account, run: Run) -> None:
    (loose,) = account.launch("office")
    (strict,) = account.launch("office-enforced")
    for instance in (loose, strict):
        account.set_tag(instance, "ScheduleState", "stopped@2026-11-30T17:05:00Z")  # stopped at 18:00, then started
    result = run(MON_2100)
    assert result["stopped"] == [strict]
    assert account.state(loose) == "running" and account.state(strict) == "stopped"
    assert "enforced" in account.reports()[0]["content"]["description"]


def test_new_instance_outside_the_period(account: Account, run: Run) -> None:
    (default,) = account.launch("office")
    (keep,) = account.launch("office-keep-new")
    result = run(MON_2100)
    assert result["stopped"] == [default]
    assert account.state(keep) == "running"
    assert recorded(account, keep) == "running@2026-11-30T20:00:00Z"  # kept as found: stops at the next 18:00
    result = run("2026-11-30T20:05:00Z")
    assert result["stopped"] == [] and account.state(keep) == "running"
    result = run("2026-12-01T07:05:00Z")  # next morning: already running, recorded as running
    assert result["started"] == [default]
    assert recorded(account, keep) == "running@2026-12-01T07:05:00Z"
    result = run("2026-12-01T17:05:00Z")
    assert sorted(result["stopped"]) == sorted([default, keep])


def test_asg_member_untouched(account: Account, run: Run) -> None:
    """The group is scheduled as one resource (tests/functions/ec2_scheduler/test_sources.py); its instances
    are never stopped one by one."""
    autoscaling = boto3.client("autoscaling", REGION)
    ec2 = account.ec2
    template = ec2.create_launch_template(
        LaunchTemplateName="lt", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}
    )["LaunchTemplate"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web", MinSize=1, MaxSize=1, DesiredCapacity=1, VPCZoneIdentifier=subnet,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]},
        Tags=[{"Key": "Schedule", "Value": "office", "PropagateAtLaunch": True}],
    )
    result = run(MON_2100, INCLUDE_ASG="false")
    assert result["stopped"] == []
    assert result["decisions"] == {"skip": 1}
    assert account.ops("StopInstances", "CreateTags") == []
    result = run("2026-11-30T20:05:00Z", INCLUDE_ASG="true")
    assert result["stopped"] == ["web"] and result["decisions"] == {"skip": 1, "stop": 1}
    assert account.ops("StopInstances") == []


def test_untagged_instances_are_never_touched(account: Account, run: Run) -> None:
    (instance,) = account.launch(None)
    result = run(MON_2100)
    assert result["resources"] == 0 and account.state(instance) == "running"


def test_unknown_and_malformed_schedules_reported_once_naming_instances(account: Account, run: Run) -> None:
    unknown = account.launch("nope", count=2)
    (broken,) = account.launch("broken")
    result = run(MON_2100)
    assert set(result["problems"]) == {*unknown, broken}
    assert all(account.state(i) == "running" for i in [*unknown, broken])
    (report,) = account.reports()
    description = report["content"]["description"]
    assert description.count("unknown schedule 'nope'") == 1
    assert all(i in description for i in unknown)
    assert "'Mars/Olympus' is not an IANA timezone" in description
    assert report["metadata"]["additionalContext"]["severity"] == "warning"


def test_hibernate_when_configured_else_normal_stop(account: Account, run: Run) -> None:
    (sleeper,) = account.launch("office-hibernate", HibernationOptions={"Configured": True})
    (plain,) = account.launch("office-hibernate")
    for instance in (sleeper, plain):
        account.set_tag(instance, "ScheduleState", "running@2026-11-30T07:05:00Z")
    result = run(MON_1805)
    assert sorted(result["stopped"]) == sorted([sleeper, plain])
    stops = account.ops("StopInstances")
    assert {"InstanceIds": [sleeper], "Hibernate": True} in stops
    assert {"InstanceIds": [plain]} in stops
    assert "not configured for hibernation: normal stop" in account.reports()[0]["content"]["description"]


def test_hibernate_failure_falls_back_to_normal_stop(account: Account, run: Run) -> None:
    (sleeper,) = account.launch("office-hibernate", HibernationOptions={"Configured": True})
    account.set_tag(sleeper, "ScheduleState", "running@2026-11-30T07:05:00Z")
    account.fail("StopInstances", lambda p: bool(p.get("Hibernate")), "UnsupportedHibernationConfiguration")
    result = run(MON_1805)
    assert result["stopped"] == [sleeper] and account.state(sleeper) == "stopped"
    assert [p.get("Hibernate", False) for p in account.ops("StopInstances")] == [True, False]
    assert "stopped normally" in account.reports()[0]["content"]["description"]


def test_batch_with_one_bad_instance_is_split(account: Account, run: Run) -> None:
    ids = account.launch("office", count=8, state="stopped")
    for instance in ids:
        account.set_tag(instance, "ScheduleState", "stopped@2026-11-27T17:05:00Z")
    bad = ids[5]
    account.fail("StartInstances", lambda p: bad in p["InstanceIds"], "InsufficientInstanceCapacity")
    result = run(MON_0805)
    assert sorted(result["started"]) == sorted(i for i in ids if i != bad)
    assert list(result["failed"]) == [bad] and "InsufficientInstanceCapacity" in result["failed"][bad]
    # 1 failed batch of 8, then halves: 4 ok + 4 failed, 2 + 2, 1 + 1 -> 7 calls, not one per instance.
    assert len(account.ops("StartInstances")) == 7
    assert recorded(account, bad).startswith("stopped@")  # not recorded: retried at the next run
    report = account.reports()[0]
    assert report["content"]["title"] == "EC2/RDS scheduler: started 7, 1 failed"
    result = run("2026-11-30T07:10:00Z")
    assert account.ops("StartInstances") == [{"InstanceIds": [bad]}]


def test_report_mode_changes_nothing(account: Account, run: Run) -> None:
    ids = account.launch("office", count=2)
    result = run(MON_2100, MODE="report")
    assert result["wouldStop"] == sorted(ids) and result["stopped"] == []
    assert account.ops("StopInstances", "StartInstances", "CreateTags") == []
    assert all(account.state(i) == "running" and "ScheduleState" not in account.tags(i) for i in ids)
    (report,) = account.reports()
    assert report["content"]["title"].startswith("[report mode] EC2/RDS scheduler: would stop 2")
    assert report["metadata"]["additionalContext"]["mode"] == "report"


def test_max_changes_guard_refuses_and_reports(account: Account, run: Run) -> None:
    ids = account.launch("office", count=3)
    result = run(MON_2100, MAX_CHANGES="2")
    assert result["refused"] is True and result["stopped"] == []
    assert account.ops("StopInstances", "CreateTags") == []
    assert all(account.state(i) == "running" for i in ids)
    (report,) = account.reports()
    assert "MAX_CHANGES=2" in report["content"]["title"]
    assert report["metadata"]["additionalContext"]["severity"] == "warning"


def test_override_keeps_running_until_then_schedule_applies(account: Account, run: Run) -> None:
    (instance,) = account.launch("office")
    account.set_tag(instance, "ScheduleState", "running@2026-11-30T07:05:00Z")
    account.set_tag(instance, "ScheduleOverride", "running-until=2026-11-30T21:00Z")
    result = run(MON_1805)
    assert result["stopped"] == [] and account.state(instance) == "running"
    result = run("2026-11-30T21:05:00Z")
    assert result["stopped"] == [instance]


def test_malformed_override_reported_and_left_alone(account: Account, run: Run) -> None:
    (instance,) = account.launch("office")
    account.set_tag(instance, "ScheduleState", "running@2026-11-30T07:05:00Z")
    account.set_tag(instance, "ScheduleOverride", "keep-it-on")
    result = run(MON_1805)
    assert result["stopped"] == [] and instance in result["problems"]


def test_stale_event_after_a_later_run_changes_nothing(account: Account, run: Run) -> None:
    (instance,) = account.launch("office")
    account.set_tag(instance, "ScheduleState", "running@2026-11-30T07:05:00Z")
    result = run("2026-11-30T07:00:00Z")  # a late retry of the 07:00 (UTC) event... 07:59 local
    assert result["stopped"] == [] and result["decisions"] == {"skip": 1}


def test_eventbridge_rule_event_also_works(account: Account, run: Run, lambda_context: Any) -> None:
    from ec2_scheduler.handler import handler

    (instance,) = account.launch("office")
    account.set_tag(instance, "ScheduleState", "running@2026-11-30T07:05:00Z")
    result = handler(load_event("ec2_scheduler/eventbridge_scheduled_rule.json"), lambda_context)
    assert result["stopped"] == [instance]


def _database(account: Account, identifier: str, schedule: str = "office") -> str:
    response = account.rds.create_db_instance(
        DBInstanceIdentifier=identifier, Engine="postgres", DBInstanceClass="db.t3.micro", MasterUsername="admin1",
        MasterUserPassword="password123", AllocatedStorage=20, Tags=[{"Key": "Schedule", "Value": schedule}],
    )
    return str(response["DBInstance"]["DBInstanceArn"])


def test_rds_instance_and_cluster_stopped_and_started(account: Account, run: Run) -> None:
    _database(account, "db1")
    account.rds.create_db_cluster(
        DBClusterIdentifier="aurora1", Engine="aurora-postgresql", MasterUsername="admin1",
        MasterUserPassword="password123", Tags=[{"Key": "Schedule", "Value": "office"}],
    )
    result = run(MON_2100)  # new, outside the period: stopped
    assert sorted(result["stopped"]) == ["aurora1", "db1"]
    assert account.rds.describe_db_instances(DBInstanceIdentifier="db1")["DBInstances"][0]["DBInstanceStatus"] == \
        "stopped"
    assert account.rds.describe_db_clusters(DBClusterIdentifier="aurora1")["DBClusters"][0]["Status"] == "stopped"
    tags = account.rds.describe_db_clusters(DBClusterIdentifier="aurora1")["DBClusters"][0]["TagList"]
    assert {"Key": "ScheduleState", "Value": "stopped@2026-11-30T20:00:00Z"} in tags
    result = run("2026-12-01T07:05:00Z")
    assert sorted(result["started"]) == ["aurora1", "db1"]


def test_rds_read_replica_and_refused_state_reported(account: Account, run: Run) -> None:
    _database(account, "primary", schedule="office")
    account.rds.create_db_instance_read_replica(
        DBInstanceIdentifier="replica", SourceDBInstanceIdentifier="primary",
        Tags=[{"Key": "Schedule", "Value": "office"}],
    )
    account.fail("StopDBInstance", lambda p: p["DBInstanceIdentifier"] == "primary", "InvalidDBInstanceState")
    result = run(MON_2100)
    assert "replica" in result["problems"] and "read replica" in result["problems"]["replica"]
    assert "InvalidDBInstanceState" in result["failed"]["primary"]
    report = account.reports()[0]
    assert "read replica of 'primary'" in report["content"]["description"]


@pytest.mark.parametrize("code", ["IncorrectInstanceState", "UnsupportedOperation"])
def test_single_bad_instance_codes(account: Account, run: Run, code: str) -> None:
    ids = account.launch("office", count=2)
    for instance in ids:
        account.set_tag(instance, "ScheduleState", "running@2026-11-30T07:05:00Z")
    account.fail("StopInstances", lambda p: ids[0] in p["InstanceIds"], code)
    result = run(MON_1805)
    assert result["stopped"] == [ids[1]] and code in result["failed"][ids[0]]


def test_persistent_throttling_records_what_was_done_reports_and_raises(
    account: Account, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    account.max_attempts = 1  # the adaptive retries of the real clients would sleep between attempts
    monkeypatch.setattr("ec2_scheduler.runner.BATCH_SIZE", 2)  # batches of 2 instead of 50: fewer instances
    ids = account.launch("office", count=3, tags={"ScheduleState": "running@2026-11-30T07:05:00Z"})
    stops = {"n": 0}

    def second_batch(params: dict[str, Any]) -> bool:
        stops["n"] += 1
        return stops["n"] > 1

    account.fail("StopInstances", second_batch, "RequestLimitExceeded")
    with pytest.raises(ClientError, match="RequestLimitExceeded"):
        run(MON_1805)
    instances = [i for r in account.ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
    stopped = [i for i in instances if i["State"]["Name"] == "stopped"]
    assert len(stopped) == 2  # the first batch went through
    assert all({"Key": "ScheduleState", "Value": "stopped@2026-11-30T17:05:00Z"} in i["Tags"] for i in stopped)
    (report,) = account.reports()
    assert "aborted" in report["content"]["title"]
